"""Cost per patient (KPP): cost against reimbursement per DRG, and a weight table computed from costs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.money.pricing import CARE_TYPES, INPATIENT, OUTPATIENT, _duration, _flat_array, care_types
from nordgroup.money.weights import DrgWeight, WeightTable

if TYPE_CHECKING:
    pass


def cost_vs_reimbursement(
    priced: pa.Table,
    cost: str | pa.Array | pa.ChunkedArray = "cost",
    *,
    by: str | Sequence[str] = ("drg",),
    basis: str = "drg_value",
    min_episodes: int = 30,
) -> pa.Table:
    """KPP cost against revenue per group, the biggest loss first.

    `cost` is a column of `priced` or an array aligned with it. `basis` is the revenue compared:
    `drg_value` (points x price, the full DRG price; right when the activity-based share is below 1
    and a block grant pays the rest) or `reimbursement` (the activity-based payment only). Only
    episodes with both a cost and a price count. `few_episodes` marks groups with fewer than
    `min_episodes` of them: their margin says little.
    """
    if basis not in ("drg_value", "reimbursement"):
        raise ValueError(f"basis must be 'drg_value' or 'reimbursement', not {basis!r}")
    keys = [by] if isinstance(by, str) else list(by)
    costs = priced.column(cost) if isinstance(cost, str) else cost
    if len(costs) != len(priced):
        raise ValueError(f"{len(costs)} costs for {len(priced)} episodes")
    costs = pc.cast(costs, pa.float64())
    counted = pc.and_(pc.is_valid(costs), pc.fill_null(priced.column("priced"), False))
    work = pa.table({**{name: priced.column(name) for name in keys}, "cost": costs, "revenue": priced.column(basis)})
    work = work.filter(counted)
    summary = work.group_by(keys, use_threads=False).aggregate([("cost", "count"), ("cost", "sum"), ("revenue", "sum")])
    episodes = summary.column("cost_count")
    total_cost = summary.column("cost_sum")
    revenue = summary.column("revenue_sum")
    margin = pc.subtract(revenue, total_cost)
    count = pc.cast(episodes, pa.float64())
    result = pa.table(
        {
            **{name: summary.column(name) for name in keys},
            "episodes": episodes,
            "cost": total_cost,
            "revenue": revenue,
            "margin": margin,
            "cost_per_episode": pc.divide(total_cost, count),
            "revenue_per_episode": pc.divide(revenue, count),
            "margin_per_episode": pc.divide(margin, count),
            "cost_coverage": pc.divide(revenue, pc.if_else(pc.equal(total_cost, 0.0), None, total_cost)),
            "few_episodes": pc.less(episodes, min_episodes),
        }
    )
    result = result.replace_schema_metadata({"basis": basis, "min_episodes": str(min_episodes)})
    return result.sort_by([("margin", "ascending")])


@frozen
class CostWeightRules:
    """How `weights_from_costs` trims and flags; every number is here, none is buried in code.

    - `cost_fence`: an episode whose cost lies outside [Q1 - f x IQR, Q3 + f x IQR] of its DRG
      (Tukey's fences, f = `cost_fence`) is an outlier and left out of every mean; None keeps all.
    - `trim_point_fence`: the trim point of a DRG is Q3 + f x IQR of its inpatient days (rounded
      up), computed on the cost inliers; None leaves DRGs without trim points.
    - `min_episodes`: a DRG whose weight of some care type rests on fewer inlier episodes, or that
      has no inpatient stay, is flagged `few_episodes`.
    """

    cost_fence: float | None = 3.0
    trim_point_fence: float | None = 1.5
    min_episodes: int = 30


@frozen(eq=False)
class CostWeights:
    """A weight table computed from KPP costs, with the per-DRG workings behind each weight."""

    weights: WeightTable
    details: pa.Table  # one row per DRG: weights per care type, episodes, outliers, means, trim point, flags
    mean_cost: float  # mean cost of the inlier inpatient stays: the cost of weight 1.0
    rules: CostWeightRules

    @property
    def few_episodes(self) -> list[str]:
        """DRGs whose weight rests on fewer than `rules.min_episodes` episodes."""
        return self.details.filter(self.details.column("few_episodes")).column("drg").to_pylist()

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights with their workings; `load_weights` reads it (extra columns ignored)."""
        import pyarrow.csv as pacsv

        path = Path(path)
        pacsv.write_csv(self.details, path)
        return path


def weights_from_costs(
    costed: pa.Table,
    cost: str | pa.Array | pa.ChunkedArray = "cost",
    *,
    rules: CostWeightRules | None = None,
    duration_days: pa.Array | pa.ChunkedArray | None = None,
    source: str = "weights computed from costs",
) -> CostWeights:
    """Weights from KPP, one per care type, all in the unit of the average inpatient stay.

    `costed` is a grouped table (a `drg` column) with costs (`cost`: a column name or an aligned
    array); hospital days come from `duration_days` or a `duration_days` column, the care type
    from `care_types`. Per DRG and care type (inpatient, outpatient, day surgery) the mean inlier
    cost is divided by the mean inlier cost of all inpatient stays, as the national weight work
    does: the inpatient casemix index is exactly 1 and an outpatient contact weighs what it costs
    against that stay. Trim points and per-day weights come from the inpatient stays. A DRG with
    no inpatient stay takes its outpatient (else day-surgery) weight as its weight. Episodes with
    no cost or no DRG are left out.
    """
    rules = rules or CostWeightRules()
    costs = pc.cast(costed.column(cost) if isinstance(cost, str) else cost, pa.float64())
    has_days = duration_days is not None or "duration_days" in costed.column_names
    days = _duration(costed, duration_days) if has_days else pa.nulls(len(costed), pa.int32())
    care = pc.index_in(care_types(costed, days), value_set=pa.array(CARE_TYPES))
    usable = pc.and_(pc.is_valid(costs), pc.is_valid(costed.column("drg")))
    drg = pc.cast(costed.column("drg"), pa.string()).filter(usable)
    encoded = pc.dictionary_encode(_flat_array(drg))
    names = encoded.dictionary.to_pylist()
    n_drgs, n_care = len(names), len(CARE_TYPES)
    care_of = care.filter(usable).to_numpy(zero_copy_only=False).astype(np.int64)
    group = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64) * n_care + care_of
    n_groups = n_drgs * n_care
    value = costs.filter(usable).to_numpy(zero_copy_only=False)
    day_values = pc.cast(days.filter(usable), pa.float64()).to_numpy(zero_copy_only=False)

    # Tukey's fences per DRG and care type: a cheap contact is no outlier among expensive stays
    inlier = np.ones(len(value), bool)
    if rules.cost_fence is not None and len(value):
        q1, q3 = _group_quantiles(value, group, n_groups, (0.25, 0.75))
        spread = rules.cost_fence * (q3 - q1)
        inlier = (value >= (q1 - spread)[group]) & (value <= (q3 + spread)[group])
    episodes = np.bincount(group // n_care, minlength=n_drgs) if len(group) else np.zeros(n_drgs, np.int64)
    inliers = np.bincount(group, weights=inlier, minlength=n_groups).astype(np.int64).reshape(n_drgs, n_care)
    cost_sum = np.bincount(group, weights=np.where(inlier, value, 0.0), minlength=n_groups).reshape(n_drgs, n_care)
    stays = inlier & (care_of == CARE_TYPES.index(INPATIENT))
    # the cost of weight 1.0: the mean inpatient stay (all episodes when there is none)
    unit = stays if stays.any() else inlier
    mean_cost = float(value[unit].mean()) if unit.any() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        drg_mean = cost_sum / inliers
        weights = drg_mean / mean_cost  # DRG x care type
    inpatient, outpatient, day_surgery = (weights[:, CARE_TYPES.index(c)] for c in CARE_TYPES)
    weight = np.where(np.isnan(inpatient), np.where(np.isnan(outpatient), day_surgery, outpatient), inpatient)

    with_days = stays & np.isfinite(day_values) & (day_values > 0)
    drg_of = group // n_care
    trim_days = np.full(n_drgs, -1, np.int64)
    if rules.trim_point_fence is not None and with_days.any():
        present = np.bincount(drg_of[with_days], minlength=n_drgs) > 0
        q1, q3 = _group_quantiles(day_values[with_days], drg_of[with_days], n_drgs, (0.25, 0.75))
        trim = np.ceil(q3 + rules.trim_point_fence * (q3 - q1))
        trim_days = np.where(present, np.nan_to_num(trim, nan=-1), -1).astype(np.int64)
    stay_cost = np.bincount(drg_of[with_days], weights=value[with_days], minlength=n_drgs)
    stay_days = np.bincount(drg_of[with_days], weights=day_values[with_days], minlength=n_drgs)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = np.where(stay_days > 0, stay_cost / stay_days / mean_cost, 0.0)
    given = inliers > 0
    few = ((inliers < rules.min_episodes) & given).any(axis=1) | ~given[:, CARE_TYPES.index(INPATIENT)]

    order = sorted(range(n_drgs), key=lambda i: _sort_key(names[i]))

    def column(values: np.ndarray) -> pa.Array:
        return pa.array(values[order], mask=np.isnan(values[order]))

    details = pa.table(
        {
            "drg": pa.array([names[i] for i in order], pa.string()),
            "weight": pa.array(weight[order]),
            "trim_days": pa.array(trim_days[order], mask=trim_days[order] < 0).cast(pa.int32()),
            "per_day_weight": pa.array(per_day[order]),
            "weight_outpatient": column(outpatient),
            "weight_day_surgery": column(day_surgery),
            "episodes": pa.array(episodes[order]),
            "inliers": pa.array(inliers.sum(axis=1)[order]),
            "outliers": pa.array(episodes[order] - inliers.sum(axis=1)[order]),
            **{f"{care}_inliers": pa.array(inliers[order, i]) for i, care in enumerate(CARE_TYPES)},
            "mean_cost": column(drg_mean[:, CARE_TYPES.index(INPATIENT)]),
            "mean_cost_outpatient": column(drg_mean[:, CARE_TYPES.index(OUTPATIENT)]),
            "few_episodes": pa.array(few[order]),
        }
    )

    def optional(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    rows = tuple(
        DrgWeight(
            drg=names[i],
            weight=float(weight[i]) if np.isfinite(weight[i]) else 0.0,
            trim_days=int(trim_days[i]) if trim_days[i] >= 0 else None,
            per_day_weight=float(per_day[i]),
            weight_outpatient=optional(outpatient[i]),
            weight_day_surgery=optional(day_surgery[i]),
        )
        for i in order
    )
    return CostWeights(WeightTable(rows, source=source), details, mean_cost, rules)


def _group_quantiles(
    values: np.ndarray, group: np.ndarray, n_groups: int, quantiles: tuple[float, ...]
) -> list[np.ndarray]:
    """Per-group quantiles (linear interpolation, as numpy's default) in one sort, no loop per group."""
    order = np.lexsort((values, group))
    ordered = values[order]
    sizes = np.bincount(group, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    found = []
    for q in quantiles:
        position = q * np.maximum(sizes - 1, 0)
        low = np.floor(position).astype(np.int64)
        high = np.ceil(position).astype(np.int64)
        empty = sizes == 0
        low_value = ordered[np.where(empty, 0, starts + low)] if len(ordered) else np.zeros(n_groups)
        high_value = ordered[np.where(empty, 0, starts + high)] if len(ordered) else np.zeros(n_groups)
        value = low_value + (high_value - low_value) * (position - low)
        found.append(np.where(empty, np.nan, value))
    return found


def _sort_key(drg: str) -> tuple[int, str]:
    digits = len(drg) - len(drg.lstrip("0123456789"))
    return (int(drg[:digits]) if digits else 10**6, drg)
