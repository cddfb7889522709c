"""`diff_tables`: what changed between two releases — rules by id, code properties, rule order."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from nordgroup.explore._shared import _arrow_table, _code_text
from nordgroup.tables.model import (
    DiagnosisProperties,
    DrgTables,
    ProcedureProperties,
    Rule,
)

if TYPE_CHECKING:
    import pyarrow as pa


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
