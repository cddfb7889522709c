"""The audit's stratified review sample: which episodes a reviewer reads, and the exact probability
each had of being drawn, so that reviewed results extrapolate without bias (Horvitz–Thompson).

Every unit × period cell is cut into four strata (no finding / finding, crossed with points at
stake below / at least the 75th percentile). Every non-empty stratum gets at least one draw; when a
cell's share is too small for that, its smallest strata are merged with their neighbours and the
sample names the merged stratum (`other + high points`). See docs/audit.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.episodes.layouts import to_canonical
from nordgroup.review._columns import cell_of, split_keys

__all__ = ["STRATUM_NAMES", "SampleSizeWarning", "review_sample"]

STRATUM_NAMES = ("other", "high points", "findings", "findings and high points")
_STRATUM_FACTORS = np.array([1.0, 2.0, 3.0, 4.0])  # relative sampling rates of the strata
_OVERSHOOT = 1.2  # warn when the sample is this many times the share asked for


class SampleSizeWarning(UserWarning):
    """The unit × period cells are too small for the share asked: the sample is larger than asked."""


def review_sample(
    episodes: pa.Table,
    findings: pa.Table,
    *,
    fraction: float,
    seed: int = 0,
    points: np.ndarray | None = None,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    period: str | None = None,
    risk: np.ndarray | None = None,
) -> pa.Table:
    """A reproducible stratified review sample of `fraction` of the episodes of each unit and period.

    `period` (`week`, `month`, `quarter`, `year`) cuts a date `period_column` into periods; without
    it the column's values are the periods. Each cell draws round(fraction × cell size) episodes (at
    least one, and at least one per non-empty stratum after merging), spread over its strata at
    rates 1 : 2 : 3 : 4 (capped at everything). Each stratum is a simple random sample without
    replacement, so an episode's inclusion probability is exactly n_h / N_h of its stratum and
    Σ 1/π over a cell's sample is the cell's size. A `SampleSizeWarning` says when the cells are too
    small for `fraction` (the sample then holds more than asked). Episodes where `risk` holds count
    as episodes with a finding (e.g. `drg_sensitivity.carried_by_one_code`: a DRG that hangs on one
    code).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction}")
    table = to_canonical(episodes)
    n = len(table)
    rows = findings.column("row").to_numpy()
    finding_count = np.bincount(rows, minlength=n)
    stake = np.zeros(n) if points is None else np.nan_to_num(np.asarray(points, np.float64))
    finding_points = np.abs(np.nan_to_num(findings.column("points").to_numpy(zero_copy_only=False)))
    np.maximum.at(stake, rows, finding_points)
    positive = stake[stake > 0]
    high = stake >= np.percentile(positive, 75) if len(positive) else np.zeros(n, bool)
    high &= stake > 0
    flagged = (finding_count > 0) | (np.zeros(n, bool) if risk is None else np.asarray(risk, bool))
    stratum = flagged.astype(np.int64) * 2 + high.astype(np.int64)

    keys = split_keys(table, unit_column, period_column, period)
    cell = cell_of(keys, n)
    n_cells = int(cell.max(initial=-1)) + 1
    population = np.bincount(cell * 4 + stratum, minlength=n_cells * 4).reshape(-1, 4)
    merged_into, take = allocate(population, fraction)
    group = cell * 4 + merged_into[cell, stratum]
    group_size = np.bincount(group, minlength=n_cells * 4)

    rng = np.random.default_rng(seed)
    # within each group a random order: the group number plus a uniform fraction, sorted once
    order = np.argsort(group + rng.random(n))
    starts = np.concatenate([[0], np.cumsum(group_size)])[:-1]
    rank = np.arange(n) - starts[group[order]]
    chosen = np.sort(order[rank < take.ravel()[group[order]]])
    probability = take.ravel() / np.maximum(group_size, 1)
    _warn_when_too_small(population.sum(axis=1), len(chosen), n, fraction, period_column, period)

    labels = _group_labels(merged_into)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "row": pa.array(chosen, pa.int64()),
        "episode_id": pc.cast(table.column("episode_id"), pa.string()).take(chosen),
    }
    for name, column in keys.items():
        columns[name] = column.take(pa.array(chosen))
    columns.update(
        stratum=pa.array(labels[group[chosen]], pa.string()),
        inclusion_probability=pa.array(probability[group[chosen]]),
        findings=pa.array(finding_count[chosen]),
        points_at_stake=pa.array(stake[chosen]),
    )
    return pa.table(columns)


