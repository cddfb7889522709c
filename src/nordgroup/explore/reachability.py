"""`drgs_for_code`: which DRGs a code can lead to, in each role, exactly.

`drgs_for_code` is exact: it decides, rule by rule in first-match order, whether some episode
holding the code in its role is grouped by that rule. A reachable rule comes with a witness episode
that the reference grouper puts on it; an unreachable one with a proof (`Unreachable`): conditions
that cannot hold together with the code, or the earlier rules that take every episode meeting it.
The decision is a SAT search over every episode the rules can tell apart (see "deciding
reachability" below); the episodes are those whose codes are in the tables, with any number of
secondary diagnoses and procedures, dagger/asterisk pairs included. What "leading to" means per
role:

- `principal`: the DRGs of episodes whose principal diagnosis is the code.
- `secondary`: the DRGs whose matching rule has a condition the code itself satisfies as a
  secondary diagnosis: a `dgprop` value it carries (its SDGPRO when it is the first secondary
  diagnosis), or `compl` met by one of its complication categories. Without that requirement the
  answer would be "every DRG": a secondary diagnosis rides along anywhere.
- `procedure`: the same for a procedure: `or_proc` S/P met by its OR value, `procpro`/`secpro` by its
  PROCPR, `secpro +` by its OR=1 as a non-first procedure, `dgprop` by its DGPROP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from attrs import frozen

from nordgroup._memo import gc_paused
from nordgroup.codes import ROLES, clean_written_code, split_written_diagnosis
from nordgroup.engine.reference import (
    Episode,
)
from nordgroup.explore._search import _Search
from nordgroup.explore._shared import _arrow_table, _code_text, _drg_sort_key, _episode_text
from nordgroup.explore.conditions import Unreachable
from nordgroup.tables.model import (
    DrgTables,
)

if TYPE_CHECKING:
    import pyarrow as pa


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
