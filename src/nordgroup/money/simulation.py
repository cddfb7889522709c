"""`simulate`: regroup, reprice and compare — per episode, per unit/MDC/DRG/care type, the DRG
migration matrix and an HTML report. The formulas are in `docs/money.md`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.dataframes import arrow_table
from nordgroup.episodes.layouts import CANONICAL_COLUMNS, to_canonical, write_table
from nordgroup.exceptions import NordgroupError
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import price_episodes, with_drg_names
from nordgroup.money.recoding import apply_scenario
from nordgroup.money.scenario import Scenario
from nordgroup.money.weights import WeightTable

if TYPE_CHECKING:
    from nordgroup.money.extrapolate import Extrapolation


_GROUP_COLUMNS = ("drg", "rtc", "mdc", "cc_level")


@frozen(eq=False)
class Baseline:
    """The world as it is: a grouper (one table release), its weights and the year's financing."""

    grouper: Grouper
    weights: WeightTable
    financing: Financing

    def price(self, episodes: pa.Table) -> pa.Table:
        """Group and price canonical episodes."""
        table = to_canonical(episodes)
        return price_episodes(
            self.grouper.group(table), self.weights, self.financing, duration_days=table.column("duration_days")
        )


@frozen(eq=False)
class SimulationResult:
    """Before/after per episode and the summaries of one scenario against the baseline."""

    scenario: Scenario
    episodes: pa.Table  # one row per episode: ids, passed-through columns, drg/points/money before and after
    totals: pa.Table  # one row
    by_unit: pa.Table | None
    by_mdc: pa.Table
    by_drg: pa.Table
    by_care_type: pa.Table
    migration: pa.Table  # drg_before, drg_after, episodes, points and money change; diagonal included
    notes: tuple[str, ...]
    labels: Mapping[str, str]  # what "before" and "after" are: tables, weights, financing

    def write_tables(self, out_dir: str | os.PathLike[str], *, episodes_format: str = "parquet") -> list[Path]:
        """Write the per-episode table and every summary into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = _file_stem(self.scenario.name)
        written = []
        parts = {
            "totals": self.totals,
            "by_unit": self.by_unit,
            "by_mdc": self.by_mdc,
            "by_drg": self.by_drg,
            "by_care_type": self.by_care_type,
            "migration": self.migration,
        }
        path = out / f"{stem}_episodes.{episodes_format}"
        write_table(self.episodes, path)
        written.append(path)
        for name, table in parts.items():
            if table is not None:
                path = out / f"{stem}_{name}.csv"
                write_table(table, path)
                written.append(path)
        return written

    def report_sections(self) -> list[tuple[str, str]]:
        """The HTML sections of this result (several results can share one report)."""
        from nordgroup.report import bar_chart, html_table

        total = self.totals.to_pylist()[0]
        labels = "".join(f"<li>{_escape(k)}: {_escape(v)}</li>" for k, v in self.labels.items())
        parts = "".join(f"<li>{_escape(p)}</li>" for p in self.scenario.describe())
        notes = "".join(f"<li>{_escape(n)}</li>" for n in self.notes)
        summary = (
            f"<p>{_escape(self.scenario.description)}</p><ul>{parts}</ul><ul>{labels}</ul>"
            f"<p>Points {total['points_before']:,.2f} → {total['points_after']:,.2f} ({total['points_change']:+,.2f}); "
            f"casemix index {total['casemix_before']:.4f} → {total['casemix_after']:.4f}; reimbursement "
            f"{total['reimbursement_before']:,.0f} → {total['reimbursement_after']:,.0f} "
            f"({total['reimbursement_change']:+,.0f}). {total['drg_changed']:,} of {total['episodes']:,} episodes "
            f"changed DRG.</p>{html_table(self.totals)}<ul class='note'>{notes}</ul>"
        )
        name = self.scenario.name
        sections = [(f"{name}: summary", summary)]
        if self.by_unit is not None:
            units = self.by_unit
            chart = bar_chart(
                "Change in reimbursement by unit",
                [str(v) for v in units.column(units.column_names[0]).to_pylist()],
                {"reimbursement change": units.column("reimbursement_change").to_pylist()},
            )
            sections.append((f"{name}: by unit", chart + html_table(units)))
        mdc = self.by_mdc
        chart = bar_chart(
            "Change in points by MDC",
            [str(v) for v in mdc.column("mdc").to_pylist()],
            {"points change": mdc.column("points_change").to_pylist()},
        )
        sections.append((f"{name}: by MDC", chart + html_table(mdc, max_rows=40)))
        top = self.by_drg.slice(0, 20)
        chart = bar_chart(
            "DRGs with the largest change in reimbursement",
            [str(v) for v in top.column("drg").to_pylist()],
            {"reimbursement change": top.column("reimbursement_change").to_pylist()},
        )
        sections.append((f"{name}: by DRG (largest changes first)", chart + html_table(self.by_drg, max_rows=40)))
        sections.append((f"{name}: by care type", html_table(self.by_care_type)))
        moves = self.migration.filter(
            pc.not_equal(self.migration.column("drg_before"), self.migration.column("drg_after"))
        )
        sections.append(
            (f"{name}: DRG migration (before → after, most episodes first)", html_table(moves, max_rows=40))
        )
        return sections

    def write_report(self, path: str | os.PathLike[str], *, extrapolation: Extrapolation | None = None) -> Path:
        """A self-contained HTML report with charts."""
        from nordgroup.report import write_report

        sections = self.report_sections()
        if extrapolation is not None:
            sections.append(("Extrapolation to the population", extrapolation.html()))
        return write_report(path, f"Simulation: {self.scenario.name}", sections, intro=_demo_warning(self.labels))


def simulate(
    episodes: pa.Table,
    baseline: Baseline,
    scenario: Scenario,
    *,
    baseline_priced: pa.Table | None = None,
    unit: str = "unit",
) -> SimulationResult:
    """Regroup and reprice `episodes` under the baseline and under `scenario`; compare.

    `baseline_priced` (from `baseline.price(episodes)`) saves regrouping the baseline when several
    scenarios run on the same episodes. When the scenario keeps the baseline's tables, only the
    episodes whose codes it edits are regrouped. `unit` names the column summarised per unit.
    """
    table = to_canonical(arrow_table(episodes))  # any dataframe exporting __arrow_c_stream__
    before = baseline_priced if baseline_priced is not None else baseline.price(table)
    if len(before) != len(table):
        raise NordgroupError(f"baseline_priced has {len(before)} rows for {len(table)} episodes")
    edited, changed, notes = apply_scenario(table, scenario)

    grouper = baseline.grouper
    if scenario.tables is not None and scenario.tables is not grouper.tables:
        grouper = Grouper(scenario.tables)
    same_logic = grouper is baseline.grouper
    if same_logic:
        grouped = _regroup_changed(before, edited, changed, grouper)
    else:
        grouped = grouper.group(edited).select(["episode_id", *_GROUP_COLUMNS])
    weights = scenario.weights or baseline.weights
    financing = scenario.financing_for(baseline.financing)
    after = price_episodes(grouped, weights, financing, duration_days=table.column("duration_days"))

    extras = [name for name in table.column_names if name not in CANONICAL_COLUMNS]
    per_episode = _per_episode(table, extras, before, after, changed)
    labels = {
        "before": _label(baseline.grouper, baseline.weights, baseline.financing),
        "after": _label(grouper, weights, financing),
    }
    has_unit = unit in per_episode.column_names
    unpriced = int(pc.sum(pc.invert(after.column("priced"))).as_py() or 0)
    if unpriced:
        notes.append(f"{unpriced} episodes after the scenario fall in DRGs the weight table lacks: not priced")
    return SimulationResult(
        scenario=scenario,
        episodes=per_episode,
        totals=_totals(per_episode),
        by_unit=_compare(per_episode, unit, unit) if has_unit else None,
        by_mdc=_compare(per_episode, "mdc_before", "mdc_after", name="mdc"),
        by_drg=with_drg_names(
            _sort_by_change(_compare(per_episode, "drg_before", "drg_after", name="drg")),
            grouper.tables,
            baseline.grouper.tables,
        ),
        by_care_type=_compare(per_episode, "care_type", "care_type"),
        migration=_migration(per_episode),
        notes=tuple(notes),
        labels=labels,
    )


def _label(grouper: Grouper, weights: WeightTable, financing: Financing) -> str:
    return f"{grouper.tables.release.label}; weights {weights.label}; {financing.label}"


def _regroup_changed(before: pa.Table, edited: pa.Table, changed: np.ndarray, grouper: Grouper) -> pa.Table:
    """Same logic: regroup only the edited episodes and splice their results into the baseline's."""
    base = before.select(["episode_id", *_GROUP_COLUMNS])
    rows = np.flatnonzero(changed)
    if len(rows) == 0:
        return base
    regrouped = grouper.group(edited.take(pa.array(rows)))
    take = np.arange(len(base), dtype=np.int64)
    take[rows] = len(base) + np.arange(len(rows))
    indices = pa.array(take)
    for name in _GROUP_COLUMNS:
        column = base.column(name)
        fresh = regrouped.column(name).cast(column.type)
        base = base.set_column(
            base.column_names.index(name), name, pa.chunked_array([*column.chunks, *fresh.chunks]).take(indices)
        )
    return base


