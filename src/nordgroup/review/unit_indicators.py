"""Quality indicators of coding per unit, care type and period: shares of error DRGs, unspecified
principals, missing secondaries and the like, with their counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.episodes.layouts import to_canonical
from nordgroup.review._columns import _group_keys, _principal_codes, list_offsets
from nordgroup.review.kinds import _OK_RTC, FINDING_KINDS


def indicators(
    episodes: pa.Table,
    grouped: pa.Table,
    findings: pa.Table,
    *,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    care_type: bool = True,
    period: str | None = None,
) -> pa.Table:
    """Coding-quality indicators per unit, care type (`money.care_types`) and period.

    `unit_column` may name several columns (`["administration", "coder"]`): one row per
    combination. `period` (`week`, `month`, `quarter`, `year`) cuts a date `period_column`."""
    table = to_canonical(episodes)
    n = len(table)
    keys = _group_keys(table, unit_column, period_column, care_type, period)
    rows = findings.column("row").to_numpy()
    kinds = findings.column("kind").to_numpy(zero_copy_only=False)
    per_kind = {kind: np.bincount(rows[kinds == kind], minlength=n) for kind in FINDING_KINDS}
    offsets, values = list_offsets(table.column("diagnoses"))
    counts = np.diff(offsets)
    principal = _principal_codes(offsets, values)
    mismatch = kinds == "drg_mismatch"
    mismatch_points = np.bincount(
        rows[mismatch],
        weights=np.nan_to_num(findings.column("points").to_numpy(zero_copy_only=False)[mismatch]),
        minlength=n,
    )
    columns = {
        **keys,
        "episodes": np.ones(n, np.int64),
        "error_drg_share": (per_kind["error_drg"] > 0).astype(np.float64),
        # the `group` summary's "return code" figure: every return code other than 0/A, error DRGs included
        "return_code_share": pc.invert(pc.is_in(pc.fill_null(grouped.column("rtc"), ""), pa.array(list(_OK_RTC))))
        .to_numpy(zero_copy_only=False)
        .astype(np.float64),
        "symptom_principal_share": (per_kind["symptom_principal"] > 0).astype(np.float64),
        "unspecified_principal_share": (per_kind["unspecified_principal"] > 0).astype(np.float64),
        "z_principal_share": pc.starts_with(principal, "Z").to_numpy(zero_copy_only=False).astype(np.float64),
        "mean_secondary_diagnoses": np.maximum(counts - 1, 0).astype(np.float64),
        "cc_share": (pc.fill_null(grouped.column("cc_level"), 0).to_numpy() >= 1).astype(np.float64),
        "findings": np.bincount(rows, minlength=n),
        **{f"findings_{kind}": count for kind, count in per_kind.items()},
        "drg_mismatches": per_kind["drg_mismatch"],
        "mismatch_points": mismatch_points,
    }
    summed = [name for name in columns if name not in keys and not name.endswith(("_share", "_diagnoses"))]
    averaged = [name for name in columns if name.endswith(("_share", "_diagnoses"))]
    aggregated = (
        pa.table(columns)
        .group_by(list(keys))
        .aggregate([(name, "sum") for name in summed] + [(name, "mean") for name in averaged])
    )
    aggregated = aggregated.rename_columns([re.sub(r"_(sum|mean)$", "", name) for name in aggregated.column_names])
    order = [*keys, "episodes", *averaged, *(name for name in summed if name != "episodes")]
    return aggregated.select(order).sort_by([(key, "ascending") for key in keys])
