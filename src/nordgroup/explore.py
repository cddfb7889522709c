"""Exploring a table release: what a code is, which DRGs it can lead to, what a DRG holds, what changed.

`drgs_for_code` is exact: it decides, rule by rule in first-match order, whether some episode holding
the code in its role is grouped by that rule. A reachable rule comes with a witness episode that
the reference grouper puts on it; an unreachable one with a proof (`Unreachable`): conditions that
cannot hold together with the code, or the earlier rules that take every episode meeting it. The
decision is a SAT search over every episode the rules can tell apart (see "deciding
reachability" below); the episodes are those whose codes are in the tables, with any number of
secondary diagnoses and procedures, dagger/asterisk pairs included. What "leading to" means per role:

- `principal`: the DRGs of episodes whose principal diagnosis is the code.
- `secondary`: the DRGs whose matching rule has a condition the code itself satisfies as a
  secondary diagnosis: a `dgprop` value it carries (its SDGPRO when it is the first secondary
  diagnosis), or `compl` met by one of its complication categories. Without that requirement the
  answer would be "every DRG": a secondary diagnosis rides along anywhere.
- `procedure`: the same for a procedure: `or_proc` S/P met by its OR value, `procpro`/`secpro` by its
  PROCPR, `secpro +` by its OR=1 as a non-first procedure, `dgprop` by its DGPROP.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen
from pysat.solvers import Solver

from nordgroup._memo import gc_paused, per_object, pickled
from nordgroup.codes import ROLES, clean_written_code, split_written_diagnosis
from nordgroup.reference import (
    Episode,
    Features,
    derive_features,
    diagnosis_properties,
    first_failed_condition,
    recode_sex,
)
from nordgroup.tables.load import default_cache_dir
from nordgroup.tables.model import (
    NO_DAGGER,
    DiagnosisKey,
    DiagnosisProperties,
    DrgTables,
    Limit,
    ProcedureProperties,
    Rule,
)

if TYPE_CHECKING:
    import pyarrow as pa

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
        return _arrow_table({"where": list(where), "property": list(name), "value": list(value)})

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
        rows.extend((where, name, value) for name, value in tables.diagnoses[key].rows())
    for category in sorted(_index(tables).excluding_categories.get(code, ())):
        rows.append(("diagnosis", "COMPL_EXCL", category))
    procedure = tables.procedures.get(code)
    if procedure is not None:
        rows.extend(("procedure", name, value) for name, value in procedure.rows())
    return CodeInfo(code, tuple(rows))


# --------------------------------------------------------------------------------------------
# indexes, built once per table set


@frozen(eq=False)
class _Index:
    diagnosis_rows_of: Mapping[str, tuple[DiagnosisKey, ...]]
    excluding_categories: Mapping[str, frozenset[str]]
    procedures_by_procpr: Mapping[str, tuple[str, ...]]
    procedures_by_dgprop: Mapping[str, tuple[str, ...]]
    procedures_by_or: Mapping[int, tuple[str, ...]]


@per_object
def _index(tables: DrgTables) -> _Index:
    rows_of: dict[str, list[DiagnosisKey]] = defaultdict(list)
    for key in tables.diagnoses:
        rows_of[key[0]].append(key)
        if key[1]:
            rows_of[key[1]].append(key)
    excluding: dict[str, set[str]] = defaultdict(set)
    for category, keys in tables.exclusions.items():
        for code, _ in keys:
            excluding[code].add(category)
    by_procpr: dict[str, list[str]] = defaultdict(list)
    by_dgprop: dict[str, list[str]] = defaultdict(list)
    by_or: dict[int, list[str]] = defaultdict(list)
    for code in sorted(tables.procedures):
        props = tables.procedures[code]
        for or_value in props.or_values or {0}:
            by_or[or_value].append(code)
        for value in props.procpr:
            by_procpr[value].append(code)
        for value in props.dgprop:
            by_dgprop[value].append(code)
    freeze = lambda d: {k: tuple(v) for k, v in d.items()}  # noqa: E731
    return _Index(
        diagnosis_rows_of=freeze(rows_of),
        excluding_categories={k: frozenset(v) for k, v in excluding.items()},
        procedures_by_procpr=freeze(by_procpr),
        procedures_by_dgprop=freeze(by_dgprop),
        procedures_by_or=freeze(by_or),
    )


# --------------------------------------------------------------------------------------------
# drgs_for_code


@frozen
class Unreachable:
    """Why no episode holding the code in its role is grouped by a rule: a proof, not a guess.

    Either `conditions` cannot hold together with the code in its role (a principal column the
    code does not have, a negative condition the code itself breaks, conditions no episode meets at
    once), or every episode with the code that meets the rule meets one of `shadowed_by` first.
    """

    rule: str
    reason: str
    conditions: tuple[str, ...] = ()  # e.g. "mdc 01", "dgprop2 -05X01"
    shadowed_by: tuple[str, ...] = ()  # earlier rule ids


@frozen
class CodeDrgs:
    """The DRGs a code can lead to in one role: every rule decided, reachable ones with a witness."""

    code: str
    role: str
    drgs: tuple[str, ...]
    examples: Mapping[str, Episode]  # drg -> an episode the reference grouper puts there
    rules: Mapping[str, str]  # drg -> the id of the rule the example matched (its first reachable rule)
    witnesses: Mapping[str, Episode]  # every reachable rule id -> an episode the reference grouper puts on it
    unreachable: Mapping[str, Unreachable]  # every other rule the code could take part in -> the proof
    # Rules the decision procedure found reachable whose constructed witness the reference grouper
    # put elsewhere: only a bug in this module can fill it, and the tests require it empty.
    unconfirmed: tuple[str, ...] = ()

    def to_arrow(self) -> pa.Table:
        return _arrow_table(
            {
                "drg": list(self.drgs),
                "rule": [self.rules[d] for d in self.drgs],
                "example": [_episode_text(self.examples[d]) for d in self.drgs],
            }
        )

    def __str__(self) -> str:
        lines = [f"{self.code} as {self.role}: {len(self.drgs)} DRGs"]
        lines.extend(f"  {d:<6} rule {self.rules[d]:<12} e.g. {_episode_text(self.examples[d])}" for d in self.drgs)
        shadowed = [proof for proof in self.unreachable.values() if proof.shadowed_by]
        lines.append(
            f"  {len(self.witnesses)} rules reachable, {len(self.unreachable)} unreachable "
            f"({len(shadowed)} shadowed by earlier rules, the rest need conditions the code rules out)"
        )
        lines.extend(f"  {proof.rule:<12} {proof.reason}" for proof in shadowed)
        if self.unconfirmed:
            lines.append(
                f"  unconfirmed rules (witness rejected by the reference grouper): {', '.join(self.unconfirmed)}"
            )
        return "\n".join(lines)


def drgs_for_code(tables: DrgTables, code: str, role: str = "principal", *, every_rule: bool = False) -> CodeDrgs:
    """The DRGs `code` can lead to as principal diagnosis, secondary diagnosis or procedure.

    Every rule the code can take part in is decided in table order: witnessed, or proved
    unreachable. Once a DRG is reached its later rules cannot change the answer and are skipped,
    unless `every_rule` asks for a witness or proof of each (slower: one search per rule).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    written = split_written_diagnosis(code)[:2] if role != "procedure" else (clean_written_code(code).cleaned, "")
    with gc_paused():  # the search makes many small objects: collect once, after it
        witnesses, unreachable, unconfirmed = _Search(tables, written, role).run(every_rule)
    examples: dict[str, Episode] = {}
    rules: dict[str, str] = {}
    for rule in tables.rules:
        if rule.id in witnesses and rule.drg not in examples:
            examples[rule.drg] = witnesses[rule.id]
            rules[rule.drg] = rule.id
    drgs = tuple(sorted(examples, key=_drg_sort_key))
    return CodeDrgs(_code_text(written), role, drgs, examples, rules, witnesses, unreachable, tuple(unconfirmed))


