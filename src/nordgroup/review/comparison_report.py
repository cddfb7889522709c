"""The comparison's HTML report: agreement per unit with intervals, the DRG confusion, the DRGs and
codes that changed most.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.review._agreement import _CHAPTER_LABELS, MIN_EPISODES, TOO_FEW

if TYPE_CHECKING:
    from nordgroup.review.comparison import Comparison


def _interval_text(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "-"
    digits = ",.2f" if row["metric"].startswith("points") else ".3f"
    if row["low"] is None:
        return f"{value:{digits}}  ({row['note']}: {row['episodes']} episodes)"
    return f"{value:{digits}}  [{row['low']:{digits}}, {row['high']:{digits}}]  ({row['episodes']:,} episodes)"


_UNIT_METRICS = ("principal_agreement", "drg_agreement", "secondary_f1", "procedure_f1")


def compare_report(path: str | os.PathLike[str], comparison: Comparison, *, title: str = "Coding comparison") -> Path:
    """One self-contained HTML file: overall agreement with intervals, agreement per unit, the DRGs
    that change most, the codes most often missed or added, the DRG confusion and the unmatched."""
    from nordgroup.report import bar_chart, html_table, write_report

    agreement = comparison.agreement
    overall = agreement.filter(pc.equal(agreement.column("level"), "all")).select(
        ["metric", "value", "low", "high", "episodes", "note"]
    )
    sections = [("Overall agreement (B against A)", html_table(overall, max_rows=50))]
    split = next(
        (name for name in ("unit", "care_type") if name in agreement.column("level").unique().to_pylist()), None
    )
    if split:
        wide = _wide(agreement, split)
        labels = wide.column(split).to_pylist()
        series = {name: pc.fill_null(wide.column(name), 0.0).to_pylist() for name in _UNIT_METRICS}
        sections.append(
            (
                f"Agreement per {split}",
                bar_chart(f"Agreement per {split}", labels, series, ylabel="share") + html_table(wide, max_rows=200),
            )
        )
    changes = _drg_changes(comparison.episodes)
    if len(changes):
        chart = bar_chart(
            "DRGs in A whose episodes change DRG most often",
            changes.column("drg_a").to_pylist(),
            {
                "changed": changes.column("changed").to_pylist(),
                "unchanged": pc.subtract(changes.column("episodes"), changes.column("changed")).to_pylist(),
            },
            ylabel="episodes",
        )
        sections.append(("DRGs that change most", chart + html_table(changes)))
    else:
        sections.append(("DRGs that change most", "<p>No episode changes DRG.</p>"))
    codes = _code_changes(comparison.episodes)
    if len(codes):
        chart = bar_chart(
            "Codes most often missed (in A only) or added (in B only)",
            codes.column("code").to_pylist(),
            {"missed": codes.column("missed").to_pylist(), "added": codes.column("added").to_pylist()},
            ylabel="episodes",
        )
        sections.append(("Codes most often missed or added", chart + html_table(codes)))
    else:
        sections.append(("Codes most often missed or added", "<p>Both codings have the same codes.</p>"))
    confusion = comparison.confusion
    sections.append(
        (
            "DRG confusion (changed DRGs, A → B)",
            html_table(confusion.filter(confusion.column("changed")).drop_columns(["changed"]), max_rows=40),
        )
    )
    for level_name, heading in (
        ("icd10_chapter", "Secondary diagnoses per ICD-10 chapter"),
        ("ncsp_chapter", "Procedures per NCSP chapter"),
    ):
        sections.append((heading, html_table(_wide(agreement, level_name), max_rows=40)))
    unmatched = comparison.unmatched
    sections.append(
        (
            "Episodes in one coding only",
            html_table(unmatched, max_rows=100) if len(unmatched) else "<p>Every episode is in both codings.</p>",
        )
    )
    intro = (
        f"{len(comparison.episodes):,} episodes in both codings, {len(unmatched):,} unmatched. "
        f"Intervals: {comparison.level:.0%} bootstrap percentile, {comparison.replicates} replicates; none below "
        f"{MIN_EPISODES} contributing episodes ({TOO_FEW})."
        + ("" if comparison.priced else " No weight table: no points.")
    )
    return write_report(path, title, sections, intro=intro)


def _wide(agreement: pa.Table, level_name: str) -> pa.Table:
    """The metrics of one level as columns, one row per group."""
    rows = agreement.filter(pc.equal(agreement.column("level"), level_name)).to_pylist()
    groups = sorted({row["group"] for row in rows}, key=_group_order)
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    value = {(row["group"], row["metric"]): row["value"] for row in rows}
    size = {group: max(row["episodes"] for row in rows if row["group"] == group) for group in groups}
    return pa.table(
        {
            level_name: pa.array(groups, pa.string()),
            "episodes": pa.array([size[group] for group in groups], pa.int64()),
            **{name: pa.array([value.get((group, name)) for group in groups], pa.float64()) for name in metrics},
        }
    )


def _group_order(group: str) -> tuple[int, str]:
    """ICD-10 chapters in code order (A00 first), anything else alphabetically after them."""
    return (_CHAPTER_LABELS.get(group, len(_CHAPTER_LABELS)), group)


def _drg_changes(episodes: pa.Table, top: int = 15) -> pa.Table:
    work = pa.table(
        {
            "drg_a": pc.fill_null(episodes.column("drg_a"), "(none)"),
            "changed": pc.cast(episodes.column("drg_changed"), pa.int64()),
        }
    )
    summary = work.group_by("drg_a").aggregate([([], "count_all"), ("changed", "sum")])
    table = pa.table(
        {
            "drg_a": summary.column("drg_a"),
            "episodes": summary.column("count_all"),
            "changed": summary.column("changed_sum"),
        }
    )
    table = table.append_column(
        "changed_share", pc.divide(pc.cast(table.column("changed"), pa.float64()), table.column("episodes"))
    )
    table = table.filter(pc.greater(table.column("changed"), 0))
    return table.sort_by([("changed", "descending"), ("drg_a", "ascending")]).slice(0, top)


def _code_changes(episodes: pa.Table, top: int = 20) -> pa.Table:
    """Codes by the number of episodes that miss them (A only) or add them (B only)."""

    def counted(*columns: str) -> dict[str, int]:
        values = pa.concat_arrays([episodes.column(name).combine_chunks().flatten() for name in columns])
        return {item["values"]: item["counts"] for item in pc.value_counts(values).to_pylist()} if len(values) else {}

    missed = counted("secondary_only_a", "procedures_only_a")
    added = counted("secondary_only_b", "procedures_only_b")
    codes = sorted(set(missed) | set(added), key=lambda code: (-(missed.get(code, 0) + added.get(code, 0)), code))[:top]
    return pa.table(
        {
            "code": pa.array(codes, pa.string()),
            "missed": pa.array([missed.get(code, 0) for code in codes], pa.int64()),
            "added": pa.array([added.get(code, 0) for code in codes], pa.int64()),
        }
    )
