"""Comparing two codings of the same episodes: per-episode differences, agreement with bootstrap
intervals, the DRG confusion table and the comparison report.

Coding A is the reference (the coders, or the coding before review), B the one judged (an AI
suggestion, or the coding after review): precision is the share of B's codes that A has too,
recall the share of A's codes that B found. Episodes are joined on `episode_id`; an id found in one
coding only, or more than once in one, is listed in `unmatched`, never dropped silently. Codes are
compared as `codes.py` reads them (dots, case, blanks and marks do not count), DRGs as `money`
matches them (`drg_keys`: `014B` and `14B` are one DRG), points come from `money.price_episodes`.
Everything per episode is numpy over the flat list columns; Python runs once per distinct code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.codes import canonical_code, split_written_diagnosis
from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import to_canonical
from nordgroup.exceptions import NordgroupError
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import care_types, drg_keys, price_episodes
from nordgroup.money.weights import WeightTable, load_weights
from nordgroup.review._agreement import (
    _agreement,
    _CodeSets,
    _confusion,
    _contributions,
    _equal,
    _ncsp_chapter,
    icd10_chapter,
)
from nordgroup.review.comparison_report import _interval_text, _wide, compare_report

#: The columns agreement is split by when they exist (`care_type` always does: from duration).
DEFAULT_BY = ("unit", "care_type", "period")


_POINTS_METRICS = ("points_difference_mean", "points_difference_sum")


_POINTS_ONLY = Financing(price_per_point=1.0, activity_share=1.0, description="points only")


@frozen(eq=False)
class Comparison:
    """What `compare` found. Tables:

    - `episodes`: one row per matched episode (see docs/compare.md for the columns);
    - `agreement`: long format, one row per (level, group, metric) with `value`, the bootstrap
      interval `low`-`high` (null below `MIN_EPISODES`), `numerator`, `denominator`, `episodes`
      and `note` ("too few episodes to conclude" or empty); level `all`, each `by` column,
      `icd10_chapter` (secondary diagnoses) and `ncsp_chapter` (procedures);
    - `confusion`: DRG in A → DRG in B with counts and points difference;
    - `unmatched`: episodes found in one coding only, or whose id is not unique.
    """

    episodes: pa.Table
    agreement: pa.Table
    confusion: pa.Table
    unmatched: pa.Table
    level: float
    replicates: int
    priced: bool

    def metric(self, name: str, level: str = "all", group: str = "all") -> dict:
        """One row of `agreement` as a dict (KeyError when there is none)."""
        mask = pc.and_(
            pc.and_(pc.equal(self.agreement.column("level"), level), pc.equal(self.agreement.column("group"), group)),
            pc.equal(self.agreement.column("metric"), name),
        )
        rows = self.agreement.filter(mask).to_pylist()
        if not rows:
            raise KeyError(f"no metric {name!r} for {level}={group!r}")
        return rows[0]

    def per(self, level: str) -> pa.Table:
        """The values of one level of `agreement` (`unit`, `care_type`, `icd10_chapter`, ...) as a
        table with one row per group and one column per metric (intervals stay in `agreement`)."""
        return _wide(self.agreement, level)

    def summary(self) -> str:
        """The overall agreement in a few lines, intervals included."""
        lines = [
            f"{len(self.episodes):,} episodes compared; {len(self.unmatched):,} unmatched "
            f"({self.level:.0%} bootstrap intervals, {self.replicates} replicates)"
        ]
        overall = self.agreement.filter(pc.equal(self.agreement.column("level"), "all")).to_pylist()
        for row in overall:
            lines.append(f"  {row['metric']:<24} {_interval_text(row)}")
        return "\n".join(lines)

    def report(self, path: str | os.PathLike[str], *, title: str = "Coding comparison") -> Path:
        return compare_report(path, self, title=title)


def compare(
    a: pa.Table,
    b: pa.Table,
    grouper: Grouper,
    *,
    weights: WeightTable | str | os.PathLike[str] | None = None,
    by: Sequence[str] | None = None,
    replicates: int = 400,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare coding `b` with coding `a` of the same episodes (canonical tables joined on `episode_id`).

    `weights` (a `WeightTable` or a path) prices both sides with `money.price_episodes`; without it
    the points columns are null. `by` names the columns agreement is split by, taken from `a`
    (default: those of `DEFAULT_BY` present). Intervals are bootstrap percentile intervals over
    episodes (`replicates` resamples, `seed` fixed), within each group.
    """
    if isinstance(weights, str | os.PathLike):
        weights = load_weights(weights)
    a, b = to_canonical(a, "coding A"), to_canonical(b, "coding B")
    a = (
        a.set_column(a.column_names.index("care_type"), "care_type", care_types(a))
        if "care_type" in a.column_names
        else a.append_column("care_type", care_types(a))
    )
    keys = _by_columns(a, by)
    rows_a, rows_b, unmatched = _match(a, b)
    a, b = a.take(pa.array(rows_a)), b.take(pa.array(rows_b))
    n = len(a)
    grouped_a, grouped_b = grouper.group(a), grouper.group(b)
    points_a, points_b = _points(grouped_a, a, weights), _points(grouped_b, b, weights)

    diagnoses = _CodeSets(a.column("diagnoses"), b.column("diagnoses"), n, _diagnosis_key)
    procedures = _CodeSets(a.column("procedures"), b.column("procedures"), n, canonical_code, skip_first=False)
    principal_a, principal_b = diagnoses.principal()
    drg_a, drg_b = grouped_a.column("drg"), grouped_b.column("drg")
    drg_equal = _equal(drg_keys(drg_a), drg_keys(drg_b))
    difference = pc.subtract(points_b, points_a)
    episodes = pa.table(
        {
            "episode_id": a.column("episode_id"),
            **{name: a.column(name) for name in keys},
            "principal_a": principal_a,
            "principal_b": principal_b,
            "principal_equal": _equal(principal_a, principal_b),
            "principal_3_equal": _equal(
                pc.utf8_slice_codeunits(principal_a, 0, 3), pc.utf8_slice_codeunits(principal_b, 0, 3)
            ),
            "secondary_only_a": diagnoses.lists("only_a"),
            "secondary_only_b": diagnoses.lists("only_b"),
            "secondary_both": diagnoses.lists("both"),
            "procedures_only_a": procedures.lists("only_a"),
            "procedures_only_b": procedures.lists("only_b"),
            "procedures_both": procedures.lists("both"),
            "drg_a": drg_a,
            "drg_b": drg_b,
            "mdc_a": grouped_a.column("mdc"),
            "mdc_b": grouped_b.column("mdc"),
            "cc_level_a": grouped_a.column("cc_level"),
            "cc_level_b": grouped_b.column("cc_level"),
            "points_a": points_a,
            "points_b": points_b,
            "points_difference": difference,
            "drg_changed": pc.invert(drg_equal),
        }
    )
    contributions = _contributions(episodes, diagnoses, procedures, drg_equal, difference)
    rng = np.random.default_rng(seed)
    parts = [_agreement("all", np.zeros(n, np.int64), ["all"], contributions, replicates, level, rng)]
    for name in keys:
        codes, labels = _factorise(episodes.column(name))
        parts.append(_agreement(name, codes, labels, contributions, replicates, level, rng))
    parts.append(diagnoses.per_chapter("icd10_chapter", "secondary", icd10_chapter, replicates, level, rng))
    parts.append(procedures.per_chapter("ncsp_chapter", "procedure", _ncsp_chapter, replicates, level, rng))
    agreement = pa.concat_tables(parts)
    if weights is None:
        agreement = agreement.filter(pc.invert(pc.is_in(agreement.column("metric"), pa.array(_POINTS_METRICS))))
    return Comparison(
        episodes=episodes,
        agreement=agreement,
        confusion=_confusion(episodes),
        unmatched=unmatched,
        level=level,
        replicates=replicates,
        priced=weights is not None,
    )


