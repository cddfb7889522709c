"""The reference grouper: slow, readable, pure Python — the executable specification.

It follows `docs/grouping-logic.md` line by line: derive the case features from the codes
(`derive_features`), then take the first rule whose every filled column holds
(`first_failed_condition` is None). The compiled Numba engine must give exactly what this module
gives; the explainer reads the same two functions so that an explanation can never disagree.
"""

from __future__ import annotations

from collections import defaultdict

from attrs import field, frozen

from nordgroup.tables.model import NO_DAGGER, DiagnosisKey, DiagnosisProperties, DrgTables, Rule

__all__ = [
    "ComplicationCheck",
    "Episode",
    "Features",
    "ReferenceResult",
    "derive_features",
    "first_failed_condition",
    "group_episode",
    "recode_sex",
]

MALE, FEMALE = 1, 2
DIED, ALIVE, TRANSFERRED = "E", "N", "R"


@frozen
class Episode:
    """One episode, as the reference grouper and the explainer read it."""

    # (code, paired code) as written: a dagger code and its asterisk code, or a code and "" alone;
    # the principal diagnosis first
    diagnoses: tuple[tuple[str, str], ...] = ()
    procedures: tuple[str, ...] = ()  # the first is "the first procedure" for `secpro`
    sex: int | None = None  # 1 male, 2 female
    age_days: int | None = None
    duration_days: int | None = None
    discharge: str | None = None  # E died, N alive, R transferred


@frozen
class ComplicationCheck:
    """How one secondary diagnosis did or did not raise the CC level."""

    diagnosis: DiagnosisKey
    category: str
    level: int  # the level it gives (0 when it does not count)
    reason: str  # "counts", "excluded by the principal diagnosis", "inactive, not activated"


@frozen
class Features:
    """Everything the rules read of one episode, with the codes each feature came from."""

    principal_known: bool
    has_principal: bool
    mdc: str
    dgcat: str
    pdgprop: frozenset[str]
    dgprop: frozenset[str]  # DGPROP of every code, and SDGPRO of the first secondary diagnosis
    or_values: frozenset[int]
    procpr: frozenset[str]
    # PROCPR of every procedure, the first included: what `secpro XXYNN` reads (official cases
    # 174, 1065, 1085, 1102 meet `secpro` with the first procedure's property)
    procedure_procpr: frozenset[str]
    secondary_or1: bool
    cc_level: int
    sources: dict[str, tuple[str, ...]] = field(factory=dict, eq=False)  # "dgprop 15X23" -> codes
    complications: tuple[ComplicationCheck, ...] = field(default=(), eq=False)


@frozen
class ReferenceResult:
    drg: str | None
    rtc: str
    rule: Rule | None
    features: Features


def recode_sex(value: str, sex: int | None) -> str:
    """Properties beginning with 98 become 12.. for males and 13.. for females (guide, MDC 98)."""
    if not value.startswith("98") or sex not in (MALE, FEMALE):
        return value
    return ("12" if sex == MALE else "13") + value[2:]


def diagnosis_properties(tables: DrgTables, written: tuple[str, str]) -> DiagnosisProperties | None:
    """The properties of one written diagnosis: a single code, or a (dagger, asterisk) pair.

    A pair counts as one diagnosis. Its MDC and DGCAT are those of the pair's own table row when
    it has them, else the asterisk code's, else the dagger code's; every set-valued property
    (PDGPROP, DGPROP, SDGPRO, COMPL) is the union over the pair row and both codes. The official
    Norwegian answers show this: `S065,I10` as principal groups in MDC 05 (I10) and still has
    S065's PDGPROP 00P21; `I210,R570` is MDC 05 with I210's DGPROP 05X01.
    """
    dagger, asterisk = written
    if not asterisk:
        return tables.diagnoses.get((dagger, NO_DAGGER))
    rows = [
        row
        for row in (
            tables.diagnoses.get((asterisk, dagger)),
            tables.diagnoses.get((asterisk, NO_DAGGER)),
            tables.diagnoses.get((dagger, NO_DAGGER)),
        )
        if row is not None
    ]
    if not rows:
        return None
    return DiagnosisProperties(
        mdc=next((row.mdc for row in rows if row.mdc), ""),
        dgcat=next((row.dgcat for row in rows if row.dgcat), ""),
        pdgprop=frozenset().union(*(row.pdgprop for row in rows)),
        dgprop=frozenset().union(*(row.dgprop for row in rows)),
        sdgprop=frozenset().union(*(row.sdgprop for row in rows)),
        compl=frozenset().union(*(row.compl for row in rows)),
        procpr=frozenset().union(*(row.procpr for row in rows)),
        or_values=frozenset().union(*(row.or_values for row in rows)),
    )


