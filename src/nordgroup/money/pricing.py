"""Pricing: DRG points and money per episode, and casemix summaries. Every number comes from an
input file or argument: weight tables per release (`load_weights`), financing per year
(`load_financing`). The formulas are written out in `docs/money.md`; in short, per episode

    care type     = the input's `care_type` where filled, else outpatient for 0 days (`care_types`)
    base points   = the weight of the care type (outpatient, day surgery: when given) else weight
    extra days    = max(0, duration_days - trim_days)       (inpatient, DRG with a trim point)
    points        = base points + extra days x per_day_weight
    DRG value     = points x price_per_point
    reimbursement = DRG value x activity_share

All per-episode work is vectorised over Arrow/numpy columns; no Python loop runs per episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.codes import drg_key
from nordgroup.exceptions import NordgroupError
from nordgroup.money.financing import Financing
from nordgroup.money.weights import WeightTable

if TYPE_CHECKING:
    from nordgroup.tables.model import DrgTables


#: Columns `price_episodes` appends to a grouped table.
PRICE_COLUMNS = (
    "care_type",
    "priced",
    "base_points",
    "supplement_days",
    "supplement_points",
    "points",
    "drg_value",
    "reimbursement",
)


INPATIENT, OUTPATIENT, DAY_SURGERY = "inpatient", "outpatient", "day_surgery"


#: The care types an input `care_type` column may hold (case, blanks and hyphens aside).
CARE_TYPES = (INPATIENT, OUTPATIENT, DAY_SURGERY)


def with_drg_names(table: pa.Table, *tables: DrgTables, column: str = "drg") -> pa.Table:
    """`table` with a `drg_name` column after `column`: the first name the `tables` give ("" when none)."""
    names: dict[str, str] = {}
    for source in tables:
        for drg, info in source.drgs.items():
            if info.name:
                names.setdefault(drg_key(drg), info.name)
    keys = drg_keys(pc.fill_null(pc.cast(table.column(column), pa.string()), ""))
    distinct, index = np.unique(np.asarray(keys.to_numpy(zero_copy_only=False), dtype=str), return_inverse=True)
    found = np.array([names.get(key, "") for key in distinct] + [""], dtype=object)[index.reshape(-1)]
    return table.add_column(table.column_names.index(column) + 1, "drg_name", pa.array(found, pa.string()))


def drg_keys(drg: pa.Array | pa.ChunkedArray) -> pa.Array:
    """DRG codes as matching keys (`codes.drg_key`: `001` and `1` meet); nulls stay null."""
    encoded = pc.dictionary_encode(_flat_array(pc.cast(drg, pa.string())))
    keys = pa.array([drg_key(value) for value in encoded.dictionary.to_pylist()], pa.string())
    return keys.take(encoded.indices)


def care_types(table: pa.Table, duration_days: pa.Array | pa.ChunkedArray | None = None) -> pa.Array:
    """The care type of each episode, the one definition used by pricing, simulation and audit.

    An input `care_type` column decides where it is filled (`inpatient`, `outpatient`,
    `day_surgery`; case, blanks and hyphens aside); elsewhere 0 hospital days is `outpatient` and
    anything else, an unknown duration too, `inpatient` (it is priced as one). Another value in
    the column is an error naming it.
    """
    duration = _duration(table, duration_days)
    by_days = pc.if_else(pc.fill_null(pc.equal(duration, 0), False), OUTPATIENT, INPATIENT)
    if "care_type" not in table.column_names:
        return _flat_array(by_days)
    given = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table.column("care_type"), pa.string())))
    given = pc.replace_substring_regex(given, r"[\s-]+", "_")
    given = pc.if_else(pc.equal(given, ""), pa.scalar(None, pa.string()), given)
    unknown = pc.unique(pc.drop_null(pc.filter(given, pc.invert(pc.is_in(given, pa.array(CARE_TYPES)))))).to_pylist()
    if unknown:
        raise NordgroupError(
            f"care_type column: {', '.join(map(repr, sorted(unknown)[:5]))} is not one of {', '.join(CARE_TYPES)}"
        )
    return _flat_array(pc.coalesce(given, by_days))


def price_episodes(
    grouped: pa.Table,
    weights: WeightTable,
    financing: Financing,
    *,
    duration_days: pa.Array | pa.ChunkedArray | None = None,
) -> pa.Table:
    """Append `PRICE_COLUMNS` to a grouped table (the output of `Grouper.group`).

    Hospital days come from `duration_days`, else from a `duration_days` column of `grouped`; the
    care type from `care_types`. An episode whose DRG is not in the weight table gets `priced =
    False` and null points/money, so sums skip it and summaries count it instead of pricing it at zero.
    """
    weight_table = weights.to_arrow()
    index = pc.index_in(drg_keys(grouped.column("drg")), value_set=drg_keys(weight_table.column("drg")))
    priced = index.is_valid().to_numpy(zero_copy_only=False)
    row = pc.fill_null(index, 0).to_numpy(zero_copy_only=False)
    care = care_types(grouped, duration_days)
    outpatient = pc.equal(care, OUTPATIENT).to_numpy(zero_copy_only=False)
    day_surgery = pc.equal(care, DAY_SURGERY).to_numpy(zero_copy_only=False)
    duration = pc.fill_null(_duration(grouped, duration_days), 0).to_numpy(zero_copy_only=False).astype(np.float64)

    def weights_of(name: str) -> np.ndarray:
        return pc.fill_null(weight_table.column(name), np.nan).to_numpy(zero_copy_only=False)

    weight, weight_out = weights_of("weight"), weights_of("weight_outpatient")
    weight_day, per_day = weights_of("weight_day_surgery"), weights_of("per_day_weight")
    trim = pc.fill_null(weight_table.column("trim_days"), -1).to_numpy().astype(np.float64)
    if len(weight_table) == 0:
        weight = weight_out = weight_day = trim = per_day = np.zeros(1)

    out_weight = np.where(np.isnan(weight_out[row]), weight[row], weight_out[row])
    day_weight = np.where(np.isnan(weight_day[row]), out_weight, weight_day[row])
    base = np.where(outpatient, out_weight, np.where(day_surgery, day_weight, weight[row]))
    has_trim = (trim[row] >= 0) & ~outpatient & ~day_surgery
    extra_days = np.where(has_trim, np.maximum(duration - trim[row], 0.0), 0.0)
    supplement = extra_days * per_day[row]
    points = base + supplement
    drg_value = points * financing.price_per_point
    missing = ~priced
    columns = {
        "care_type": care,
        "priced": pa.array(priced),
        "base_points": pa.array(base, mask=missing),
        "supplement_days": pa.array(extra_days.astype(np.int32), mask=missing),
        "supplement_points": pa.array(supplement, mask=missing),
        "points": pa.array(points, mask=missing),
        "drg_value": pa.array(drg_value, mask=missing),
        "reimbursement": pa.array(drg_value * financing.activity_share, mask=missing),
    }
    table = grouped
    for name, values in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


def group_and_price(grouper, episodes: pa.Table, weights: WeightTable, financing: Financing) -> pa.Table:
    """Group canonical episodes with `grouper` and price them: the one call a notebook needs."""
    from nordgroup.episodes.layouts import to_canonical

    episodes = to_canonical(episodes)
    return price_episodes(grouper.group(episodes), weights, financing, duration_days=episodes.column("duration_days"))


def casemix(priced: pa.Table, by: str | Sequence[str] = ()) -> pa.Table:
    """Points and money per group (`by` any columns: `unit`, `mdc`, `drg`, `care_type`; none: total).

    `casemix_index` is points (supplements included) per priced episode; `unpriced` counts
    episodes whose DRG the weight table lacks.
    """
    keys = [by] if isinstance(by, str) else list(by)
    work = priced.select([*keys, "priced", "points", "supplement_points", "drg_value", "reimbursement"])
    work = work.append_column("unpriced_flag", pc.cast(pc.invert(work.column("priced")), pa.int64()))
    work = work.append_column("priced_flag", pc.cast(work.column("priced"), pa.int64()))
    summary = work.group_by(keys, use_threads=False).aggregate(
        [
            ("priced", "count"),
            ("priced_flag", "sum"),
            ("unpriced_flag", "sum"),
            ("points", "sum"),
            ("supplement_points", "sum"),
            ("drg_value", "sum"),
            ("reimbursement", "sum"),
        ]
    )
    episodes = summary.column("priced_count")
    priced_count = summary.column("priced_flag_sum")
    points = pc.fill_null(summary.column("points_sum"), 0.0)
    out = {name: summary.column(name) for name in keys}
    out.update(
        episodes=episodes,
        unpriced=summary.column("unpriced_flag_sum"),
        points=points,
        supplement_points=pc.fill_null(summary.column("supplement_points_sum"), 0.0),
        casemix_index=pc.divide(
            points, pc.cast(pc.if_else(pc.equal(priced_count, 0), None, priced_count), pa.float64())
        ),
        drg_value=pc.fill_null(summary.column("drg_value_sum"), 0.0),
        reimbursement=pc.fill_null(summary.column("reimbursement_sum"), 0.0),
    )
    result = pa.table(out)
    return result.sort_by([(name, "ascending") for name in keys]) if keys else result


def _duration(grouped: pa.Table, duration_days: pa.Array | pa.ChunkedArray | None) -> pa.Array | pa.ChunkedArray:
    if duration_days is not None:
        if len(duration_days) != len(grouped):
            raise ValueError(f"{len(duration_days)} durations for {len(grouped)} episodes")
        return duration_days
    if "duration_days" in grouped.column_names:
        return grouped.column("duration_days")
    raise NordgroupError(
        "pricing needs hospital days: pass duration_days= (the episodes' column) or keep a duration_days column"
    )


def _flat_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
