"""Agreement of two codings: code sets per episode, precision, recall and F1 with their
contributions, and bootstrap intervals over units.
"""

from __future__ import annotations

import bisect

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.review._columns import list_offsets

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
        offsets_a, values_a = list_offsets(column_a)
        offsets_b, values_b = list_offsets(column_b)
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


def icd10_chapter(code: str) -> str:
    """The ICD-10 chapter of a code (`I210` → `IX I00-I99`); `(other)` for what is not shaped like one."""
    head = code[:3]
    if len(head) < 3 or not head[0].isalpha() or not head[1:].isdigit():
        return "(other)"
    return _ICD10_CHAPTERS[max(0, bisect.bisect_right(_CHAPTER_STARTS, head) - 1)][1]


def _ncsp_chapter(code: str) -> str:
    """Procedures have no ICD-10 chapter: NCSP's chapter is the first letter (`FNG05` → `F`)."""
    return code[:1] if code[:1].isalpha() else "(other)"


def _equal(x: pa.Array | pa.ChunkedArray, y: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Element-wise equality where two nulls are equal (no DRG on both sides agrees)."""
    both_null = pc.and_(pc.is_null(x), pc.is_null(y))
    return pc.or_(both_null, pc.fill_null(pc.equal(x, y), False))