def code_satisfies(rule: Rule, episode: Episode, code: str, role: str, tables: DrgTables) -> bool:
    """Whether `code` in `episode` itself satisfies one of `rule`'s conditions, in `role`.

    This is what "the code leads to the DRG" means for secondary diagnoses and procedures; for the
    principal role the code as principal diagnosis is all that is asked.
    """
    if role == "principal":
        return bool(episode.diagnoses) and _principal_is(
            tables, episode.diagnoses[0], split_written_diagnosis(code)[:2]
        )
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
    procedure = tables.procedures.get(code)
    if procedure is None or code not in episode.procedures:
        return False
    not_first = code in episode.procedures[1:]
    return (
        (rule.or_proc == "S" and 1 in procedure.or_values)
        or (rule.or_proc == "P" and bool(procedure.or_values & {1, 2}))
        or (bool(rule.procpro) and rule.procpro in procedure.procpr)
        or (rule.secpro == "+" and not_first and 1 in procedure.or_values)
        or (bool(rule.secpro) and rule.secpro[0] != "-" and rule.secpro in procedure.procpr)
        or any(value in procedure.dgprop for value in rule.dgprop)
    )


def _principal_is(tables: DrgTables, principal: tuple[str, str], written: tuple[str, str]) -> bool:
    """Whether `principal` is the `written` code: exactly, or a single code written as either half
    of a pair with any companion, if it counts there (it is known alone, or the pair is listed)."""
    if principal == written:
        return True
    code = written[0]
    if written[1] or code not in principal or not principal[1]:
        return False
    return (code, NO_DAGGER) in tables.diagnoses or (principal[1], principal[0]) in tables.diagnoses


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


# --------------------------------------------------------------------------------------------
# deciding reachability: every episode the rules can tell apart, as one SAT formula
#
# An episode is abstracted into what the rules read (reference.derive_features): the principal
# diagnosis (MDC/DGCAT/PDGPROP, its DGPROP, the complication categories it excludes), the first
# secondary diagnosis (it alone adds SDGPRO), the later secondary diagnoses, the first procedure
# and the later ones (only they give `secpro +`), sex, discharge, and age and duration as the
# intervals between the rules' limits. Codes with the same contribution to those features form
# one class, one variable: "some code of this class is in that place". A rule is reachable for the
# code exactly when the formula with the code placed in its role, every earlier rule failing and
# this rule's conditions holding is satisfiable; each model becomes a concrete episode that the
# reference grouper must group on the rule, and each refutation is explained from the solver's core.

TRUE = 1  # variable 1 of every formula is fixed true: conditions that always or never hold


class _Cnf:
    """A growing CNF formula and the definitions the episode encoding is built from."""

    def __init__(self, top: int = 0) -> None:
        self.clauses: list[list[int]] = [] if top else [[TRUE]]
        self.top = top or TRUE
        # variables whose true value means "fewer codes": `both` defines a conjunction through the
        # negated disjunction, so the solver should try that disjunction true first
        self.rather_true: list[int] = []
        self.at_most_ones: list[list[int]] = []

    def new(self) -> int:
        self.top += 1
        return self.top

    def either(self, literals: Iterable[int]) -> int:
        """A literal equivalent to the disjunction of `literals`."""
        found = {lit for lit in literals if lit != -TRUE}
        if TRUE in found:
            return TRUE
        if len(found) <= 1:
            return found.pop() if found else -TRUE
        var = self.new()
        self.clauses.append([-var, *sorted(found)])
        self.clauses.extend([var, -lit] for lit in found)
        return var

    def both(self, literals: Iterable[int]) -> int:
        negated = self.either(-lit for lit in literals)
        if abs(negated) != TRUE:
            self.rather_true.append(negated)
        return -negated

    def at_most_one(self, literals: list[int]) -> None:
        self.at_most_ones.append(list(literals))  # a native cardinality constraint: no helper variables

    def exactly_one(self, literals: list[int]) -> None:
        self.at_most_one(literals)
        self.clauses.append(list(literals))


# What a code contributes where it stands, as tokens: ("dgprop", "05X01"), ("category", "05G01"), ...
Token = tuple[Any, ...]
# Where an item stands, for decoding a model into an episode
_HEAD, _PAIR_HEAD, _COMPANION, _FIRST, _FIRST_PAIR, _SECOND_HALF, _LATER = range(7)
_FIRST_PROCEDURE, _LATER_PROCEDURE = 7, 8


@frozen(eq=False)
class _Space:
    """The code-independent part of the formula for one table release."""

    # the clauses one after another, and where each ends: read back as two buffers, not 77 000 lists
    clause_literals: array
    clause_ends: array
    at_most_ones: tuple[list[int], ...]
    top: int
    conditions: tuple[tuple[tuple[str, int], ...], ...]  # per rule: (label, literal) per filled column
    no_principal: int
    any_companion: int
    any_second_half: int
    heads: Mapping[DiagnosisKey, int]  # diagnosis key (single or listed pair) -> its principal class
    companions: Mapping[str, int]
    firsts: Mapping[DiagnosisKey, int]  # as first secondary diagnosis
    second_halves: Mapping[str, int]  # the other code of a pair written as first secondary diagnosis
    laters: Mapping[DiagnosisKey, tuple[int, ...]]  # the item classes whose union is the code's contribution
    first_procedures: Mapping[str, int]
    later_procedures: Mapping[str, tuple[int, ...]]
    any_first: int
    any_first_procedure: int
    category_counts: Mapping[str, int]  # a category present would count (not excluded, activated)
    # item variable -> (place, member codes, what each member contributes there)
    items: Mapping[int, tuple[int, tuple[Any, ...], frozenset[Token]]]
    item_vars: range  # the items are the first variables made, one after another
    phases: list[int]  # the value the solver tries first for each variable: the fewest codes
    # for witnesses built without a search: (place, token) -> the item with the fewest tokens
    # giving it there ((place, None): an item giving nothing), and the principal-diagnosis items
    # of each MDC ("" for all of them), fewest tokens first
    providers: Mapping[tuple[int, Token | None], int]
    principals_by_mdc: Mapping[str, tuple[int, ...]]
    # the rules that can match an episode of each (sex-recoded) principal MDC, in order: a rule
    # with another MDC fails on its `mdc` column, so the reference first match skips it anyway
    rules_by_mdc: Mapping[str, tuple[int, ...]]  # rule positions (the space is pickled apart from the rules)
    sexes: tuple[tuple[int, int | None], ...]
    discharges: tuple[tuple[int, str], ...]
    ages: tuple[tuple[int, int | None], ...]
    durations: tuple[tuple[int, int | None], ...]

    def clauses(self) -> list[list[int]]:
        literals = self.clause_literals.tolist()
        return [literals[start:end] for start, end in itertools.pairwise(itertools.chain((0,), self.clause_ends))]


@per_object
def _space(tables: DrgTables) -> _Space:
    """The space of `tables`, kept on disk beside the compiled tables: building it takes seconds,
    reading it a fraction of one, and an interactive `nordgroup tables code` pays it every time."""
    key = hashlib.sha256(f"{_SPACE_VERSION}:{tables.release.source_hash}".encode()).hexdigest()[:32]
    return pickled(default_cache_dir() / f"space-{key}.pickle", lambda: _build_space(tables))


