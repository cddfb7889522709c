"""Exploring a table release: what a code is, which DRGs it can lead to, what a DRG holds, what changed.

`drgs_for_code` is exact in this sense: every DRG it returns comes with a witness episode that the
reference grouper puts there (so it is reachable), and every rule it leaves out is either
impossible for the code (a column can never hold) or had no witness; the latter are listed as
`unconfirmed` instead of being guessed either way. What "leading to" means per role:

- `principal`: the DRGs of episodes whose principal diagnosis is the code.
- `secondary`: the DRGs whose matching rule has a condition the code itself satisfies as a
  secondary diagnosis: a `dgprop` value it carries (its SDGPRO when it is the first secondary
  diagnosis), or `compl` met by one of its complication categories. Without that requirement the
  answer would be "every DRG": a secondary diagnosis rides along anywhere.
- `procedure`: the same for a procedure: `or_proc` S/P met by its OR value, `procpro`/`secpro` by its
  PROCPR, `secpro +` by its OR=1 as a non-first procedure, `dgprop` by its DGPROP.

Negative conditions (`dgprop -X`, `secpro -X`/`-`, `or_proc N`/`Z`) are honoured when building
witnesses: a code carrying X can never reach a rule that forbids X.
"""

from __future__ import annotations

import bisect
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
from attrs import frozen

from nordgroup.episodes import clean_written_code, split_written_diagnosis
from nordgroup.reference import (
    Episode,
    Features,
    derive_features,
    diagnosis_properties,
    first_failed_condition,
    recode_sex,
)
from nordgroup.tables.model import NO_DAGGER, DiagnosisKey, DiagnosisProperties, DrgTables, Rule

__all__ = [
    "CodeDrgs",
    "CodeInfo",
    "DrgContents",
    "RuleContents",
    "TablesDiff",
    "code_info",
    "code_satisfies",
    "diff_tables",
    "drg_contents",
    "drgs_for_code",
]

ROLES = ("principal", "secondary", "procedure")
_ADULT_AGE_DAYS = 40 * 365  # far from every age limit the releases use
_SEXES = (1, 2, None)


# --------------------------------------------------------------------------------------------
# code_info


@frozen
class CodeInfo:
    """Every property the tables give a code, as (where, property, value) rows."""

    code: str
    properties: tuple[tuple[str, str, str], ...]

    @property
    def known(self) -> bool:
        return bool(self.properties)

    def to_arrow(self) -> pa.Table:
        where, name, value = zip(*self.properties, strict=True) if self.properties else ((), (), ())
        return pa.table({"where": list(where), "property": list(name), "value": list(value)})

    def __str__(self) -> str:
        if not self.properties:
            return f"{self.code}: not in the tables"
        lines = [self.code]
        for where, name, value in self.properties:
            lines.append(f"  {where:<22} {name:<10} {value}")
        return "\n".join(lines)


def code_info(tables: DrgTables, code: str) -> CodeInfo:
    """The properties of a diagnosis or procedure code, including the pair rows it appears in."""
    code = clean_written_code(code).cleaned
    rows: list[tuple[str, str, str]] = []
    for key in _index(tables).diagnosis_rows_of.get(code, ()):
        where = "diagnosis" if key[1] == NO_DAGGER else f"pair {key[1]}†{key[0]}*"
        rows.extend((where, name, value) for name, value in _diagnosis_property_rows(tables.diagnoses[key]))
    for category in sorted(_index(tables).excluding_categories.get(code, ())):
        rows.append(("diagnosis", "COMPL_EXCL", category))
    procedure = tables.procedures.get(code)
    if procedure is not None:
        rows.append(("procedure", "OR", str(procedure.or_value)))
        rows.extend(("procedure", "PROCPR", value) for value in sorted(procedure.procpr))
        rows.extend(("procedure", "DGPROP", value) for value in sorted(procedure.dgprop))
        if procedure.cc:
            rows.append(("procedure", "CC", str(procedure.cc)))
    return CodeInfo(code, tuple(rows))