def allocate(population: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: which stratum each stratum is merged into (itself when not merged), and the draws
    of each merged stratum (indexed by the stratum it is merged into; 0 elsewhere).

    A cell draws round(fraction × size) episodes, at least one. While it has more non-empty strata
    than draws, the stratum expecting the fewest draws joins its neighbour in rate order. Rates
    1 : 2 : 3 : 4 (a merged stratum: its members' mean, by size) are capped at 1 with the rest
    spread over the other strata; the draws are rounded so that they sum to the cell's draws and
    every merged stratum gets at least one, so no episode has inclusion probability 0.
    """
    n_cells = len(population)
    merged_into = np.tile(np.arange(4), (n_cells, 1))
    take = np.zeros_like(population)
    for cell, sizes in enumerate(population):
        total = int(sizes.sum())
        if not total:
            continue
        wanted = max(1, round(fraction * total))
        groups = [[stratum] for stratum in range(4) if sizes[stratum]]
        while len(groups) > wanted:
            expected = [sizes[g].sum() * _STRATUM_FACTORS[g].mean() for g in groups]
            smallest = int(np.argmin(expected))
            neighbour = smallest + 1 if smallest + 1 < len(groups) else smallest - 1
            groups[min(smallest, neighbour)] += groups.pop(max(smallest, neighbour))
        group_sizes = np.array([sizes[g].sum() for g in groups], np.float64)
        factors = np.array([(sizes[g] * _STRATUM_FACTORS[g]).sum() for g in groups]) / group_sizes
        draws = _rounded_draws(group_sizes, _capped_rates(group_sizes, factors, wanted) * group_sizes, wanted)
        for members, count in zip(groups, draws, strict=True):
            head = min(members)
            merged_into[cell, members] = head
            take[cell, head] = count
    return merged_into, take


def _capped_rates(sizes: np.ndarray, factors: np.ndarray, wanted: int) -> np.ndarray:
    """Rates proportional to `factors`, water-filled: a stratum whose rate would pass 1 is taken
    whole and the rest rescaled, so the expected draws sum to `wanted` (or everything)."""
    rates = np.zeros(len(sizes))
    open_groups = np.ones(len(sizes), bool)
    left = float(wanted)
    while open_groups.any() and left > 0:
        scale = left / float((sizes * factors)[open_groups].sum())
        full = open_groups & (scale * factors >= 1)
        if not full.any():
            rates[open_groups] = scale * factors[open_groups]
            break
        rates[full] = 1.0
        left -= float(sizes[full].sum())
        open_groups &= ~full
    return rates


def _rounded_draws(sizes: np.ndarray, expected: np.ndarray, wanted: int) -> np.ndarray:
    """Whole draws near `expected`, each in 1 .. size, summing to `wanted` (largest remainders)."""
    draws = np.clip(np.round(expected), 1, sizes).astype(np.int64)
    while draws.sum() > wanted and (draws > 1).any():
        over = np.where(draws > 1, draws - expected, -np.inf)
        draws[int(np.argmax(over))] -= 1
    while draws.sum() < wanted and (draws < sizes).any():
        under = np.where(draws < sizes, expected - draws, -np.inf)
        draws[int(np.argmax(under))] += 1
    return draws


def _group_labels(merged_into: np.ndarray) -> np.ndarray:
    """The stratum name of each cell × stratum group: `other + high points` for a merged one."""
    labels = np.empty(merged_into.size, object)
    for cell, heads in enumerate(merged_into):
        for head in set(heads.tolist()):
            labels[cell * 4 + head] = " + ".join(STRATUM_NAMES[s] for s in range(4) if heads[s] == head)
    return labels


def _warn_when_too_small(
    cell_sizes: np.ndarray, drawn: int, n: int, fraction: float, period_column: str | None, period: str | None
) -> None:
    if not n or drawn <= _OVERSHOOT * fraction * n:
        return
    small = int(np.count_nonzero((cell_sizes > 0) & (cell_sizes * fraction < 1)))
    hint = (
        f"cut {period_column!r} into longer periods (week, month or quarter)"
        if period_column and period != "year"
        else "split by fewer columns"
    )
    warnings.warn(
        SampleSizeWarning(
            f"the sample holds {drawn / n:.1%} of the episodes, not the {fraction:.1%} asked: {small} of "
            f"{int(np.count_nonzero(cell_sizes))} unit × period cells have fewer than {math.ceil(1 / fraction)} "
            f"episodes and each cell draws at least one; {hint}"
        ),
        stacklevel=3,
    )