def _per_episode(
    table: pa.Table, extras: list[str], before: pa.Table, after: pa.Table, changed: np.ndarray
) -> pa.Table:
    columns = {"episode_id": table.column("episode_id")}
    columns.update({name: table.column(name) for name in extras})
    columns["care_type"] = after.column("care_type")
    columns["codes_changed"] = pa.array(changed)
    for name in ("drg", "rtc", "mdc"):
        columns[f"{name}_before"] = pc.cast(before.column(name), pa.string())
        columns[f"{name}_after"] = pc.cast(after.column(name), pa.string())
    columns["drg_changed"] = pc.fill_null(pc.not_equal(columns["drg_before"], columns["drg_after"]), True)
    for name in ("priced", "points", "reimbursement"):
        columns[f"{name}_before"] = before.column(name)
        columns[f"{name}_after"] = after.column(name)
        if name != "priced":
            columns[f"{name}_change"] = pc.subtract(after.column(name), before.column(name))
    return pa.table(columns)


_SIDE_SUMS = ("points", "reimbursement")


def _side(per_episode: pa.Table, key: str, side: str, name: str) -> pa.Table:
    work = pa.table(
        {
            name: pc.fill_null(pc.cast(per_episode.column(key), pa.string()), "(none)"),
            "priced": pc.cast(per_episode.column(f"priced_{side}"), pa.int64()),
            **{value: per_episode.column(f"{value}_{side}") for value in _SIDE_SUMS},
        }
    )
    summary = work.group_by(name, use_threads=False).aggregate(
        [("priced", "count"), ("priced", "sum"), *[(value, "sum") for value in _SIDE_SUMS]]
    )
    return pa.table(
        {
            name: summary.column(name),
            f"episodes_{side}": summary.column("priced_count"),
            f"priced_{side}": summary.column("priced_sum"),
            **{f"{value}_{side}": pc.fill_null(summary.column(f"{value}_sum"), 0.0) for value in _SIDE_SUMS},
        }
    )