def _diagnosis_property_rows(props: DiagnosisProperties) -> Iterable[tuple[str, str]]:
    if props.mdc:
        yield "MDC", props.mdc
    if props.dgcat:
        yield "DGCAT", props.dgcat
    for name, values in (
        ("PDGPROP", props.pdgprop),
        ("DGPROP", props.dgprop),
        ("SDGPRO", props.sdgprop),
        ("COMPL", props.compl),
        ("PROCPR", props.procpr),
    ):
        yield from ((name, value) for value in sorted(values))
    if props.or_value:
        yield "OR", str(props.or_value)


# --------------------------------------------------------------------------------------------
# indexes, built once per table set


@frozen(eq=False)
class _Index:
    diagnosis_rows_of: Mapping[str, tuple[DiagnosisKey, ...]]
    excluding_categories: Mapping[str, frozenset[str]]
    singles_by: Mapping[tuple[str, str], tuple[str, ...]]  # ("mdc"|"dgcat"|"pdgprop", value) -> codes
    plain_singles: tuple[str, ...]  # diagnoses with no property at all beyond MDC/DGCAT
    diagnoses_by_dgprop: Mapping[str, tuple[str, ...]]
    diagnoses_by_sdgprop: Mapping[str, tuple[str, ...]]
    diagnoses_by_compl: Mapping[str, tuple[str, ...]]
    procedures_by_procpr: Mapping[str, tuple[str, ...]]
    procedures_by_dgprop: Mapping[str, tuple[str, ...]]
    procedures_by_or: Mapping[int, tuple[str, ...]]


_INDEXES: weakref.WeakKeyDictionary[DrgTables, _Index] = weakref.WeakKeyDictionary()


def _index(tables: DrgTables) -> _Index:
    found = _INDEXES.get(tables)
    if found is None:
        found = _INDEXES[tables] = _build_index(tables)
    return found


def _weight(props: DiagnosisProperties) -> int:
    return len(props.pdgprop) + len(props.dgprop) + len(props.sdgprop) + len(props.compl) + props.or_value


def _build_index(tables: DrgTables) -> _Index:
    rows_of: dict[str, list[DiagnosisKey]] = defaultdict(list)
    for key in tables.diagnoses:
        rows_of[key[0]].append(key)
        if key[1]:
            rows_of[key[1]].append(key)
    excluding: dict[str, set[str]] = defaultdict(set)
    for category, keys in tables.exclusions.items():
        for code, _ in keys:
            excluding[code].add(category)
    # Codes with the fewest properties first: witnesses built from them trip the fewest other rules.
    singles = sorted(
        (key[0] for key in tables.diagnoses if key[1] == NO_DAGGER),
        key=lambda code: (_weight(tables.diagnoses[(code, NO_DAGGER)]), code),
    )
    by: dict[tuple[str, str], list[str]] = defaultdict(list)
    by_dgprop: dict[str, list[str]] = defaultdict(list)
    by_sdgprop: dict[str, list[str]] = defaultdict(list)
    by_compl: dict[str, list[str]] = defaultdict(list)
    for code in singles:
        props = tables.diagnoses[(code, NO_DAGGER)]
        by["mdc", props.mdc].append(code)
        by["dgcat", props.dgcat].append(code)
        for value in props.pdgprop:
            by["pdgprop", value].append(code)
        for value in props.dgprop:
            by_dgprop[value].append(code)
        for value in props.sdgprop:
            by_sdgprop[value].append(code)
        for value in props.compl:
            by_compl[value].append(code)
    procedures = sorted(
        tables.procedures,
        key=lambda c: (
            len(tables.procedures[c].procpr) + len(tables.procedures[c].dgprop) + tables.procedures[c].cc,
            c,
        ),
    )
    by_procpr: dict[str, list[str]] = defaultdict(list)
    proc_dgprop: dict[str, list[str]] = defaultdict(list)
    by_or: dict[int, list[str]] = defaultdict(list)
    for code in procedures:
        props = tables.procedures[code]
        by_or[props.or_value].append(code)
        for value in props.procpr:
            by_procpr[value].append(code)
        for value in props.dgprop:
            proc_dgprop[value].append(code)
    plain = tuple(c for c in singles if _weight(tables.diagnoses[(c, NO_DAGGER)]) == 0)
    freeze = lambda d: {k: tuple(v) for k, v in d.items()}  # noqa: E731
    return _Index(
        diagnosis_rows_of=freeze(rows_of),
        excluding_categories={k: frozenset(v) for k, v in excluding.items()},
        singles_by=freeze(by),
        plain_singles=plain,
        diagnoses_by_dgprop=freeze(by_dgprop),
        diagnoses_by_sdgprop=freeze(by_sdgprop),
        diagnoses_by_compl=freeze(by_compl),
        procedures_by_procpr=freeze(by_procpr),
        procedures_by_dgprop=freeze(proc_dgprop),
        procedures_by_or=freeze(by_or),
    )