_SPACE_VERSION = "5"  # raise when `_Space` or what `_build_space` puts in it changes


def _build_space(tables: DrgTables) -> _Space:
    cnf = _Cnf()
    rules = tables.rules
    # only the values some rule reads (or that activate a complication category) tell codes apart
    dgprop_read = {value.lstrip("-") for rule in rules for value in rule.dgprop}
    dgprop_read |= {
        value for category in tables.complication_categories.values() for value in category.activating_dgprop
    }
    procpr_read = {rule.procpro for rule in rules} | {rule.secpro.lstrip("-") for rule in rules}
    pdgprop_read = {rule.pdgprop for rule in rules}
    excluded_from: dict[DiagnosisKey, set[str]] = defaultdict(set)
    for category, keys in tables.exclusions.items():
        for key in keys:
            excluded_from[key].add(category)

    def shared(props) -> set[Token]:  # what a code gives wherever it stands
        tokens = {("dgprop", v) for v in props.dgprop & dgprop_read} | {
            ("procpr", v) for v in props.procpr & procpr_read
        }
        return tokens | {("or", v) for v in props.or_values - {0}}

    def as_principal(props, key_excluded: set[str]) -> set[Token]:
        tokens = shared(props) | {("pdgprop", v) for v in props.pdgprop & pdgprop_read}
        return tokens | {("excluded", c) for c in key_excluded}

    def as_secondary(props, first: bool) -> set[Token]:
        tokens = shared(props) | {("category", c) for c in props.compl}
        return tokens | ({("dgprop", v) for v in props.sdgprop & dgprop_read} if first else set())

    def as_procedure(props, later: bool) -> set[Token]:
        tokens = {("dgprop", v) for v in props.dgprop & dgprop_read}
        tokens |= {("procpr", v) for v in props.procpr & procpr_read} | {
            ("procedure_procpr", v) for v in props.procpr & procpr_read
        }
        tokens |= {("or", v) for v in props.or_values - {0}}
        tokens |= {("procedure_cc", props.cc)} if props.cc else set()
        return tokens | ({("secondary_or1",)} if later and 1 in props.or_values else set())

    singles = sorted(code for code, dagger in tables.diagnoses if dagger == NO_DAGGER)
    pairs = sorted(key for key in tables.diagnoses if key[1] != NO_DAGGER)
    pair_props = {key: diagnosis_properties(tables, (key[1], key[0])) for key in pairs}
    pair_excluded = {
        key: excluded_from[key] | excluded_from[(key[0], NO_DAGGER)] | excluded_from[(key[1], NO_DAGGER)]
        for key in pairs
    }
    sources: dict[Token, list[int]] = defaultdict(list)
    items: dict[int, tuple[int, tuple[Any, ...], frozenset[Token]]] = {}

    def classes(place: int, members: Iterable[tuple[Any, frozenset[Token]]]) -> dict[Any, int]:
        """One variable per distinct contribution; returns member -> its variable."""
        by_tokens: dict[frozenset[Token], list[Any]] = defaultdict(list)
        for member, tokens in members:
            by_tokens[tokens].append(member)
        var_of = {}
        for tokens, codes in by_tokens.items():
            var = cnf.new()
            items[var] = (place, tuple(codes), tokens)
            for token in tokens:
                sources[token].append(var)
            var_of.update(dict.fromkeys(codes, var))
        return var_of

    def head_tokens(props, excluded: set[str]) -> frozenset[Token]:
        return frozenset(as_principal(props, excluded) | {("mdc", props.mdc), ("dgcat", props.dgcat)})

    diagnoses = tables.diagnoses
    heads = classes(
        _HEAD,
        (((c, NO_DAGGER), head_tokens(diagnoses[(c, NO_DAGGER)], excluded_from[(c, NO_DAGGER)])) for c in singles),
    )
    pair_heads = classes(_PAIR_HEAD, ((key, head_tokens(pair_props[key], pair_excluded[key])) for key in pairs))
    companions = classes(
        _COMPANION,
        ((c, frozenset(as_principal(diagnoses[(c, NO_DAGGER)], excluded_from[(c, NO_DAGGER)]))) for c in singles),
    )
    firsts = classes(
        _FIRST, (((c, NO_DAGGER), frozenset(as_secondary(diagnoses[(c, NO_DAGGER)], True))) for c in singles)
    )
    first_pairs = classes(_FIRST_PAIR, ((key, frozenset(as_secondary(pair_props[key], True))) for key in pairs))
    second_halves = classes(
        _SECOND_HALF, ((c, frozenset(as_secondary(diagnoses[(c, NO_DAGGER)], True))) for c in singles)
    )
    later_tokens = {(c, NO_DAGGER): frozenset(as_secondary(diagnoses[(c, NO_DAGGER)], False)) for c in singles}
    later_tokens |= {key: frozenset(as_secondary(pair_props[key], False)) for key in pairs}
    laters = _union_classes(later_tokens, _LATER, cnf, sources, items)
    procedures = sorted(tables.procedures)
    first_procedures = classes(
        _FIRST_PROCEDURE, ((c, frozenset(as_procedure(tables.procedures[c], False))) for c in procedures)
    )
    later_procedures = _union_classes(
        {c: frozenset(as_procedure(tables.procedures[c], True)) for c in procedures},
        _LATER_PROCEDURE,
        cnf,
        sources,
        items,
    )

    # places: one principal (none, a code, a listed pair, or a code with a companion code written as
    # a pair), at most one first secondary diagnosis (a code, a listed pair, or two codes as a pair),
    # later diagnoses only after a first one, later procedures only after a first one
    no_principal = cnf.new()
    single_heads = sorted(set(heads.values()))
    cnf.exactly_one([no_principal, *single_heads, *sorted(set(pair_heads.values()))])
    companion_vars = sorted(set(companions.values()))
    cnf.at_most_one(companion_vars)
    any_companion = cnf.either(companion_vars)
    cnf.clauses.append([-any_companion, *single_heads])
    first_vars = sorted(set(firsts.values()) | set(first_pairs.values()))
    cnf.at_most_one(first_vars)
    any_first = cnf.either(first_vars)
    half_vars = sorted(set(second_halves.values()))
    cnf.at_most_one(half_vars)
    any_second_half = cnf.either(half_vars)
    cnf.clauses.append([-any_second_half, *sorted(set(firsts.values()))])
    for var in {v for vs in laters.values() for v in vs}:
        cnf.clauses.append([-var, any_first])
    first_procedure_vars = sorted(set(first_procedures.values()))
    cnf.at_most_one(first_procedure_vars)
    any_first_procedure = cnf.either(first_procedure_vars)
    for var in {v for vs in later_procedures.values() for v in vs}:
        cnf.clauses.append([-var, any_first_procedure])

    features: dict[Token, int] = {}

    def feature(*token: Any) -> int:
        if token not in features:
            features[token] = cnf.either(sources.get(token, ()))
        return features[token]

    sexes = tuple((cnf.new(), sex) for sex in _SEXES)
    cnf.exactly_one([var for var, _ in sexes])
    discharges = tuple((cnf.new(), value) for value in ("N", "E", "R"))
    cnf.exactly_one([var for var, _ in discharges])
    ages = _intervals(cnf, [rule.agelim for rule in rules if rule.agelim], _ADULT_AGE_DAYS)
    durations = _intervals(cnf, [rule.dur for rule in rules if rule.dur], 3)
    sex_var = {sex: var for var, sex in sexes}

    def recoded(column: str, value: str) -> int:
        """The principal's MDC or DGCAT is `value` after sex recoding (98.. -> 12.. male, 13.. female)."""
        if value[:2] in ("12", "13"):
            recoded_from = cnf.both([feature(column, "98" + value[2:]), sex_var[1 if value[:2] == "12" else 2]])
            return cnf.either([feature(column, value), recoded_from])
        if value[:2] == "98":
            return cnf.both([feature(column, value), sex_var[None]])
        return feature(column, value)

    category_counts = {}
    counting = []
    for category in sorted({c for token in sources if token[0] == "category" for c in token[1:]}):
        info = tables.complication_categories.get(category)
        active = TRUE
        if category[2:3] == "I":
            active = cnf.either(feature("dgprop", v) for v in (info.activating_dgprop if info else ()))
        category_counts[category] = cnf.both([-feature("excluded", category), active])
        counting.append((category, cnf.both([feature("category", category), category_counts[category]])))
    cc_at_least = {
        level: cnf.either(
            [feature("procedure_cc", cc) for cc in {t[1] for t in sources if t[0] == "procedure_cc"} if cc >= level]
            + [counts for category, counts in counting if (2 if category[2:3] == "G" else 1) >= level]
        )
        for level in (1, 2)
    }
    or_1, or_1_or_2 = feature("or", 1), cnf.either([feature("or", 1), feature("or", 2)])

    def literal(rule: Rule, column: str, value: str) -> int:
        if column == "icd":
            return {"+": -no_principal, "-": no_principal}.get(value, -TRUE)
        if column in ("mdc", "dgcat"):
            return recoded(column, value)
        if column == "pdgprop":
            return feature("pdgprop", value)
        if column == "compl":
            level = int(value)
            return TRUE if level <= 0 else cc_at_least.get(level, -TRUE)
        if column == "or_proc":
            return {"S": or_1, "P": or_1_or_2, "N": -or_1, "Z": -or_1_or_2}.get(value, -TRUE)
        if column == "procpro":
            return feature("procpr", value)
        if column == "secpro":
            if value in ("+", "-"):
                return feature("secondary_or1") * (1 if value == "+" else -1)
            return -feature("procedure_procpr", value[1:]) if value[0] == "-" else feature("procedure_procpr", value)
        if column.startswith("dgprop"):
            return -feature("dgprop", value[1:]) if value[0] == "-" else feature("dgprop", value)
        if column in ("agelim", "dur"):
            limit = rule.agelim if column == "agelim" else rule.dur
            assert limit is not None  # the column is filled
            return cnf.either(
                var for var, at in (ages if column == "agelim" else durations) if at is not None and limit.holds(at)
            )
        if column == "sex":
            return {"M": sex_var[1], "F": sex_var[2], "-": sex_var[None]}.get(value, -TRUE)
        died = discharges[1][0]
        return {"E": died, "N": -died, "R": discharges[2][0]}.get(value, -TRUE)

    item_vars = range(min(items), max(items) + 1)
    if len(item_vars) != len(items):
        raise AssertionError("item variables must be numbered one after another")
    conditions = tuple(
        tuple((f"{column} {value}", literal(rule, column, value)) for column, value in rule.conditions().items())
        for rule in rules
    )
    phases = {var: -var for var in range(TRUE + 1, cnf.top + 1)}
    phases.update({abs(lit): lit for lit in cnf.rather_true})
    # witnesses read like ordinary stays: a man of 40, three days, discharged alive, unless a rule asks otherwise
    usual = [sexes[0][0], discharges[0][0]]
    usual += [var for var, value in ages if value == _ADULT_AGE_DAYS] + [var for var, value in durations if value == 3]
    phases.update({var: var for var in usual})
    providers: dict[tuple[int, Token | None], int] = {}
    principals_by_mdc: dict[str, list[int]] = defaultdict(list)
    for var in sorted(items, key=lambda var: len(items[var][2])):
        place, _, tokens = items[var]
        for token in tokens or (None,):
            providers.setdefault((place, token), var)
        if place in (_HEAD, _PAIR_HEAD):
            principals_by_mdc[next(token[1] for token in tokens if token[0] == "mdc")].append(var)
            principals_by_mdc[""].append(var)
    return _Space(
        clause_literals=array("i", itertools.chain.from_iterable(cnf.clauses)),
        clause_ends=array("i", itertools.accumulate(map(len, cnf.clauses))),
        at_most_ones=tuple(cnf.at_most_ones),
        top=cnf.top,
        conditions=conditions,
        no_principal=no_principal,
        any_companion=any_companion,
        any_second_half=any_second_half,
        heads={**heads, **pair_heads},
        companions=companions,
        firsts={**firsts, **first_pairs},
        second_halves=second_halves,
        laters=laters,
        first_procedures=first_procedures,
        later_procedures=later_procedures,
        any_first=any_first,
        any_first_procedure=any_first_procedure,
        category_counts=category_counts,
        items=items,
        item_vars=item_vars,
        phases=list(phases.values()),
        providers=providers,
        principals_by_mdc={mdc: tuple(vars_) for mdc, vars_ in principals_by_mdc.items()},
        rules_by_mdc={
            mdc: tuple(rule.position for rule in rules if rule.mdc in ("", mdc))
            for mdc in {""} | {token[1] for token in sources if token[0] == "mdc"} | {rule.mdc for rule in rules}
        },
        sexes=sexes,
        discharges=discharges,
        ages=ages,
        durations=durations,
    )