def _by_columns(a: pa.Table, by: Sequence[str] | None) -> list[str]:
    if by is None:
        return [name for name in DEFAULT_BY if name in a.column_names]
    missing = [name for name in by if name not in a.column_names]
    if missing:
        raise NordgroupError(
            f"coding A has no column {', '.join(map(repr, missing))} to split by; it has {', '.join(a.column_names)}"
        )
    return list(by)


def _match(a: pa.Table, b: pa.Table) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Rows of A and B with the same id (in A's order), and the episodes that cannot be paired."""
    ids_a = pc.cast(a.column("episode_id"), pa.string()).combine_chunks()
    ids_b = pc.cast(b.column("episode_id"), pa.string()).combine_chunks()
    pairable_a, pairable_b = _pairable(ids_a), _pairable(ids_b)
    in_b = pc.index_in(ids_a, value_set=ids_b.filter(pa.array(pairable_b)))
    found = in_b.is_valid().to_numpy(zero_copy_only=False) & pairable_a
    rows_a = np.flatnonzero(found)
    rows_b = np.flatnonzero(pairable_b)[pc.fill_null(in_b, 0).to_numpy(zero_copy_only=False)[found]]
    found_b = np.zeros(len(ids_b), np.bool_)
    found_b[rows_b] = True
    parts = []
    for side, ids, pairable, paired, other_ids in (
        ("A", ids_a, pairable_a, found, ids_b),
        ("B", ids_b, pairable_b, found_b, ids_a),
    ):
        other = "B" if side == "A" else "A"
        present = ids.is_valid().to_numpy(zero_copy_only=False)
        in_other = pc.is_in(ids, value_set=other_ids.drop_null()).to_numpy(zero_copy_only=False)
        for mask, reason in (
            (~present, "episode id is missing"),
            (present & ~pairable, f"episode id occurs more than once in {side}"),
            (pairable & ~paired & in_other, f"episode id occurs more than once in {other}"),
            (pairable & ~paired & ~in_other, f"only in {side}: no episode with this id in {other}"),
        ):
            rows = np.flatnonzero(mask)
            parts.append(
                pa.table(
                    {
                        "episode_id": ids.take(pa.array(rows)),
                        "side": pa.array([side] * len(rows), pa.string()),
                        "row": pa.array(rows, pa.int64()),
                        "reason": pa.array([reason] * len(rows), pa.string()),
                    }
                )
            )
    return rows_a, rows_b, pa.concat_tables(parts).combine_chunks()


def _pairable(ids: pa.Array) -> np.ndarray:
    """Ids that name one episode: present and not repeated."""
    counts = pc.value_counts(ids)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    in_repeated = pc.is_in(ids, value_set=repeated.drop_null()).to_numpy(zero_copy_only=False)
    return ~in_repeated & ids.is_valid().to_numpy(zero_copy_only=False)


def _points(grouped: pa.Table, episodes: pa.Table, weights: WeightTable | None) -> pa.ChunkedArray:
    if weights is None:
        return pa.chunked_array([pa.nulls(len(grouped), pa.float64())])
    priced = price_episodes(grouped, weights, _POINTS_ONLY, duration_days=episodes.column("duration_days"))
    return priced.column("points")


def _diagnosis_key(text: str) -> str:
    """A written diagnosis as one comparable code: `E830 F028` for a pair, else the single code."""
    dagger, asterisk, _ = split_written_diagnosis(text)
    return f"{dagger} {asterisk}" if asterisk else dagger


def _factorise(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(pc.fill_null(pc.cast(column, pa.string()), "(none)").combine_chunks())
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()
