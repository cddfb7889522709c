"""What a code satisfies in a rule, which rule an episode meets first, and why a rule cannot be
reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from nordgroup._memo import per_object
from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.engine.reference import (
    Episode,
    Features,
    derive_features,
    diagnosis_properties,
    first_failed_condition,
)
from nordgroup.explore._formula import Token, _space
from nordgroup.tables.model import (
    NO_DAGGER,
    DiagnosisKey,
    DrgTables,
    Limit,
    Rule,
)

if TYPE_CHECKING:
    pass


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