# --------------------------------------------------------------------------------------------
# drgs_for_code


@frozen
class CodeDrgs:
    """The DRGs a code can lead to in one role, each with a witness episode and the rules used."""

    code: str
    role: str
    drgs: tuple[str, ...]
    examples: Mapping[str, Episode]  # drg -> an episode the reference grouper puts there
    rules: Mapping[str, str]  # drg -> the id of the rule the example matched
    unconfirmed: tuple[str, ...]  # rule ids possible for the code but without a witness

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "drg": list(self.drgs),
                "rule": [self.rules[d] for d in self.drgs],
                "example": [_episode_text(self.examples[d]) for d in self.drgs],
            }
        )

    def __str__(self) -> str:
        lines = [f"{self.code} as {self.role}: {len(self.drgs)} DRGs"]
        lines.extend(f"  {d:<6} rule {self.rules[d]:<12} e.g. {_episode_text(self.examples[d])}" for d in self.drgs)
        if self.unconfirmed:
            lines.append(f"  unconfirmed rules (possible, no witness found): {', '.join(self.unconfirmed)}")
        return "\n".join(lines)


def drgs_for_code(tables: DrgTables, code: str, role: str = "principal") -> CodeDrgs:
    """The DRGs `code` can lead to as principal diagnosis, secondary diagnosis or procedure."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    written = split_written_diagnosis(code)[:2] if role != "procedure" else (clean_written_code(code).cleaned, "")
    label = f"{written[0]} {written[1]}".strip()
    examples: dict[str, Episode] = {}
    rules: dict[str, str] = {}
    unconfirmed: list[str] = []
    for rule in tables.rules:
        if rule.drg in examples or not _could_involve(tables, rule, written, role):
            continue
        witness = _find_witness(tables, rule, written, role)
        if witness is not None:
            examples[rule.drg] = witness
            rules[rule.drg] = rule.id
        elif _possible(tables, rule, written, role):
            unconfirmed.append(rule.id)
    unconfirmed = [r for r in unconfirmed if _rule_by_id(tables, r).drg not in examples]
    drgs = tuple(sorted(examples, key=_drg_sort_key))
    return CodeDrgs(label, role, drgs, examples, rules, tuple(unconfirmed))


def code_satisfies(rule: Rule, episode: Episode, code: str, role: str, tables: DrgTables) -> bool:
    """Whether `code` in `episode` itself satisfies one of `rule`'s conditions, in `role`.

    This is what "the code leads to the DRG" means for secondary diagnoses and procedures; for the
    principal role the code as principal diagnosis is all that is asked.
    """
    if role == "principal":
        return bool(episode.diagnoses) and episode.diagnoses[0] == split_written_diagnosis(code)[:2]
    if role == "secondary":
        written = split_written_diagnosis(code)[:2]
        positions = [i for i, d in enumerate(episode.diagnoses) if i > 0 and d == written]
        props = diagnosis_properties(tables, written)
        if not positions or props is None:
            return False
        carried = set(props.dgprop) | (props.sdgprop if 1 in positions else set())
        if any(value in carried for value in rule.dgprop):
            return True
        if rule.compl:
            checks = derive_features(tables, episode).complications
            return any(c.diagnosis == written and c.level >= int(rule.compl) for c in checks)
        return False
    code = clean_written_code(code).cleaned
    props = tables.procedures.get(code)
    if props is None or code not in episode.procedures:
        return False
    not_first = code in episode.procedures[1:]
    return (
        (rule.or_proc == "S" and props.or_value == 1)
        or (rule.or_proc == "P" and props.or_value in (1, 2))
        or (bool(rule.procpro) and rule.procpro in props.procpr)
        or (rule.secpro == "+" and not_first and props.or_value == 1)
        or (bool(rule.secpro) and rule.secpro[0] != "-" and rule.secpro in props.procpr)
        or any(value in props.dgprop for value in rule.dgprop)
    )


def _could_involve(tables: DrgTables, rule: Rule, written: tuple[str, str], role: str) -> bool:
    """A quick necessary condition, so that witnesses are only sought where they can exist."""
    if role == "principal":
        props = diagnosis_properties(tables, written)
        return any(_principal_columns_hold(rule, props, sex) for sex in _SEXES)
    if role == "secondary":
        props = diagnosis_properties(tables, written)
        if props is None:
            return False
        carried = props.dgprop | props.sdgprop
        return any(v in carried for v in rule.dgprop) or (bool(rule.compl) and bool(props.compl))
    props = tables.procedures.get(written[0])
    if props is None:
        return False
    probe = Episode(diagnoses=(("", ""),), procedures=("", written[0]))
    return code_satisfies(rule, probe, written[0], "procedure", tables)


def _possible(tables: DrgTables, rule: Rule, written: tuple[str, str], role: str) -> bool:
    """False when the code itself breaks a negative condition of the rule: no witness can exist."""
    if role == "procedure":
        props = tables.procedures.get(written[0])
        forbidden_dgprop = props.dgprop if props else frozenset()
        or_value = props.or_value if props else 0
    else:
        dprops = diagnosis_properties(tables, written)
        forbidden_dgprop = dprops.dgprop if dprops else frozenset()
        or_value = dprops.or_value if dprops else 0
    if any(v.startswith("-") and v[1:] in forbidden_dgprop for v in rule.dgprop):
        return False
    return not ((rule.or_proc in ("N", "Z") and or_value == 1) or (rule.or_proc == "Z" and or_value == 2))


def _principal_columns_hold(rule: Rule, props: DiagnosisProperties | None, sex: int | None) -> bool:
    if rule.icd == "+" and props is None:
        return False
    if rule.icd == "-" and props is not None:
        return False
    if rule.sex and {"M": 1, "F": 2}.get(rule.sex, -1) != sex and not (rule.sex == "-" and sex is None):
        return False
    mdc = recode_sex(props.mdc, sex) if props else ""
    dgcat = recode_sex(props.dgcat, sex) if props else ""
    pdgprop = props.pdgprop if props else frozenset()
    return (
        (not rule.mdc or rule.mdc == mdc)
        and (not rule.dgcat or rule.dgcat == dgcat)
        and (not rule.pdgprop or rule.pdgprop in pdgprop)
    )


def _find_witness(tables: DrgTables, rule: Rule, written: tuple[str, str], role: str) -> Episode | None:
    """An episode holding the code in `role` that first-matches `rule`, or None after a few tries."""
    for attempt in range(6):
        for sex in _SEXES:
            episode = _build_episode(tables, rule, written, role, sex, attempt)
            if episode is None:
                continue
            features = derive_features(tables, episode)
            if _first_match(tables, features, episode, rule.position) is rule and (
                role == "principal" or code_satisfies(rule, episode, _code_text(written), role, tables)
            ):
                return episode
    return None


def _first_match(tables: DrgTables, features: Features, episode: Episode, last: int) -> Rule | None:
    for rule in tables.rules[: last + 1]:
        if first_failed_condition(rule, features, episode) is None:
            return rule
    return None


def _build_episode(
    tables: DrgTables, rule: Rule, written: tuple[str, str], role: str, sex: int | None, attempt: int
) -> Episode | None:
    index = _index(tables)
    forbidden = {v[1:] for v in rule.dgprop if v.startswith("-")}
    forbid_or = {1} if rule.or_proc == "N" else {1, 2} if rule.or_proc == "Z" else set()
    forbid_procpr = {rule.secpro[1:]} if rule.secpro.startswith("-") and len(rule.secpro) > 1 else set()

    def clean_diagnosis(code: str) -> bool:
        props = tables.diagnoses[(code, NO_DAGGER)]
        return not (props.dgprop | props.sdgprop) & forbidden and props.or_value not in forbid_or

    def clean_procedure(code: str) -> bool:
        props = tables.procedures[code]
        return not props.dgprop & forbidden and props.or_value not in forbid_or and not props.procpr & forbid_procpr

    def pick(pool: Iterable[str], ok, skip: int = 0) -> str | None:
        found = [c for c in _head(pool, 200) if ok(c)]
        return found[(attempt + skip) % len(found)] if found else None

    if role == "principal":
        principal = written
        if not _principal_columns_hold(rule, diagnosis_properties(tables, principal), sex):
            return None
    else:
        code = _principal_for(tables, rule, sex, attempt)
        if code is None:
            return None
        principal = (code, "")
    diagnoses: list[tuple[str, str]] = [principal]
    procedures: list[str] = []
    if role == "secondary":
        # the first secondary diagnosis carries SDGPRO: try both places
        diagnoses.append(written)
        if attempt % 2:
            filler = pick(index.plain_singles, clean_diagnosis)
            if filler:
                diagnoses.insert(1, (filler, ""))
    elif role == "procedure":
        procedures.append(written[0])
        if rule.secpro == "+" or attempt % 2:
            lead = pick(index.procedures_by_or.get(0, ()), clean_procedure)
            if lead:
                procedures.insert(0, lead)

    def have() -> Features:
        return derive_features(tables, Episode(tuple(diagnoses), tuple(procedures), sex, _ADULT_AGE_DAYS, 3, "N"))

    features = have()
    if rule.compl and features.cc_level < int(rule.compl):
        kinds = ("G",) if rule.compl == "2" else ("C", "G")
        for category in sorted(tables.complication_categories):
            if category[2:3] in kinds and not _excluded(tables, principal, category):
                code = pick(index.diagnoses_by_compl.get(category, ()), clean_diagnosis)
                if code:
                    diagnoses.append((code, ""))
                    break
    if rule.or_proc in ("S", "P") and not features.or_values & ({1} if rule.or_proc == "S" else {1, 2}):
        code = pick(index.procedures_by_or.get(1, ()), clean_procedure)
        if code:
            procedures.append(code)
    if rule.procpro and rule.procpro not in features.procpr:
        code = pick(index.procedures_by_procpr.get(rule.procpro, ()), clean_procedure)
        if code:
            procedures.append(code)
    if rule.secpro == "+" and not have().secondary_or1:
        code = pick(index.procedures_by_or.get(1, ()), clean_procedure)
        if code:
            procedures.extend([pick(index.procedures_by_or.get(0, ()), clean_procedure) or code, code])
    elif rule.secpro and rule.secpro[0] != "-" and rule.secpro not in features.procedure_procpr:
        code = pick(index.procedures_by_procpr.get(rule.secpro, ()), clean_procedure)
        if code:
            procedures.append(code)
    for value in rule.dgprop:
        if value.startswith("-") or value in have().dgprop:
            continue
        if attempt % 3 == 2 or not index.diagnoses_by_dgprop.get(value):
            code = pick(index.procedures_by_dgprop.get(value, ()), clean_procedure)
            if code:
                procedures.append(code)
                continue
        code = pick(index.diagnoses_by_dgprop.get(value, ()), clean_diagnosis)
        if code:
            diagnoses.append((code, ""))
        elif pick(index.diagnoses_by_sdgprop.get(value, ()), clean_diagnosis):
            diagnoses.insert(1, (pick(index.diagnoses_by_sdgprop[value], clean_diagnosis), ""))
    return Episode(
        diagnoses=tuple(diagnoses),
        procedures=tuple(procedures),
        sex=sex,
        age_days=_satisfying(rule.agelim, _ADULT_AGE_DAYS, attempt),
        duration_days=_satisfying(rule.dur, (3, 0, 1, 10, 2, 30)[attempt % 6], attempt),
        discharge=rule.disch if rule.disch in ("E", "R") else ("N", "R", None)[attempt % 3],
    )


def _principal_for(tables: DrgTables, rule: Rule, sex: int | None, attempt: int) -> str | None:
    """A principal diagnosis that satisfies the rule's principal columns for `sex`."""
    index = _index(tables)
    if rule.icd == "-":
        return None
    pools = []
    for column in ("mdc", "dgcat", "pdgprop"):
        value = getattr(rule, column)
        if value:
            raw = "98" + value[2:] if column != "pdgprop" and value[:2] in ("12", "13") else value
            pools.append(index.singles_by.get((column, value), ()) + index.singles_by.get((column, raw), ()))
    pool = min(pools, key=len) if pools else index.plain_singles
    fits = [c for c in _head(pool, 300) if _principal_columns_hold(rule, tables.diagnoses[(c, NO_DAGGER)], sex)]
    return fits[attempt % len(fits)] if fits else None


