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

import bisect
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.codes import canonical_code, split_written_diagnosis
from nordgroup.episodes import to_canonical
from nordgroup.exceptions import NordgroupError
from nordgroup.grouper import Grouper
from nordgroup.money import Financing, WeightTable, care_types, drg_keys, load_weights, price_episodes

__all__ = [
    "DEFAULT_BY",
    "METRICS",
    "MIN_EPISODES",
    "TOO_FEW",
    "Comparison",
    "compare",
    "compare_report",
    "icd10_chapter",
]

#: The columns agreement is split by when they exist (`care_type` always does: from duration).
DEFAULT_BY = ("unit", "care_type", "period")
#: Below this many episodes contributing to a rate, no interval is given: the rate says too little.
MIN_EPISODES = 30
TOO_FEW = "too few episodes to conclude"
_BOOTSTRAP_UNITS = 5_000
#: metric -> what it is. Rates are of matched episodes; precision/recall/F1 are B against A, pooled
#: over the episodes (each code counts once per episode).
METRICS = {
    "principal_agreement": "share of episodes whose principal diagnosis is the same code",
    "principal_agreement_3": "share of episodes whose principal diagnosis has the same first 3 characters",
    "secondary_precision": "share of B's secondary diagnoses that A has too",
    "secondary_recall": "share of A's secondary diagnoses that B has too",
    "secondary_f1": "harmonic mean of secondary precision and recall: 2 both / (2 both + only A + only B)",
    "procedure_precision": "share of B's procedures that A has too",
    "procedure_recall": "share of A's procedures that B has too",
    "procedure_f1": "2 both / (2 both + only A + only B) for procedures",
    "drg_agreement": "share of episodes with the same DRG",
    "mdc_agreement": "share of episodes with the same MDC (of the DRG)",
    "cc_level_agreement": "share of episodes with the same CC level",
    "points_difference_mean": "mean of points B - points A over episodes priced on both sides",
    "points_difference_sum": "sum of points B - points A",
}
_POINTS_METRICS = ("points_difference_mean", "points_difference_sum")
#: ICD-10 chapters by the first code of each (WHO ICD-10 2019; U, chapter XXII, last).
_ICD10_CHAPTERS = (
    ("A00", "I A00-B99"), ("C00", "II C00-D48"), ("D50", "III D50-D89"), ("E00", "IV E00-E90"),
    ("F00", "V F00-F99"), ("G00", "VI G00-G99"), ("H00", "VII H00-H59"), ("H60", "VIII H60-H95"),
    ("I00", "IX I00-I99"), ("J00", "X J00-J99"), ("K00", "XI K00-K93"), ("L00", "XII L00-L99"),
    ("M00", "XIII M00-M99"), ("N00", "XIV N00-N99"), ("O00", "XV O00-O99"), ("P00", "XVI P00-P96"),
    ("Q00", "XVII Q00-Q99"), ("R00", "XVIII R00-R99"), ("S00", "XIX S00-T98"), ("U00", "XXII U00-U99"),
    ("V01", "XX V01-Y98"), ("Z00", "XXI Z00-Z99"),
)  # fmt: skip
_CHAPTER_STARTS = [start for start, _ in _ICD10_CHAPTERS]
_CHAPTER_LABELS = {label: index for index, (_, label) in enumerate(_ICD10_CHAPTERS)}  # in code order
_POINTS_ONLY = Financing(price_per_point=1.0, activity_share=1.0, description="points only")


def icd10_chapter(code: str) -> str:
    """The ICD-10 chapter of a code (`I210` → `IX I00-I99`); `(other)` for what is not shaped like one."""
    head = code[:3]
    if len(head) < 3 or not head[0].isalpha() or not head[1:].isdigit():
        return "(other)"
    return _ICD10_CHAPTERS[max(0, bisect.bisect_right(_CHAPTER_STARTS, head) - 1)][1]


def _ncsp_chapter(code: str) -> str:
    """Procedures have no ICD-10 chapter: NCSP's chapter is the first letter (`FNG05` → `F`)."""
    return code[:1] if code[:1].isalpha() else "(other)"


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


