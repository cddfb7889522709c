"""The SAT formula of reachability: every episode the rules can tell apart, built once per release."""

from __future__ import annotations

import hashlib
import itertools
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from nordgroup._memo import per_object, pickled
from nordgroup.engine.reference import (
    diagnosis_properties,
)
from nordgroup.explore._shared import _ADULT_AGE_DAYS, _SEXES
from nordgroup.tables.load import default_cache_dir
from nordgroup.tables.model import (
    NO_DAGGER,
    DiagnosisKey,
    DrgTables,
    Rule,
)

if TYPE_CHECKING:
    pass


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


_SPACE_VERSION = "6"  # raise when `_Space` or what `_build_space` puts in it changes


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