def _satisfying(limit, default: int, attempt: int) -> int:
    if limit is None:
        return default
    if limit.op == "<":
        return max(0, limit.days - 1 - (attempt // 2) * 3)
    return limit.days + 1 + (attempt // 2) * 3


def _excluded(tables: DrgTables, principal: tuple[str, str], category: str) -> bool:
    excluded = tables.exclusions.get(category, frozenset())
    return (principal[0], NO_DAGGER) in excluded or (principal[1], principal[0]) in excluded


def _head(pool: Iterable[str], n: int) -> list[str]:
    out = []
    for code in pool:
        out.append(code)
        if len(out) == n:
            break
    return out


def _rule_by_id(tables: DrgTables, rule_id: str) -> Rule:
    return next(rule for rule in tables.rules if rule.id == rule_id)


def _code_text(written: tuple[str, str]) -> str:
    return f"{written[0]} {written[1]}".strip()


def _episode_text(episode: Episode) -> str:
    dx = ",".join(_code_text(d) for d in episode.diagnoses)
    px = ",".join(episode.procedures)
    return (
        f"dx={dx} px={px or '-'} sex={episode.sex} age={episode.age_days} "
        f"dur={episode.duration_days} disch={episode.discharge}"
    )


def _drg_sort_key(drg: str) -> tuple[int, str]:
    digits = "".join(ch for ch in drg if ch.isdigit())
    return (int(digits) if digits else 0, drg)


# --------------------------------------------------------------------------------------------
# drg_contents


@frozen
class RuleContents:
    """One rule leading to a DRG, with the codes that can satisfy its principal and procedure columns."""

    rule: Rule
    principals: tuple[str, ...]  # single codes whose MDC/DGCAT/PDGPROP satisfy the rule (either sex)
    procedures: Mapping[str, tuple[str, ...]]  # condition ("procpro 15S02") -> procedures satisfying it


@frozen
class DrgContents:
    drg: str
    mdc: str
    name: str
    rules: tuple[RuleContents, ...]

    def to_arrow(self) -> pa.Table:
        rows: dict[str, list[Any]] = {"rule": [], "role": [], "condition": [], "code": []}
        for contents in self.rules:
            for code in contents.principals:
                _append(rows, contents.rule.id, "principal", "principal columns", code)
            for condition, codes in contents.procedures.items():
                for code in codes:
                    _append(rows, contents.rule.id, "procedure", condition, code)
        return pa.table(rows)

    def __str__(self) -> str:
        lines = [f"DRG {self.drg} {self.name}".rstrip() + f" (MDC {self.mdc or '?'}): {len(self.rules)} rules"]
        for contents in self.rules:
            columns = "  ".join(f"{k}={v}" for k, v in contents.rule.conditions().items())
            lines.append(f"  rule {contents.rule.id} (position {contents.rule.position}): {columns}")
            lines.append(f"    principal diagnoses ({len(contents.principals)}): {_sample(contents.principals)}")
            for condition, codes in contents.procedures.items():
                lines.append(f"    {condition} ({len(codes)} procedures): {_sample(codes)}")
        return "\n".join(lines)


def drg_contents(tables: DrgTables, drg: str) -> DrgContents:
    """The rules that lead to `drg`, and the principal diagnoses and procedures that satisfy them."""
    drg = drg.strip()
    index = _index(tables)
    found = []
    for rule in tables.rules:
        if rule.drg != drg:
            continue
        principals = tuple(
            code
            for code, dagger in tables.diagnoses
            if dagger == NO_DAGGER
            and any(_principal_columns_hold(rule, tables.diagnoses[(code, NO_DAGGER)], sex) for sex in _SEXES)
        )
        procedures: dict[str, tuple[str, ...]] = {}
        if rule.or_proc in ("S", "P"):
            ors = index.procedures_by_or.get(1, ()) + (index.procedures_by_or.get(2, ()) if rule.or_proc == "P" else ())
            procedures[f"or_proc {rule.or_proc}"] = tuple(sorted(ors))
        if rule.procpro:
            procedures[f"procpro {rule.procpro}"] = tuple(sorted(index.procedures_by_procpr.get(rule.procpro, ())))
        if rule.secpro and rule.secpro[0] != "-" and rule.secpro != "+":
            procedures[f"secpro {rule.secpro}"] = tuple(sorted(index.procedures_by_procpr.get(rule.secpro, ())))
        for value in rule.dgprop:
            if not value.startswith("-") and value in index.procedures_by_dgprop:
                procedures[f"dgprop {value}"] = tuple(sorted(index.procedures_by_dgprop[value]))
        found.append(RuleContents(rule, tuple(sorted(principals)), procedures))
    info = tables.drgs.get(drg)
    return DrgContents(drg, info.mdc if info else "", info.name if info else "", tuple(found))


def _append(rows: dict[str, list[Any]], *values: str) -> None:
    for name, value in zip(rows, values, strict=True):
        rows[name].append(value)


def _sample(codes: tuple[str, ...], n: int = 8) -> str:
    return ", ".join(codes[:n]) + (f", ... ({len(codes) - n} more)" if len(codes) > n else "") if codes else "-"


# --------------------------------------------------------------------------------------------
# diff_tables


@frozen
class TablesDiff:
    """What changed between two releases, one row per change: (kind, item, change, before, after)."""

    before: str
    after: str
    changes: tuple[tuple[str, str, str, str, str], ...]

    def to_arrow(self) -> pa.Table:
        names = ("kind", "item", "change", "before", "after")
        return pa.table({name: [row[i] for row in self.changes] for i, name in enumerate(names)})

    def summary(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for kind, _, change, _, _ in self.changes:
            counts[kind, change] += 1
        return dict(counts)

    def __str__(self) -> str:
        lines = [f"{self.before} -> {self.after}: {len(self.changes)} changes"]
        lines.extend(f"  {kind:<10} {change:<8} {n}" for (kind, change), n in sorted(self.summary().items()))
        shown: dict[tuple[str, str], int] = defaultdict(int)
        for kind, item, change, before, after in self.changes:
            shown[kind, change] += 1
            if shown[kind, change] <= 10:
                lines.append(f"  {kind} {item} {change}: {before or '-'} -> {after or '-'}")
            elif shown[kind, change] == 11:
                lines.append(f"  ... ({self.summary()[kind, change] - 10} more {kind} {change})")
        return "\n".join(lines)


def diff_tables(a: DrgTables, b: DrgTables) -> TablesDiff:
    """Rules added, removed, moved or changed; codes whose properties changed; DRGs added or removed."""
    changes: list[tuple[str, str, str, str, str]] = []
    rules_a = {rule.id: rule for rule in a.rules}
    rules_b = {rule.id: rule for rule in b.rules}
    for rule in b.rules:
        if rule.id not in rules_a:
            changes.append(("rule", rule.id, "added", "", _rule_text(rule)))
    for rule in a.rules:
        if rule.id not in rules_b:
            changes.append(("rule", rule.id, "removed", _rule_text(rule), ""))
        elif _rule_text(rule) != _rule_text(rules_b[rule.id]):
            changes.append(("rule", rule.id, "changed", _rule_text(rule), _rule_text(rules_b[rule.id])))
    common = [rule.id for rule in a.rules if rule.id in rules_b]
    for rule_id in _moved(common, [rule.id for rule in b.rules if rule.id in rules_a]):
        changes.append(("rule", rule_id, "moved", str(rules_a[rule_id].position), str(rules_b[rule_id].position)))
    for kind, before, after, text in (
        ("diagnosis", a.diagnoses, b.diagnoses, _diagnosis_text),
        ("procedure", a.procedures, b.procedures, _procedure_text),
        ("drg", a.drgs, b.drgs, lambda info: f"MDC {info.mdc} {info.name}".rstrip()),
    ):
        for key in sorted(set(before) | set(after)):
            item = _code_text(key) if isinstance(key, tuple) else key
            if key not in before:
                changes.append((kind, item, "added", "", text(after[key])))
            elif key not in after:
                changes.append((kind, item, "removed", text(before[key]), ""))
            elif before[key] != after[key]:
                changes.append((kind, item, "changed", text(before[key]), text(after[key])))
    return TablesDiff(a.release.label, b.release.label, tuple(changes))


def _moved(order_a: list[str], order_b: list[str]) -> list[str]:
    """Rules outside the longest common ordering: those a person would say were moved."""
    rank = {rule_id: i for i, rule_id in enumerate(order_b)}
    ranks = [rank[rule_id] for rule_id in order_a]
    # longest increasing subsequence (patience sorting), remembering predecessors
    tails: list[int] = []
    tail_index: list[int] = []
    previous = [-1] * len(ranks)
    for i, r in enumerate(ranks):
        place = bisect.bisect_left(tails, r)
        if place == len(tails):
            tails.append(r)
            tail_index.append(i)
        else:
            tails[place] = r
            tail_index[place] = i
        previous[i] = tail_index[place - 1] if place else -1
    keep = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        keep.add(i)
        i = previous[i]
    return [rule_id for i, rule_id in enumerate(order_a) if i not in keep]


def _rule_text(rule: Rule) -> str:
    columns = " ".join(f"{k}={v}" for k, v in rule.conditions().items())
    return f"drg={rule.drg} rtc={rule.rtc} {columns}"


def _diagnosis_text(props: DiagnosisProperties) -> str:
    return " ".join(f"{name}={value}" for name, value in _diagnosis_property_rows(props))


def _procedure_text(props) -> str:
    parts = [f"OR={props.or_value}"] + [f"PROCPR={v}" for v in sorted(props.procpr)]
    parts += [f"DGPROP={v}" for v in sorted(props.dgprop)] + ([f"CC={props.cc}"] if props.cc else [])
    return " ".join(parts)