# --------------------------------------------------------------------------------------------
# Joining the two codings


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


def _equal(x: pa.Array | pa.ChunkedArray, y: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Element-wise equality where two nulls are equal (no DRG on both sides agrees)."""
    both_null = pc.and_(pc.is_null(x), pc.is_null(y))
    return pc.or_(both_null, pc.fill_null(pc.equal(x, y), False))


def _points(grouped: pa.Table, episodes: pa.Table, weights: WeightTable | None) -> pa.ChunkedArray:
    if weights is None:
        return pa.chunked_array([pa.nulls(len(grouped), pa.float64())])
    priced = price_episodes(grouped, weights, _POINTS_ONLY, duration_days=episodes.column("duration_days"))
    return priced.column("points")


def _diagnosis_key(text: str) -> str:
    """A written diagnosis as one comparable code: `E830 F028` for a pair, else the single code."""
    dagger, asterisk, _ = split_written_diagnosis(text)
    return f"{dagger} {asterisk}" if asterisk else dagger


def _flat(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0])
    return offsets - offsets[0], values


def _distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """`np.unique` of int64 keys by sorting: numpy 2's hash-based unique took 8 s for 3 million keys."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


class _CodeSets:
    """One list column of both codings as per-episode sets of canonical codes.

    A code in an episode is the key `row * len(codes) + code`, so the sets of all episodes are
    sorted int64 arrays and their intersections and differences are numpy set operations.
    """

    def __init__(self, column_a, column_b, n: int, read, *, skip_first: bool = True) -> None:
        offsets_a, values_a = _flat(column_a)
        offsets_b, values_b = _flat(column_b)
        encoded = pc.dictionary_encode(pc.fill_null(pa.concat_arrays([values_a, values_b]), ""))
        canonical = np.array([read(text) for text in encoded.dictionary.to_pylist()] + [""], dtype=str)
        self.codes, code_of_distinct = np.unique(canonical, return_inverse=True)
        self._code_array = pa.array(self.codes.tolist(), pa.string())
        code = code_of_distinct[encoded.indices.to_numpy(zero_copy_only=False)]
        self.n, self.size = n, len(self.codes)
        blank = 0  # "" is among the codes (appended above), and np.unique sorts it first
        split = len(values_a)
        self.principal_code = []
        keys = []
        for offsets, codes in ((offsets_a, code[:split]), (offsets_b, code[split:])):
            counts = np.diff(offsets)
            rows = np.repeat(np.arange(n), counts)
            position = np.arange(len(codes)) - np.repeat(offsets[:-1], counts)
            first = np.full(n, blank, np.int64)
            first[counts > 0] = codes[offsets[:-1][counts > 0]]
            self.principal_code.append(first)
            kept = (codes != blank) & (position >= (1 if skip_first else 0))
            keys.append(_distinct_sorted(rows[kept] * self.size + codes[kept]))
        self.sets = {
            "both": np.intersect1d(keys[0], keys[1], assume_unique=True),
            "only_a": np.setdiff1d(keys[0], keys[1], assume_unique=True),
            "only_b": np.setdiff1d(keys[1], keys[0], assume_unique=True),
        }
        self._blank = blank

    def principal(self) -> tuple[pa.Array, pa.Array]:
        """The first code of each episode in A and in B (null when there is none)."""
        return tuple(  # type: ignore[return-value]
            pc.if_else(pa.array(first == self._blank), None, self._code_array.take(pa.array(first)))
            for first in self.principal_code
        )

    def counts(self, kind: str) -> np.ndarray:
        return np.bincount(self.sets[kind] // self.size, minlength=self.n).astype(np.float64)

    def lists(self, kind: str) -> pa.ListArray:
        keys = self.sets[kind]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(keys // self.size, minlength=self.n))]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), self._code_array.take(pa.array(keys % self.size)))

    def per_chapter(self, level_name: str, prefix: str, chapter_of, replicates: int, level: float, rng) -> pa.Table:
        """Precision, recall and F1 per chapter; the units resampled are (episode, chapter) pairs."""
        chapters, chapter_of_code = np.unique(
            np.array([chapter_of(str(c)) for c in self.codes], dtype=str), return_inverse=True
        )
        k = len(chapters)
        pair = {kind: (keys // self.size) * k + chapter_of_code[keys % self.size] for kind, keys in self.sets.items()}
        units = _distinct_sorted(np.concatenate(list(pair.values())))
        tp, fn, fp = (
            np.bincount(np.searchsorted(units, pair[kind]), minlength=len(units)).astype(np.float64)
            for kind in ("both", "only_a", "only_b")
        )
        contributions = _rates(prefix, tp, fp, fn)
        return _agreement(level_name, units % k, [str(c) for c in chapters], contributions, replicates, level, rng)


# --------------------------------------------------------------------------------------------
# Metrics and their intervals

Contributions = dict[str, tuple[np.ndarray, np.ndarray]]


def _rates(prefix: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> Contributions:
    return {
        f"{prefix}_precision": (tp, tp + fp),
        f"{prefix}_recall": (tp, tp + fn),
        f"{prefix}_f1": (2 * tp, 2 * tp + fp + fn),
    }


def _contributions(
    episodes: pa.Table, diagnoses: _CodeSets, procedures: _CodeSets, drg_equal, difference
) -> Contributions:
    """Per episode, each metric's numerator and denominator: a group's value is sum / sum."""
    n = len(episodes)
    ones = np.ones(n)

    def share(values) -> tuple[np.ndarray, np.ndarray]:
        return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(np.float64), ones

    priced = difference.is_valid().to_numpy(zero_copy_only=False).astype(np.float64)
    return {
        "principal_agreement": share(episodes.column("principal_equal")),
        "principal_agreement_3": share(episodes.column("principal_3_equal")),
        **_rates("secondary", diagnoses.counts("both"), diagnoses.counts("only_b"), diagnoses.counts("only_a")),
        **_rates("procedure", procedures.counts("both"), procedures.counts("only_b"), procedures.counts("only_a")),
        "drg_agreement": share(drg_equal),
        "mdc_agreement": share(_equal(episodes.column("mdc_a"), episodes.column("mdc_b"))),
        "cc_level_agreement": share(_equal(episodes.column("cc_level_a"), episodes.column("cc_level_b"))),
        "points_difference_mean": (pc.fill_null(difference, 0.0).to_numpy(zero_copy_only=False), priced),
        "points_difference_sum": (pc.fill_null(difference, 0.0).to_numpy(zero_copy_only=False), priced),
    }


def _factorise(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(pc.fill_null(pc.cast(column, pa.string()), "(none)").combine_chunks())
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _agreement(
    level_name: str,
    group: np.ndarray,
    labels: list[str],
    contributions: Contributions,
    replicates: int,
    level: float,
    rng: np.random.Generator,
) -> pa.Table:
    """One row per (group, metric): value = sum of numerators / sum of denominators (a sum for
    `*_sum`), with a bootstrap percentile interval over the group's units when enough contribute."""
    names = list(contributions)
    numerators = np.column_stack([contributions[name][0] for name in names])
    denominators = np.column_stack([contributions[name][1] for name in names])
    is_sum = np.array([name.endswith("_sum") for name in names])
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(labels) + 1))
    out: dict[str, list] = {
        key: [] for key in ("group", "metric", "value", "low", "high", "numerator", "denominator", "episodes", "note")
    }
    for index, label in enumerate(labels):
        members = order[bounds[index] : bounds[index + 1]]
        if not len(members):
            continue
        num, den = numerators[members], denominators[members]
        value = _values(num.sum(axis=0), den.sum(axis=0), is_sum)
        contributing = (den > 0).sum(axis=0)
        low = np.full(len(names), np.nan)
        high = np.full(len(names), np.nan)
        enough = contributing >= MIN_EPISODES
        if enough.any() and replicates > 0:
            low[enough], high[enough] = _bootstrap(
                num[:, enough], den[:, enough], is_sum[enough], replicates, level, rng
            )
        for k, name in enumerate(names):
            out["group"].append(str(label))
            out["metric"].append(name)
            out["value"].append(None if np.isnan(value[k]) else float(value[k]))
            out["low"].append(None if np.isnan(low[k]) else float(low[k]))
            out["high"].append(None if np.isnan(high[k]) else float(high[k]))
            out["numerator"].append(float(num[:, k].sum()))
            out["denominator"].append(float(den[:, k].sum()))
            out["episodes"].append(int(contributing[k]))
            out["note"].append("" if enough[k] else TOO_FEW)
    size = len(out["group"])
    return pa.table(
        {
            "level": pa.array([level_name] * size, pa.string()),
            "group": pa.array(out["group"], pa.string()),
            "metric": pa.array(out["metric"], pa.string()),
            "value": pa.array(out["value"], pa.float64()),
            "low": pa.array(out["low"], pa.float64()),
            "high": pa.array(out["high"], pa.float64()),
            "numerator": pa.array(out["numerator"], pa.float64()),
            "denominator": pa.array(out["denominator"], pa.float64()),
            "episodes": pa.array(out["episodes"], pa.int64()),
            "note": pa.array(out["note"], pa.string()),
        }
    )


def _values(numerator: np.ndarray, denominator: np.ndarray, is_sum: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)
    return np.where(is_sum, numerator, ratio)


def _bootstrap(
    numerators: np.ndarray, denominators: np.ndarray, is_sum: np.ndarray, replicates: int, level: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of sum/sum over `replicates` resamples of the rows with replacement.

    A resample is a row of counts (how often each unit is drawn), so its sums are one matrix
    product; blocks of resamples keep the count matrix within a few million cells. A group of more
    than `_BOOTSTRAP_UNITS` rows is first summed into that many random blocks of equal size, which
    are resampled instead: the sums of independent episodes, their totals have the same variance
    (a million episodes would otherwise cost hundreds of millions of draws per replicate set).
    """
    m = len(numerators)
    if m > _BOOTSTRAP_UNITS:
        block_of = rng.permutation(m) % _BOOTSTRAP_UNITS
        numerators, denominators = (
            np.column_stack([np.bincount(block_of, weights=column, minlength=_BOOTSTRAP_UNITS) for column in matrix.T])
            for matrix in (numerators, denominators)
        )
        m = _BOOTSTRAP_UNITS
    chunk = max(1, 4_000_000 // m)
    values = np.empty((replicates, numerators.shape[1]))
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        draws = rng.integers(0, m, size=(size, m)) + (np.arange(size) * m)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * m).reshape(size, m).astype(np.float64)
        values[start : start + size] = _values(counts @ numerators, counts @ denominators, is_sum)
    tail = (1 - level) / 2
    low, high = np.nanquantile(values, [tail, 1 - tail], axis=0)
    return low, high


def _confusion(episodes: pa.Table) -> pa.Table:
    """DRG in A → DRG in B, with the number of episodes and the points difference."""
    work = pa.table(
        {
            "drg_a": pc.fill_null(episodes.column("drg_a"), "(none)"),
            "drg_b": pc.fill_null(episodes.column("drg_b"), "(none)"),
            "changed": episodes.column("drg_changed"),
            "points_difference": episodes.column("points_difference"),
        }
    )
    summary = work.group_by(["drg_a", "drg_b", "changed"], use_threads=False).aggregate(
        [([], "count_all"), ("points_difference", "sum")]
    )
    table = pa.table(
        {
            "drg_a": summary.column("drg_a"),
            "drg_b": summary.column("drg_b"),
            "changed": summary.column("changed"),
            "episodes": summary.column("count_all"),
            "points_difference": summary.column("points_difference_sum"),
        }
    )
    return table.sort_by([("episodes", "descending"), ("drg_a", "ascending"), ("drg_b", "ascending")])


def _interval_text(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "-"
    digits = ",.2f" if row["metric"].startswith("points") else ".3f"
    if row["low"] is None:
        return f"{value:{digits}}  ({row['note']}: {row['episodes']} episodes)"
    return f"{value:{digits}}  [{row['low']:{digits}}, {row['high']:{digits}}]  ({row['episodes']:,} episodes)"


# --------------------------------------------------------------------------------------------
# The report

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