def _union_classes(
    tokens_of: Mapping[Any, frozenset[Token]],
    place: int,
    cnf: _Cnf,
    sources: dict[Token, list[int]],
    items: dict[int, tuple[int, tuple[Any, ...], frozenset[Token]]],
) -> dict[Any, tuple[int, ...]]:
    """Item classes for places that take any number of codes, where contributions simply add up.

    A contribution that is the union of smaller ones adds nothing an episode could not get from
    those, so only the irreducible contributions become variables; each code maps to the classes
    whose union is its contribution (none for a code that contributes nothing).
    """
    members: dict[frozenset[Token], list[Any]] = defaultdict(list)
    for code, tokens in tokens_of.items():
        if tokens:
            members[tokens].append(code)
    holding: dict[Token, list[frozenset[Token]]] = defaultdict(list)
    for tokens in members:
        for token in tokens:
            holding[token].append(tokens)
    parts: dict[frozenset[Token], list[frozenset[Token]]] = {}
    for tokens in members:
        smaller = {other for token in tokens for other in holding[token] if other < tokens}
        covered = frozenset().union(*smaller) if smaller else frozenset()
        parts[tokens] = [tokens] if covered != tokens else [o for o in smaller if not any(o < s for s in smaller)]
    var_of: dict[frozenset[Token], int] = {}
    for tokens in members:
        if parts[tokens] == [tokens]:
            var_of[tokens] = var = cnf.new()
            items[var] = (place, tuple(members[tokens]), tokens)
            for token in tokens:
                sources[token].append(var)

    def irreducible(tokens: frozenset[Token]) -> tuple[int, ...]:
        if tokens in var_of:
            return (var_of[tokens],)
        return tuple(sorted({v for part in parts[tokens] for v in irreducible(part)}))

    return {code: irreducible(tokens) for code, tokens in tokens_of.items() if tokens} | {
        code: () for code, tokens in tokens_of.items() if not tokens
    }


