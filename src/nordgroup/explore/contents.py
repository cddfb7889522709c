"""`drg_contents`: what a DRG holds — the rules that lead to it, each with the principal diagnoses
that satisfy it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from nordgroup.explore._shared import _SEXES, _arrow_table, _index, _principal_columns_hold
from nordgroup.tables.model import (
    NO_DAGGER,
    DrgTables,
    Rule,
)

if TYPE_CHECKING:
    import pyarrow as pa


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


def _append(rows: dict[str, list[Any]], *values: str) -> None:
    for name, value in zip(rows, values, strict=True):
        rows[name].append(value)


def _sample(codes: tuple[str, ...], n: int = 8) -> str:
    return ", ".join(codes[:n]) + (f", ... ({len(codes) - n} more)" if len(codes) > n else "") if codes else "-"