def derive_features(tables: DrgTables, episode: Episode) -> Features:
    """Stage 1 of the spec: the case features the rules are evaluated against."""
    sources: dict[str, list[str]] = defaultdict(list)

    def note(kind: str, value: object, code: str) -> None:
        sources[f"{kind} {value}"].append(code)

    has_principal = bool(episode.diagnoses and any(episode.diagnoses[0]))
    principal = episode.diagnoses[0] if has_principal else None
    principal_props = diagnosis_properties(tables, principal) if principal else None
    mdc = dgcat = ""
    pdgprop: set[str] = set()
    if principal_props is not None:
        mdc = recode_sex(principal_props.mdc, episode.sex)
        dgcat = recode_sex(principal_props.dgcat, episode.sex)
        pdgprop = set(principal_props.pdgprop)

    dgprop: set[str] = set()
    procpr: set[str] = set()
    or_values: set[int] = set()
    for position, key in enumerate(episode.diagnoses):
        props = diagnosis_properties(tables, key)
        if props is None:
            continue
        label = _label(key)
        values = set(props.dgprop)
        if position == 1:  # SDGPRO: only the first secondary diagnosis
            values |= props.sdgprop
        for value in values:
            dgprop.add(value)
            note("dgprop", value, label)
        procpr |= props.procpr
        or_values |= props.or_values

    procedure_cc = 0
    procedure_procpr: set[str] = set()
    secondary_or1 = False
    for position, code in enumerate(episode.procedures):
        procedure = tables.procedures.get(code)
        if procedure is None:
            continue
        for value in procedure.dgprop:
            dgprop.add(value)
            note("dgprop", value, code)
        for value in procedure.procpr:
            procpr.add(value)
            note("procpr", value, code)
        for or_value in procedure.or_values - {0}:
            or_values.add(or_value)
            note("or", or_value, code)
        if procedure.cc:
            procedure_cc = max(procedure_cc, procedure.cc)
            note("cc", procedure.cc, code)
        procedure_procpr |= procedure.procpr
        if position > 0:
            secondary_or1 = secondary_or1 or 1 in procedure.or_values

    complications = tuple(_complication_checks(tables, episode.diagnoses, dgprop))
    cc_level = max([procedure_cc] + [check.level for check in complications])
    return Features(
        principal_known=principal_props is not None,
        has_principal=has_principal,
        mdc=mdc,
        dgcat=dgcat,
        pdgprop=frozenset(pdgprop),
        dgprop=frozenset(dgprop),
        or_values=frozenset(or_values),
        procpr=frozenset(procpr),
        procedure_procpr=frozenset(procedure_procpr),
        secondary_or1=secondary_or1,
        cc_level=cc_level,
        sources={kind: tuple(codes) for kind, codes in sources.items()},
        complications=complications,
    )


def _complication_checks(tables: DrgTables, diagnoses: tuple[tuple[str, str], ...], dgprop: set[str]):
    """Each secondary diagnosis' complication categories, and whether they raise the CC level."""
    principal = diagnoses[0] if diagnoses and any(diagnoses[0]) else None
    for key in diagnoses[1:]:
        props = diagnosis_properties(tables, key)
        if props is None:
            continue
        for category_code in sorted(props.compl):
            category = tables.complication_categories.get(category_code)
            kind = category_code[2:3]
            if kind == "I":
                activators = category.activating_dgprop if category else frozenset()
                if not activators & dgprop:
                    yield ComplicationCheck(key, category_code, 0, "inactive, not activated")
                    continue
            excluded = tables.exclusions.get(category_code, frozenset())
            if principal is not None and _is_excluded(principal, excluded):
                yield ComplicationCheck(key, category_code, 0, "excluded by the principal diagnosis")
                continue
            yield ComplicationCheck(key, category_code, 2 if kind == "G" else 1, "counts")


