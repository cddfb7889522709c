"""`extrapolate_sample`: a reviewed sample's effect on the whole population, Horvitz–Thompson
weighted, with a bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.exceptions import NordgroupError
from nordgroup.money.simulation import SimulationResult, _escape


@frozen
class Estimate:
    """An estimated population total change with its bootstrap percentile interval."""

    change: float
    low: float
    high: float
    baseline_total: float  # estimated population total before the corrections

    @property
    def relative_change(self) -> float:
        return self.change / self.baseline_total if self.baseline_total else math.nan

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@frozen
class Extrapolation:
    """A reviewed sample's effect on the whole population, and whether it supports a conclusion."""

    points: Estimate
    money: Estimate
    sample_size: int
    changed_in_sample: int
    population_size: float  # sum of 1 / inclusion probability
    level: float
    replicates: int
    conclusive: bool
    verdict: str  # the conclusion in one plain sentence

    def html(self) -> str:
        from nordgroup.report import html_table

        table = pa.table(
            {
                "quantity": ["points", "money"],
                "estimated change": [self.points.change, self.money.change],
                f"{self.level:.0%} low": [self.points.low, self.money.low],
                f"{self.level:.0%} high": [self.points.high, self.money.high],
                "relative change": [self.points.relative_change, self.money.relative_change],
            }
        )
        return (
            f"<p><strong>{_escape(self.verdict)}</strong></p>{html_table(table)}<p class='note'>Sample of "
            f"{self.sample_size} reviewed episodes ({self.changed_in_sample} changed), standing for about "
            f"{self.population_size:,.0f} episodes; {self.replicates} bootstrap replicates.</p>"
        )


def _strata(table: pa.Table, columns: list[str]) -> np.ndarray:
    """The stratum number of each row: one per distinct combination of `columns` (none: one stratum)."""
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise NordgroupError(f"the sample has no stratum column {', '.join(map(repr, missing))}")
    codes = np.zeros(len(table), np.int64)
    for name in columns:
        text = pc.fill_null(pc.cast(table.column(name), pa.string()), "").to_numpy(zero_copy_only=False)
        values = np.unique(text, return_inverse=True)[1].reshape(-1)
        codes = codes * (int(values.max(initial=0)) + 1) + values
    return np.unique(codes, return_inverse=True)[1].reshape(-1)


def extrapolate_sample(
    sample: SimulationResult | pa.Table,
    *,
    inclusion_probability: str = "inclusion_probability",
    stratum: str | Sequence[str] | None = None,
    replicates: int = 2000,
    level: float = 0.95,
    min_sample: int = 30,
    min_changed: int = 5,
    seed: int = 0,
) -> Extrapolation:
    """Estimate the population change in points and money from a reviewed sample.

    `sample` is the result of `simulate` on the sampled episodes with the review's corrections
    (or its `episodes` table), carrying each episode's inclusion probability π. The change is the
    Horvitz–Thompson total Σ (after − before) / π; the interval resamples episodes with replacement
    (within `stratum` when given: a column, or several whose combinations are the strata)
    `replicates` times and takes percentiles. The result says plainly
    that the sample is too small when it has fewer than `min_sample` episodes or fewer than
    `min_changed` episodes whose points changed, and that it is inconclusive when the interval
    includes no change.
    """
    table = sample.episodes if isinstance(sample, SimulationResult) else sample
    if inclusion_probability not in table.column_names:
        raise NordgroupError(
            f"the sample has no {inclusion_probability!r} column (the probability each episode had of being reviewed)"
        )
    probability = pc.cast(table.column(inclusion_probability), pa.float64()).to_numpy(zero_copy_only=False)
    if len(probability) and not (np.all(np.isfinite(probability)) and np.all((probability > 0) & (probability <= 1))):
        raise NordgroupError(f"{inclusion_probability} must be in (0, 1] for every reviewed episode")
    weight = 1.0 / probability if len(probability) else np.zeros(0)

    def values(name: str) -> np.ndarray:
        return pc.fill_null(table.column(name), 0.0).to_numpy(zero_copy_only=False).astype(np.float64)

    points_before, points_change = values("points_before"), values("points_change")
    money_before, money_change = values("reimbursement_before"), values("reimbursement_change")
    n = len(table)
    changed = int(np.count_nonzero(points_change))
    strata = _strata(table, [stratum] if isinstance(stratum, str) else list(stratum or ()))
    rng = np.random.default_rng(seed)
    weighted = np.column_stack([weight * points_change, weight * money_change]) if n else np.zeros((0, 2))
    replicate_totals = np.zeros((replicates, 2))
    for group in np.unique(strata):
        members = np.flatnonzero(strata == group)
        # replicates x members draws, in blocks so a 100 000-episode sample stays within memory
        block = max(1, 2_000_000 // max(1, len(members)))
        for start in range(0, replicates, block):
            stop = min(replicates, start + block)
            draws = members[rng.integers(0, len(members), size=(stop - start, len(members)))]
            replicate_totals[start:stop] += weighted[draws].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(replicate_totals, [tail, 1 - tail], axis=0) if n else (np.zeros(2), np.zeros(2))
    points = Estimate(float(weighted[:, 0].sum()), float(low[0]), float(high[0]), float((weight * points_before).sum()))
    money = Estimate(float(weighted[:, 1].sum()), float(low[1]), float(high[1]), float((weight * money_before).sum()))

    if n < min_sample:
        verdict = f"Too small to conclude: {n} reviewed episodes, at least {min_sample} are needed."
    elif changed < min_changed:
        verdict = (
            f"Too small to conclude: only {changed} of {n} reviewed episodes changed points; at least {min_changed} "
            "are needed to estimate the effect."
        )
    elif not points.excludes_zero:
        verdict = (
            f"Inconclusive: the {level:.0%} interval of the change in points "
            f"({points.low:+,.1f} to {points.high:+,.1f}) includes no change."
        )
    else:
        direction = "raise" if points.change > 0 else "lower"
        verdict = (
            f"The corrections {direction} the population's points by about {abs(points.change):,.1f} "
            f"({level:.0%} interval {points.low:+,.1f} to {points.high:+,.1f}) and its money by about "
            f"{abs(money.change):,.0f} ({money.low:+,.0f} to {money.high:+,.0f})."
        )
    conclusive = n >= min_sample and changed >= min_changed and points.excludes_zero
    return Extrapolation(
        points=points,
        money=money,
        sample_size=n,
        changed_in_sample=changed,
        population_size=float(weight.sum()),
        level=level,
        replicates=replicates,
        conclusive=conclusive,
        verdict=verdict,
    )