def _intervals(cnf: _Cnf, limits: list, usual: int) -> tuple[tuple[int, int | None], ...]:
    """Exactly one of: the stretches of whole numbers no limit tells apart, or unknown (None).

    Each stretch is represented by the value nearest `usual` in it: what a witness episode gets.
    """
    cuts = sorted({limit.days if limit.op == "<" else limit.days + 1 for limit in limits})
    bounds = list(zip([None, *cuts], [*(c - 1 for c in cuts), None], strict=True))
    values = []
    for low, high in bounds:
        value = usual
        if low is not None:
            value = max(value, low)
        if high is not None:
            value = min(value, high)
        values.append(value)
    found = tuple((cnf.new(), value) for value in [*values, None])
    cnf.exactly_one([var for var, _ in found])
    return found


# Gluecard 3: Glucose with native at-most-one constraints (no helper variables for "one principal
# diagnosis"), assumption cores, propagation and settable phases. Measured against MiniCard and
# Gluecard 4 on the 2017 tables: the fastest of the three (JAH00 as procedure 1.6 s, 2.3 s, 2.0 s).
_SOLVER = "gluecard3"


class _Search:
    """One question: the code placed in its role, then every rule decided in first-match order."""

    def __init__(self, tables: DrgTables, written: tuple[str, str], role: str) -> None:
        self.tables, self.written, self.role = tables, written, role
        self.text = _code_text(written)
        self.space = _space(tables)
        self.cnf = _Cnf(self.space.top)
        self.first = self.later = -TRUE  # the code stands first / later among diagnoses or procedures
        self.placed = self._place()

    def _parts(self) -> tuple[DiagnosisKey, DiagnosisKey | None]:
        """The written diagnosis as the model sees it: one key (a code or listed pair), or two codes."""
        dagger, asterisk = self.written
        if not asterisk:
            return (dagger, NO_DAGGER), None
        if (asterisk, dagger) in self.tables.diagnoses:
            return (asterisk, dagger), None
        known = [(code, NO_DAGGER) for code in (asterisk, dagger) if (code, NO_DAGGER) in self.tables.diagnoses]
        return known[0], (known[1] if len(known) > 1 else None)

    def _place(self) -> bool:
        """Clauses putting the code in its role; False when the code is unknown, so no rule involves it."""
        space, clauses, written = self.space, self.cnf.clauses, self.written
        if self.role == "principal":
            if written[1]:  # a written pair: exactly that pair
                if diagnosis_properties(self.tables, written) is None:
                    clauses.append([space.no_principal])  # an unknown principal diagnosis counts as none
                    return True
                head, companion = self._parts()
                clauses.append([space.heads[head]])
                clauses.append([space.companions[companion[0]]] if companion else [-space.any_companion])
                return True
            # A single code may also be written as either half of a pair with any other code: as the
            # asterisk (its own MDC, the other code a companion), as the dagger (the other code's MDC,
            # itself a companion), or in a listed pair of its own. Alone is the first with no companion.
            code = written[0]
            options = [space.heads[key] for key in self._listed_pairs()]
            if (code, NO_DAGGER) in self.tables.diagnoses:
                options += [space.heads[(code, NO_DAGGER)], space.companions[code]]
            else:
                options.append(space.no_principal)  # alone, an unknown principal diagnosis counts as none
            clauses.append([self.cnf.either(options)])
            return True
        if self.role == "secondary" and diagnosis_properties(self.tables, written) is None:
            return False
        if self.role == "procedure" and written[0] not in self.tables.procedures:
            return False
        self.first, self.later = self.cnf.new(), self.cnf.new()
        clauses.append([self.first, self.later])
        if self.role == "secondary":
            head, companion = self._parts()
            clauses.append([-self.first, space.firsts[head]])
            clauses.append([-self.first, space.second_halves[companion[0]] if companion else -space.any_second_half])
            clauses.append([-self.later, space.any_first])  # a later diagnosis needs a first one
            for key in (head, companion) if companion else (head,):
                clauses.extend([-self.later, var] for var in space.laters[key])
        else:
            clauses.append([-self.first, space.first_procedures[written[0]]])
            clauses.append([-self.later, space.any_first_procedure])
            clauses.extend([-self.later, var] for var in space.later_procedures[written[0]])
        return True

    def _listed_pairs(self) -> list[DiagnosisKey]:
        """The listed pairs (asterisk, dagger) the single written code is either half of."""
        code = self.written[0]
        return [key for key in self.space.heads if key[1] and code in key]

    def _satisfied(self, rule: Rule) -> int:
        """A literal for "the code itself meets one of the rule's conditions" (code_satisfies)."""
        if self.role == "principal":
            return TRUE
        if self.role == "procedure":
            procedure = self.tables.procedures[self.written[0]]
            probe = Episode(diagnoses=(("", ""),), procedures=(self.written[0],))
            if code_satisfies(rule, probe, self.text, self.role, self.tables):
                return TRUE
            return self.later if rule.secpro == "+" and 1 in procedure.or_values else -TRUE
        props = diagnosis_properties(self.tables, self.written)
        assert props is not None  # an unknown code is not placed (_place), so no rule is asked
        if any(value in props.dgprop for value in rule.dgprop):
            return TRUE
        options = [self.first] if any(value in props.sdgprop for value in rule.dgprop) else []
        if rule.compl:
            needed = int(rule.compl)
            for category in sorted(props.compl):
                if (2 if category[2:3] == "G" else 1) >= needed:
                    options.append(self.space.category_counts[category])
        return self._define(self.cnf.either(options))

    def _define(self, literal: int) -> int:
        """Hand the clauses defining new variables to the solver."""
        for clause in self.cnf.clauses:
            self.solver.add_clause(clause)
        self.cnf.clauses.clear()
        return literal

    def run(self, every_rule: bool) -> tuple[dict[str, Episode], dict[str, Unreachable], list[str]]:
        witnesses: dict[str, Episode] = {}
        unreachable: dict[str, Unreachable] = {}
        unconfirmed: list[str] = []
        if not self.placed:
            return witnesses, unreachable, unconfirmed
        space = self.space
        # Each earlier rule's failure is a clause behind a guard literal: a search assumes every
        # guard, so a refutation's core names the earlier rules it needs. (A second solver holding
        # the failures for good cost its set-up and was no faster.)
        self.solver = Solver(name=_SOLVER, bootstrap_with=space.clauses())
        for literals in space.at_most_ones:
            self.solver.add_atmost(literals, 1)
        # what placing the code alone decides (a principal's MDC, ...): refuted without a search;
        # asked before the placement joins the formula, as propagation reports only what follows
        # from assumptions
        units = [clause[0] for clause in self.cnf.clauses if len(clause) == 1]
        settled = {TRUE, *units, *self.solver.propagate(assumptions=units)[1]}
        self._define(TRUE)
        reached: set[str] = set()
        guards: list[tuple[int, Rule]] = []
        guard_literals: list[int] = []
        try:
            for rule, conditions in zip(self.tables.rules, space.conditions, strict=True):
                satisfied = self._satisfied(rule)
                broken = next((label for label, lit in conditions if -lit in settled), None)
                if satisfied == -TRUE or (rule.drg in reached and not every_rule):
                    pass  # not the code's rule, or its DRG is already reached: cannot change the answer
                elif broken is not None:
                    reason = f"{broken}: never with {self.text} as {self.role}"
                    unreachable[rule.id] = Unreachable(rule.id, reason, conditions=(broken,))
                elif (guessed := self._guess(rule, satisfied)) is not None:
                    witnesses[rule.id] = guessed
                    reached.add(rule.drg)
                else:
                    needed = [lit for _, lit in conditions if lit != TRUE] + ([satisfied] if satisfied != TRUE else [])
                    # small witnesses: the solver tries "no code of this class" first. Glucose's
                    # phase saving overwrites these after its first backtrack, so they are restated
                    # for every search: models then hold 3 codes instead of 25-55, and are quicker
                    # to turn into witnesses (I210 secondary 0.55 -> 0.45 s)
                    self.solver.set_phases(space.phases)
                    if self.solver.solve(assumptions=needed + guard_literals):
                        episode = self._witness(self.solver.get_model(), rule)
                        if episode is None:
                            unconfirmed.append(rule.id)
                        else:
                            witnesses[rule.id] = episode
                            reached.add(rule.drg)
                    else:
                        core = set(self.solver.get_core() or ())
                        proof = self._prove(rule, conditions, satisfied, guards, core)
                        if proof is None:
                            unconfirmed.append(rule.id)
                        else:
                            unreachable[rule.id] = proof
                if -TRUE in [lit for _, lit in conditions]:
                    continue  # a condition nothing meets: the rule never matches, nothing to exclude
                fails = [-lit for _, lit in conditions if lit != TRUE]
                guard = self.cnf.new()
                self._define(guard)
                self.solver.add_clause([-guard, *fails])
                guards.append((guard, rule))
                guard_literals.append(guard)
        finally:
            self.solver.delete()
        return witnesses, unreachable, unconfirmed

    # ---- refutations

    def _prove(
        self,
        rule: Rule,
        conditions: tuple[tuple[str, int], ...],
        satisfied: int,
        guards: list[tuple[int, Rule]],
        core: set[int],
    ) -> Unreachable | None:
        """Why the search (whose core is `core`) found no episode: the rule's own conditions, or
        the earlier rules it needs. None when the solver contradicts itself: a bug, reported as
        unconfirmed."""
        named = [(label, lit) for label, lit in conditions if lit != TRUE]
        if satisfied != TRUE:
            named.append((f"{self.text} meeting one of them", satisfied))
        own = [lit for _, lit in named]
        used: list[int] = []
        if self.solver.propagate(assumptions=own)[0]:  # the own conditions alone do not clash
            used = [guard for guard, _ in guards if guard in core]
        if not used:
            if self.solver.solve(assumptions=own):
                return None
            clashing = self._minimal([], self._core(own))
            labels = tuple(label for label, lit in named if lit in clashing)
            shown = ", ".join(label for label in labels if not label.startswith(self.text)) or "its conditions"
            return Unreachable(rule.id, f"{shown}: never with {self.text} as {self.role}", conditions=labels)
        # one earlier rule whose conditions the rule's own imply is found by propagation alone
        single = next((g for g in reversed(used) if not self.solver.propagate(assumptions=[*own, g])[0]), None)
        needed = set([single] if single else self._minimal(own, used))
        shadowing = [earlier for guard, earlier in guards if guard in needed]
        names = ", ".join(f"{r.id} (DRG {r.drg})" for r in shadowing)
        reason = f"shadowed by rule {names}" if len(shadowing) == 1 else f"shadowed by rules {names} together"
        return Unreachable(rule.id, reason, shadowed_by=tuple(r.id for r in shadowing))

    def _core(self, among: list[int]) -> list[int]:
        core = set(self.solver.get_core() or ())
        return [lit for lit in among if lit in core]

    def _minimal(self, fixed: list[int], candidates: list[int]) -> list[int]:
        """Drop literals from an unsatisfiable set of assumptions while it stays unsatisfiable."""
        needed = list(candidates)
        for lit in list(candidates):
            if len(needed) > 1 and lit in needed:
                trial = [other for other in needed if other != lit]
                if not self.solver.solve(assumptions=fixed + trial):
                    needed = [other for other in trial if other in set(self.solver.get_core() or trial)]
        return needed

    # ---- witnesses

    def _guess(self, rule: Rule, satisfied: int) -> Episode | None:
        """A witness built straight from the rule's columns, without a search; None when it fails.

        A usual stay (see `_build_space`) with the age, duration, sex and discharge the rule asks
        for, a principal diagnosis of its MDC with the fewest properties and the code in its role;
        then each condition still failing is met by adding the code with the fewest properties that
        meets it. Only the reference grouper's verdict counts, so a guess is never wrong, at worst
        missing: then the solver decides. On the 2017 tables 91-99 % of the reachable rules are
        witnessed so, at about an eighth of a search's cost (JAH00 as procedure 1.3 -> 0.35 s).
        """
        space, role = self.space, self.role
        age = _nearest(space.ages, _ADULT_AGE_DAYS, within=rule.agelim)
        duration = _nearest(space.durations, 3, within=rule.dur)
        sex = {"M": 1, "F": 2, "-": None}.get(rule.sex, 1)
        principal_items: list[int] = []
        if role == "principal":
            principal = self.written
            props = diagnosis_properties(self.tables, principal)
            if props is not None:
                head, companion = self._parts()
                principal_items = [space.heads[head]] + ([space.companions[companion[0]]] if companion else [])
            if not principal[1] and props is not None and not _principal_columns_hold(rule, props, sex):
                # the code as dagger of a head code meeting the rule's principal columns
                found = self._principal(rule, sex)
                if found is None:
                    return None
                var, sex = found
                if space.items[var][0] != _HEAD:
                    return None
                other = next(
                    (h for h, _ in space.items[var][1] if (h, principal[0]) not in self.tables.diagnoses), None
                )
                if other is None:
                    return None
                principal, principal_items = (principal[0], other), [var, space.companions[principal[0]]]
        elif rule.icd == "-":
            principal = ("", "")
        else:
            found = self._principal(rule, sex)
            if found is None:
                return None
            var, sex = found
            principal, principal_items = _written_key(space.items[var][1][0]), [var]
        excluded = {token[1] for var in principal_items for token in space.items[var][2] if token[0] == "excluded"}
        diagnoses, procedures = [principal], []
        if role == "secondary":
            diagnoses.append(self.written)
        elif role == "procedure":
            if satisfied == self.later:  # only as a later procedure (`secpro +`): some other first
                if (_FIRST_PROCEDURE, None) not in space.providers:
                    return None
                procedures.append(self._code(_FIRST_PROCEDURE, None))
            procedures.append(self.written[0])
        episode = Episode(
            diagnoses=tuple(diagnoses),
            procedures=tuple(procedures),
            sex=sex,
            age_days=age,
            duration_days=duration,
            discharge=rule.disch or "N",
        )
        # each round meets one more of the rule's conditions, or moves the episode out of an
        # earlier rule that takes it; or gives up
        earlier: list[Rule] = []
        for _ in range(len(rule.conditions()) + 4):
            features = derive_features(self.tables, episode)
            failed = first_failed_condition(rule, features, episode)
            if failed is not None:
                added = self._meeting(rule, failed, episode, excluded)
                if added is None:
                    return None
                episode = _with_codes(episode, [(*added, frozenset())])
                continue
            match = _first_match(self.tables, features, episode, rule.position)
            if match is rule:
                return episode if code_satisfies(rule, episode, self.text, role, self.tables) else None
            if match is None:
                return None
            earlier.append(match)
            moved = self._outside(earlier, rule, episode)
            if moved is None:
                return None
            episode = moved
        return None

    def _outside(self, earlier: list[Rule], rule: Rule, episode: Episode) -> Episode | None:
        """The episode with an age, duration or discharge that the last earlier rule to take it
        excludes, as do the limits of those it was moved out of before, and that the rule admits
        (the newborn rules take every usual adult stay of MDC 15 first): the value nearest the
        usual one, else unknown, which no limit admits; None when there is none."""
        space, last = self.space, earlier[-1]
        for limit, values, usual in (("agelim", space.ages, _ADULT_AGE_DAYS), ("dur", space.durations, 3)):
            if getattr(last, limit) is not None:
                theirs = [getattr(other, limit) for other in earlier if getattr(other, limit) is not None]
                nearest = _nearest(values, usual, within=getattr(rule, limit), outside=theirs)
                if nearest is not None or getattr(rule, limit) is None:
                    if limit == "agelim":
                        return attrs.evolve(episode, age_days=nearest)
                    return attrs.evolve(episode, duration_days=nearest)
        if last.disch and not rule.disch:
            return attrs.evolve(episode, discharge={"E": "N", "N": "E", "R": "N"}[last.disch])
        return None

    def _principal(self, rule: Rule, sex: int | None) -> tuple[int, int | None] | None:
        """The principal-diagnosis item with the fewest properties meeting the rule's principal
        columns (the sex included: MDC 98 codes become 12 or 13 with it), and that sex."""
        mdcs = [rule.mdc, "98" + rule.mdc[2:]] if rule.mdc[:2] in ("12", "13") else [rule.mdc]
        sexes = [sex] if rule.sex else _SEXES
        for mdc in mdcs:
            for var in self.space.principals_by_mdc.get(mdc, ()):
                props = diagnosis_properties(self.tables, _written_key(self.space.items[var][1][0]))
                for held in sexes:
                    if _principal_columns_hold(rule, props, held):
                        return var, held
        return None

    def _meeting(self, rule: Rule, failed: str, episode: Episode, excluded: set[str]) -> tuple[str, Any] | None:
        """A code meeting the rule's failed positive condition once added: ("diagnoses", written)
        or ("procedures", code); None for a condition no added code can make hold."""
        wanted: list[Token]
        if failed == "compl":
            wanted = [
                ("category", category)
                for category in self.space.category_counts
                if category[2:3] != "I"
                and category not in excluded
                and (2 if category[2:3] == "G" else 1) >= int(rule.compl)
            ]
        elif failed == "or_proc" and rule.or_proc in ("S", "P"):
            wanted = [("or", 1)]
        elif failed == "procpro":
            wanted = [("procpr", rule.procpro)]
        elif failed == "secpro" and rule.secpro == "+" and episode.procedures:
            wanted = [("secondary_or1",)]
        elif failed == "secpro" and rule.secpro[0] not in "+-":
            wanted = [("procedure_procpr", rule.secpro)]
        elif failed.startswith("dgprop") and not (value := rule.dgprop[int(failed[6:]) - 1]).startswith("-"):
            wanted = [("dgprop", value)]
        else:
            return None
        diagnosis_place = _FIRST if len(episode.diagnoses) == 1 else _LATER
        procedure_place = _FIRST_PROCEDURE if not episode.procedures else _LATER_PROCEDURE
        for token in wanted:
            places = [("diagnoses", diagnosis_place), ("procedures", procedure_place)]
            for kind, place in places[::-1] if token[0] in ("procpr", "or") else places:
                if (place, token) in self.space.providers:
                    return kind, self._code(place, token)
        return None

    def _code(self, place: int, token: Token | None) -> Any:
        """The code, as written in an episode, of the item with the fewest properties giving `token` in `place`."""
        member = self.space.items[self.space.providers[place, token]][1][0]
        return _written_key(member) if place in (_FIRST, _LATER) else member

    def _witness(self, model: list[int], rule: Rule) -> Episode | None:
        """The model as a concrete episode with few codes, checked with the reference grouper.

        The model's later codes are optional: start from those that give the rule's own positive
        conditions, and add one only when an earlier rule takes the episode and that code makes it
        fail (every feature grows with codes, so one code always can). When that does not settle it,
        take every code of the model and drop what the reference grouper does not need.
        """
        skeleton, optional = self._episode(model)
        wanted = set(_positive_tokens(rule))
        kept = []
        for item in optional:
            if item[2] & wanted or (rule.compl and any(t[0] in ("category", "procedure_cc") for t in item[2])):
                kept.append(item)
                wanted -= item[2]
        for _ in range(len(optional) + 1):
            episode = _with_codes(skeleton, kept)
            features = derive_features(self.tables, episode)
            match = _first_match(self.tables, features, episode, rule.position)
            if match is rule and code_satisfies(rule, episode, self.text, self.role, self.tables):
                return episode
            if match is None or match is rule:
                break
            extra = next(
                (item for item in optional if item not in kept and self._fails(match, skeleton, [*kept, item])), None
            )
            if extra is None:
                break
            kept.append(extra)
        episode = _with_codes(skeleton, optional)
        if not self._groups_on(episode, rule):
            return None
        for item in optional:
            shorter = _with_codes(skeleton, [other for other in optional if other is not item])
            if self._groups_on(shorter, rule):
                optional = [other for other in optional if other is not item]
                episode = shorter
        return episode

    def _fails(self, rule: Rule, skeleton: Episode, codes: list) -> bool:
        episode = _with_codes(skeleton, codes)
        return first_failed_condition(rule, derive_features(self.tables, episode), episode) is not None

    def _groups_on(self, episode: Episode, rule: Rule) -> bool:
        features = derive_features(self.tables, episode)
        return _first_match(self.tables, features, episode, rule.position) is rule and code_satisfies(
            rule, episode, self.text, self.role, self.tables
        )

    def _written_principal(self, placed: Mapping[int, list[tuple[Any, ...]]]) -> tuple[str, str]:
        """The principal as the model places the code: alone, in a listed pair or with a companion."""
        code, diagnoses = self.written[0], self.tables.diagnoses
        if self.written[1] or not (placed[_PAIR_HEAD] or placed[_COMPANION]):
            return self.written
        if placed[_PAIR_HEAD]:
            return _written_key(next(key for key in placed[_PAIR_HEAD][0] if code in key))
        heads, companions = placed[_HEAD][0], placed[_COMPANION][0]
        if (code, NO_DAGGER) in heads:  # the code as asterisk, a companion as dagger
            other = next((c for c in companions if (code, c) not in diagnoses), companions[0])
            return other, code
        other = next((h for h, _ in heads if (h, code) not in diagnoses), heads[0][0])
        return code, other  # the code as dagger, a head code as asterisk

    def _episode(self, model: list[int]) -> tuple[Episode, list[tuple[str, Any, frozenset[Token]]]]:
        """The model's codes: an episode of those in fixed places, and the later ones, each optional."""
        space, diagnoses, role = self.space, self.tables.diagnoses, self.role
        # a model lists every variable as +var or -var, in order
        chosen = list(filter((0).__lt__, model[space.item_vars.start - 1 : space.item_vars.stop - 1]))
        placed: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for var in chosen:
            placed[space.items[var][0]].append(space.items[var][1])

        def holds(var: int) -> bool:
            return var == TRUE or (var > 0 and model[var - 1] > 0)

        def pair(heads: tuple[DiagnosisKey, ...], others: list[tuple[Any, ...]]) -> tuple[str, str]:
            """A code written with a second one (dagger first), avoiding listed pairs' own properties."""
            if not others:
                return heads[0][0], ""
            found = next(((o, h[0]) for h in heads for o in others[0] if (h[0], o) not in diagnoses), None)
            return found or (others[0][0], heads[0][0])

        if role == "principal":
            principal = self._written_principal(placed)
        elif holds(space.no_principal):
            principal = ("", "")
        elif placed[_PAIR_HEAD]:
            principal = _written_key(placed[_PAIR_HEAD][0][0])
        else:
            principal = pair(placed[_HEAD][0], placed[_COMPANION])
        dx = [principal]
        if role == "secondary" and holds(self.first):
            dx.append(self.written)
        elif placed[_FIRST_PAIR]:
            dx.append(_written_key(placed[_FIRST_PAIR][0][0]))
        elif placed[_FIRST]:
            dx.append(pair(placed[_FIRST][0], placed[_SECOND_HALF]))
        px = []
        if role == "procedure" and holds(self.first):
            px.append(self.written[0])
        elif placed[_FIRST_PROCEDURE]:
            px.append(placed[_FIRST_PROCEDURE][0][0])
        own: set[int] = set()
        if role == "secondary" and holds(self.later):
            own = set(space.laters[self._parts()[0]])
        elif role == "procedure" and holds(self.later):
            own = set(space.later_procedures[self.written[0]])
        # The model's later codes add up to a set of contributions; a few of them add up to the same
        # set, so give the same features: keep only those.
        later = [var for var in chosen if space.items[var][0] in (_LATER, _LATER_PROCEDURE) and var not in own]
        optional_vars = set(later)
        covered = frozenset().union(*(space.items[var][2] for var in chosen if var not in optional_vars))
        wanted = frozenset().union(*(space.items[var][2] for var in later)) - covered
        optional = []
        for var in sorted(later, key=lambda var: -len(space.items[var][2] & wanted)):
            place, members, tokens = space.items[var]
            if not tokens & wanted:
                continue
            wanted -= tokens
            if place == _LATER:
                optional.append(("diagnoses", _written_key(members[0]), tokens))
            else:
                optional.append(("procedures", members[0], tokens))
        if role == "secondary" and holds(self.later):
            dx.append(self.written)
        if role == "procedure" and holds(self.later):
            px.append(self.written[0])
        skeleton = Episode(
            diagnoses=tuple(dx),
            procedures=tuple(px),
            sex=next(sex for var, sex in space.sexes if holds(var)),
            age_days=next(age for var, age in space.ages if holds(var)),
            duration_days=next(days for var, days in space.durations if holds(var)),
            discharge=next(value for var, value in space.discharges if holds(var)),
        )
        return skeleton, optional