def _is_excluded(principal: tuple[str, str], excluded: frozenset[DiagnosisKey]) -> bool:
    """A principal pair is excluded by its exact pair row or by either of its codes alone."""
    dagger, asterisk = principal
    if not asterisk:
        return (dagger, NO_DAGGER) in excluded
    return (asterisk, dagger) in excluded or (asterisk, NO_DAGGER) in excluded or (dagger, NO_DAGGER) in excluded


def first_failed_condition(rule: Rule, features: Features, episode: Episode) -> str | None:
    """The first filled column of `rule` that does not hold for the episode; None if all hold."""
    if rule.icd == "+" and not features.principal_known:
        return "icd"
    if rule.icd == "-" and features.principal_known:
        return "icd"
    if rule.mdc and rule.mdc != features.mdc:
        return "mdc"
    if rule.dgcat and rule.dgcat != features.dgcat:
        return "dgcat"
    if rule.pdgprop and rule.pdgprop not in features.pdgprop:
        return "pdgprop"
    if rule.compl and features.cc_level < int(rule.compl):
        return "compl"
    if rule.or_proc and not _or_holds(rule.or_proc, features.or_values):
        return "or_proc"
    if rule.procpro and rule.procpro not in features.procpr:
        return "procpro"
    if rule.secpro and not _secpro_holds(rule.secpro, features):
        return "secpro"
    for number, value in enumerate(rule.dgprop, start=1):
        if value.startswith("-") and value[1:] in features.dgprop:
            return f"dgprop{number}"
        if not value.startswith("-") and value not in features.dgprop:
            return f"dgprop{number}"
    if rule.agelim and (episode.age_days is None or not rule.agelim.holds(episode.age_days)):
        return "agelim"
    if rule.sex and not _sex_holds(rule.sex, episode.sex):
        return "sex"
    if rule.dur and (episode.duration_days is None or not rule.dur.holds(episode.duration_days)):
        return "dur"
    if rule.disch and not _discharge_holds(rule.disch, episode.discharge):
        return "disch"
    return None


def _or_holds(condition: str, or_values: frozenset[int]) -> bool:
    has_1, has_2 = 1 in or_values, 2 in or_values
    return {
        "S": has_1,
        "P": has_1 or has_2,
        "N": not has_1,
        "Z": not has_1 and not has_2,
    }.get(condition, False)


def _secpro_holds(condition: str, features: Features) -> bool:
    if condition == "+":
        return features.secondary_or1
    if condition == "-":
        return not features.secondary_or1
    if condition.startswith("-"):
        return condition[1:] not in features.procedure_procpr
    return condition in features.procedure_procpr


def _sex_holds(condition: str, sex: int | None) -> bool:
    return {"M": sex == MALE, "F": sex == FEMALE, "-": sex not in (MALE, FEMALE)}.get(condition, False)


def _discharge_holds(condition: str, discharge: str | None) -> bool:
    if condition == DIED:
        return discharge == DIED
    if condition == ALIVE:
        return discharge != DIED
    if condition == TRANSFERRED:
        return discharge == TRANSFERRED
    return False


def group_episode(tables: DrgTables, episode: Episode) -> ReferenceResult:
    """Stage 2: the first rule, in table order, whose every filled column holds."""
    features = derive_features(tables, episode)
    for rule in tables.rules:
        if first_failed_condition(rule, features, episode) is None:
            rtc = rule.rtc
            if rule.icd == "-" and features.has_principal:
                rtc = UNKNOWN_PRINCIPAL_RTC
            return ReferenceResult(drg=rule.drg, rtc=rtc, rule=rule, features=features)
    return ReferenceResult(drg=UNGROUPABLE_DRG, rtc=UNGROUPABLE_RTC, rule=None, features=features)


#: What an episode that no rule matches gets: never an exception, never a dropped row.
UNGROUPABLE_DRG = None
UNGROUPABLE_RTC = "NO_RULE"
#: rtc of a rule for "no principal diagnosis" (icd `-`) matched because the written principal
#: diagnosis is not in the tables: the official Norwegian answers give 9 ("other error") there,
#: where the rule itself says 1 ("no principal diagnosis").
UNKNOWN_PRINCIPAL_RTC = "9"


def _label(written: tuple[str, str]) -> str:
    return f"{written[0]}†{written[1]}*" if written[1] else written[0]