def _compare(per_episode: pa.Table, key_before: str, key_after: str, *, name: str | None = None) -> pa.Table:
    """Episodes, points, casemix and money per key, before and after, side by side."""
    name = name or key_before
    joined = _side(per_episode, key_before, "before", name).join(
        _side(per_episode, key_after, "after", name), keys=name, join_type="full outer", use_threads=False
    )
    out = {name: joined.column(name)}
    for side in ("before", "after"):
        out[f"episodes_{side}"] = pc.fill_null(joined.column(f"episodes_{side}"), 0)
    for value in _SIDE_SUMS:
        for side in ("before", "after"):
            out[f"{value}_{side}"] = pc.fill_null(joined.column(f"{value}_{side}"), 0.0)
        out[f"{value}_change"] = pc.subtract(out[f"{value}_after"], out[f"{value}_before"])
    for side in ("before", "after"):
        priced = pc.cast(pc.fill_null(joined.column(f"priced_{side}"), 0), pa.float64())
        out[f"casemix_{side}"] = pc.divide(out[f"points_{side}"], pc.if_else(pc.equal(priced, 0.0), None, priced))
    return pa.table(out).sort_by([(name, "ascending")])


def _sort_by_change(table: pa.Table) -> pa.Table:
    size = pc.abs(table.column("reimbursement_change"))
    return table.append_column("_size", size).sort_by([("_size", "descending")]).drop_columns(["_size"])


def _totals(per_episode: pa.Table) -> pa.Table:
    def total(name: str) -> float:
        return float(pc.sum(per_episode.column(name)).as_py() or 0.0)

    def count(mask: pa.ChunkedArray) -> int:
        return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)

    priced_before = count(per_episode.column("priced_before"))
    priced_after = count(per_episode.column("priced_after"))
    points_before, points_after = total("points_before"), total("points_after")
    return pa.table(
        {
            "episodes": [len(per_episode)],
            "codes_changed": [count(per_episode.column("codes_changed"))],
            "drg_changed": [count(per_episode.column("drg_changed"))],
            "unpriced_before": [len(per_episode) - priced_before],
            "unpriced_after": [len(per_episode) - priced_after],
            "points_before": [points_before],
            "points_after": [points_after],
            "points_change": [points_after - points_before],
            "casemix_before": [points_before / priced_before if priced_before else None],
            "casemix_after": [points_after / priced_after if priced_after else None],
            "reimbursement_before": [total("reimbursement_before")],
            "reimbursement_after": [total("reimbursement_after")],
            "reimbursement_change": [total("reimbursement_after") - total("reimbursement_before")],
        }
    )


def _migration(per_episode: pa.Table) -> pa.Table:
    work = per_episode.select(["drg_before", "drg_after", "points_change", "reimbursement_change"])
    work = work.set_column(0, "drg_before", pc.fill_null(work.column("drg_before"), "(none)"))
    work = work.set_column(1, "drg_after", pc.fill_null(work.column("drg_after"), "(none)"))
    summary = work.group_by(["drg_before", "drg_after"], use_threads=False).aggregate(
        [([], "count_all"), ("points_change", "sum"), ("reimbursement_change", "sum")]
    )
    table = pa.table(
        {
            "drg_before": summary.column("drg_before"),
            "drg_after": summary.column("drg_after"),
            "episodes": summary.column("count_all"),
            "points_change": pc.fill_null(summary.column("points_change_sum"), 0.0),
            "reimbursement_change": pc.fill_null(summary.column("reimbursement_change_sum"), 0.0),
        }
    )
    return table.sort_by([("episodes", "descending"), ("drg_before", "ascending"), ("drg_after", "ascending")])


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "scenario"


def _escape(value: object) -> str:
    import html

    return html.escape(str(value))


def _demo_warning(labels: Mapping[str, str]) -> str:
    if any("DEMO" in text for text in labels.values()):
        return "DEMO values: some weights or prices here are invented for illustration, not official figures."
    return ""