def _nearest(
    values: tuple[tuple[int, int | None], ...], usual: int, *, within: Limit | None, outside: Iterable[Limit] = ()
) -> int | None:
    """The known age or duration, among those the formula represents, nearest to `usual` that meets
    `within` (when set) and none of `outside`; None when there is none. Without limits: `usual`."""
    outside = list(outside)
    admitted = [
        value
        for _, value in values
        if value is not None
        and (within is None or within.holds(value))
        and not any(limit.holds(value) for limit in outside)
    ]
    return min(admitted, key=lambda value: abs(value - usual), default=None)


def _with_codes(skeleton: Episode, codes: Iterable[tuple[str, Any, frozenset[Token]]]) -> Episode:
    """The skeleton with later diagnoses and procedures added after its own."""
    added: dict[str, list[Any]] = {"diagnoses": [], "procedures": []}
    for place, code, _ in codes:
        added[place].append(code)
    return attrs.evolve(
        skeleton,
        diagnoses=skeleton.diagnoses + tuple(added["diagnoses"]),
        procedures=skeleton.procedures + tuple(added["procedures"]),
    )


def _positive_tokens(rule: Rule) -> Iterable[Token]:
    """The contributions the rule's positive conditions ask for (its `compl` aside)."""
    yield from (("dgprop", value) for value in rule.dgprop if not value.startswith("-"))
    if rule.procpro:
        yield "procpr", rule.procpro
    if rule.secpro == "+":
        yield ("secondary_or1",)
    elif rule.secpro and rule.secpro[0] != "-":
        yield "procedure_procpr", rule.secpro
    if rule.or_proc in ("S", "P"):
        yield "or", 1
    if rule.or_proc == "P":
        yield "or", 2


