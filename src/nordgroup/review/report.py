"""The audit's HTML report: findings per unit and care type, indicator tables, indicators over time
(all episodes, and one small chart per unit), findings per kind, the DRGs with most mismatches, the
review sample, and the first errors. Built from the pieces in `nordgroup.report`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.money.pricing import CARE_TYPES
from nordgroup.report import bar_chart, html_table, line_chart, small_multiples, write_report
from nordgroup.review._columns import unit_columns
from nordgroup.tables.model import ReleaseInfo

__all__ = ["audit_report"]

_SHARES = ("error_drg_share", "symptom_principal_share", "unspecified_principal_share", "z_principal_share", "cc_share")
_POINT_COLUMNS = ("mismatch_points", "points")


def audit_report(
    path: str | Path,
    episodes: pa.Table,
    grouped: pa.Table,
    findings: pa.Table,
    *,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    period: str | None = None,
    sample: pa.Table | None = None,
    title: str = "Coding audit",
    demo_weights: bool = False,
    release: ReleaseInfo | None = None,
) -> Path:
    """One self-contained HTML file (see the module docstring). `unit_column` may name several
    columns (administration × coder): the splits are their combinations. `period` cuts a date
    period column (week, month, quarter, year). `demo_weights` labels every points figure DEMO;
    `release` names the tables in the introduction."""
    from nordgroup.review.kinds import FINDING_KINDS  # audit imports this module
    from nordgroup.review.unit_indicators import indicators

    names = unit_columns(unit_column)
    per_unit = indicators(episodes, grouped, findings, unit_column=names or None, period_column=None, period=period)
    over_time = indicators(
        episodes, grouped, findings, unit_column=None, period_column=period_column, care_type=False, period=period
    )
    unit_keys = names or ["all"]
    label = _labels(per_unit, unit_keys)
    units = sorted(set(label), key=str)
    series = {}
    present = set(per_unit.column("care_type").to_pylist())
    for care in (care for care in CARE_TYPES if care in present):
        found: dict[str, int] = {}
        for key, care_type, count in zip(
            label, per_unit.column("care_type").to_pylist(), per_unit.column("findings").to_pylist(), strict=True
        ):
            if care_type == care:
                found[key] = found.get(key, 0) + count
        series[care] = [found.get(unit, 0) for unit in units]
    split_name = " × ".join(unit_keys)
    sections = [
        (
            f"Findings per {split_name}, inpatient and outpatient",
            bar_chart(f"Findings per {split_name}", units, series, ylabel="findings"),
        ),
        (f"Indicators per {split_name} and care type", html_table(_demo(per_unit, demo_weights), max_rows=200)),
    ]
    period_key = period_column if period_column else "all"
    x = [str(value) for value in over_time.column(period_key).to_pylist()]
    chart = line_chart(
        "Indicators per period, all episodes", x, {name: over_time.column(name).to_pylist() for name in _SHARES}
    )
    sections.append(("Indicators over time", chart + html_table(_demo(over_time, demo_weights), max_rows=120)))
    if period_column and names:
        trends = _trends(episodes, grouped, findings, names, period_column, period)
        sections.append((f"Indicators over time per {split_name}", trends))
    kinds = pc.value_counts(findings.column("kind")).to_pylist() if len(findings) else []
    kind_table = pa.table(
        {
            "kind": [item["values"] for item in kinds],
            "findings": [item["counts"] for item in kinds],
            "meaning": [FINDING_KINDS.get(item["values"], "") for item in kinds],
        }
    )
    sections.append(("Findings per kind", html_table(kind_table)))
    mismatches = findings.filter(pc.equal(findings.column("kind"), "drg_mismatch"))
    heading = "DRGs with most mismatches (reported vs regrouped)"
    if len(mismatches):
        top = (
            mismatches.group_by("drg")
            .aggregate([("row", "count"), ("points", "sum")])
            .rename_columns(["drg", "mismatches", "points"])
            .sort_by([("mismatches", "descending"), ("drg", "ascending")])
            .slice(0, 15)
        )
        chart = bar_chart(
            "Regrouped DRGs with most mismatches",
            top.column("drg").to_pylist(),
            {"mismatches": top.column("mismatches").to_pylist()},
            ylabel="episodes",
        )
        sections.append((heading, chart + html_table(_demo(top, demo_weights))))
    else:
        sections.append((heading, "<p>No reported DRG given, or none differs.</p>"))
    if sample is not None:
        strata = sample.group_by("stratum").aggregate([("row", "count"), ("inclusion_probability", "mean")])
        sections.append(("Review sample", f"<p>{len(sample)} episodes drawn.</p>" + html_table(strata)))
    errors = findings.filter(pc.equal(findings.column("severity"), "error")).select(
        ["episode_id", "kind", "code", "text"]
    )
    sections.append(("First findings of severity error", html_table(errors, max_rows=50)))
    intro = (
        f"{len(episodes)} episodes, {len(findings)} findings"
        + (f", tables {release.label}" if release is not None else "")
        + ". Shares are per episode; care type: the input's care_type column where filled, else outpatient "
        "for 0 hospital days."
        + (" DEMO: points come from invented demo weights, not an official weight list." if demo_weights else "")
    )
    return write_report(path, title, sections, intro=intro)


def _trends(episodes, grouped, findings, names: list[str], period_column: str, period: str | None) -> str:
    """One small chart of the indicator shares over time per unit (or combination of split columns)."""
    from nordgroup.review.unit_indicators import indicators

    table = indicators(
        episodes, grouped, findings, unit_column=names, period_column=period_column, care_type=False, period=period
    )
    label = _labels(table, names)
    periods = [str(value) for value in table.column(period_column).to_pylist()]
    everything = sorted(set(periods))
    shares = {name: table.column(name).to_pylist() for name in _SHARES}
    panels: dict[str, tuple[Sequence[str], Mapping[str, Sequence[float]]]] = {}
    for unit in sorted(set(label)):
        at = {periods[index]: index for index, key in enumerate(label) if key == unit}
        panels[unit] = (everything, {name: [values[at[p]] if p in at else math.nan for p in everything]
                                     for name, values in shares.items()})  # fmt: skip
    return small_multiples("Indicator shares per period", panels, ylabel="share")


def _labels(table: pa.Table, names: Sequence[str]) -> list[str]:
    """Each row's split as one label: `north · coder 7` for two columns."""
    columns = [[str(value) for value in table.column(name).to_pylist()] for name in names]
    return [" · ".join(values) for values in zip(*columns, strict=True)]


def _demo(table: pa.Table, demo_weights: bool) -> pa.Table:
    """Points columns headed `(DEMO weights)` when the weights are invented."""
    if not demo_weights:
        return table
    return table.rename_columns(
        [f"{name} (DEMO weights)" if name in _POINT_COLUMNS else name for name in table.column_names]
    )