def _written_key(key: DiagnosisKey) -> tuple[str, str]:
    """A table key (code, dagger) as written in an episode: dagger first."""
    code, dagger = key
    return (dagger, code) if dagger else (code, "")


def _first_match(tables: DrgTables, features: Features, episode: Episode, last: int) -> Rule | None:
    """The reference grouper's first match among the rules up to position `last`."""
    for position in _rules_for_principal(tables, features):
        if position > last:
            break
        rule = tables.rules[position]
        if first_failed_condition(rule, features, episode) is None:
            return rule
    return None


def _rules_for_principal(tables: DrgTables, features: Features) -> tuple[int, ...]:
    """Positions of the rules whose `mdc`, `dgcat` and `pdgprop` columns admit the principal diagnosis.

    The others fail on those columns, so the first match need not ask them: checking a witness
    reads a few times fewer rules. Kept in memory per kind of principal, as the explorer meets them.
    """
    known = _principal_rule_lists(tables)
    key = (features.mdc, features.dgcat, features.pdgprop)
    if key not in known:
        rules_by_mdc = _space(tables).rules_by_mdc
        known[key] = tuple(
            position
            for position in rules_by_mdc.get(features.mdc, rules_by_mdc[""])
            if tables.rules[position].dgcat in ("", features.dgcat)
            and (not tables.rules[position].pdgprop or tables.rules[position].pdgprop in features.pdgprop)
        )
    return known[key]


@per_object
def _principal_rule_lists(tables: DrgTables) -> dict[tuple[str, str, frozenset[str]], tuple[int, ...]]:
    return {}


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
        return _arrow_table(rows)

    def __str__(self) -> str:
        lines = [f"DRG {self.drg} {self.name}".rstrip() + f" (MDC {self.mdc or '?'}): {len(self.rules)} rules"]
        for contents in self.rules:
            columns = "  ".join(f"{k}={v}" for k, v in contents.rule.conditions().items())
            lines.append(f"  rule {contents.rule.id} (position {contents.rule.position}): {columns}")
            lines.append(f"    principal diagnoses ({len(contents.principals)}): {_sample(contents.principals)}")
            for condition, codes in contents.procedures.items():
                lines.append(f"    {condition} ({len(codes)} procedures): {_sample(codes)}")
        if not self.rules:
            lines.append("  no rule of these tables leads to this DRG")
        return "\n".join(lines)


def drg_contents(tables: DrgTables, drg: str) -> DrgContents:
    """The rules that lead to `drg`, and the principal diagnoses and procedures that satisfy them."""
    drg = drg.strip().upper()
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
            procedures[f"or_proc {rule.or_proc}"] = tuple(sorted(set(ors)))  # a code may have both OR rows
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


def _arrow_table(columns: dict[str, list[Any]]) -> pa.Table:
    # Arrow is imported on demand: the interactive table questions answer in text and should not
    # pay for loading it.
    import pyarrow as pa

    return pa.table(columns)


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
        return _arrow_table({name: [row[i] for row in self.changes] for i, name in enumerate(names)})

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
    kinds: list[tuple[str, Mapping[Any, Any], Mapping[Any, Any], Callable[[Any], str]]] = [
        ("diagnosis", a.diagnoses, b.diagnoses, _diagnosis_text),
        ("procedure", a.procedures, b.procedures, _procedure_text),
        ("drg", a.drgs, b.drgs, lambda info: f"MDC {info.mdc} {info.name}".rstrip()),
    ]
    for kind, before, after, text in kinds:
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
    return " ".join(f"{name}={value}" for name, value in props.rows())


def _procedure_text(props: ProcedureProperties) -> str:
    return " ".join(f"{name}={value}" for name, value in props.rows())
