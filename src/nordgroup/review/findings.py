"""`audit`: findings of wrong or doubtful DRG outcomes, one row per finding; and DRG points per
episode.

Everything is columnar. The list columns are dictionary-encoded once; each *distinct* written code
is judged once in Python (`_CodeFacts`), and the judgements are taken back to the elements and
episodes with numpy. No Python loop runs per episode. See docs/audit.md for the finding kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.dataframes import arrow_table
from nordgroup.episodes.layouts import to_canonical
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import drg_keys, price_episodes
from nordgroup.money.weights import WeightTable, as_weight_table
from nordgroup.review._code_findings import _BlockValidity, _CodeFacts, _diagnosis_findings, _procedure_findings
from nordgroup.review._columns import _principal_codes, list_offsets
from nordgroup.review._columns import distinct as _distinct
from nordgroup.review._columns import flat as _flat
from nordgroup.review._columns import repeat_text as _repeat
from nordgroup.review.blocklist import (
    BlockList,
    default_block_list,
    layered_block_list,
)
from nordgroup.review.kinds import _OK_RTC, _assemble, _Part, error_drgs
from nordgroup.tables.model import DrgTables

_MAX_AGE_DAYS = 125 * 366


def audit(
    episodes: pa.Table,
    grouper: Grouper,
    *,
    weights: WeightTable | Mapping[str, float] | pa.Table | None = None,
    financing: Financing | None = None,
    block_list: BlockList | str | Path | Sequence[str | Path | tuple[str, str | Path]] | None = None,
    reported_drg_column: str | None = None,
    invoiced_amount_column: str | None = None,
    amount_tolerance: float = 0.5,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    grouped: pa.Table | None = None,
    other_years: Sequence[DrgTables] = (),
    date_column: str | None = None,
) -> pa.Table:
    """Findings for a batch of canonical episodes, one row per finding (see `FINDING_SCHEMA`).

    Points and money at stake are priced by `money.price_episodes` with `weights` (a `WeightTable`,
    `{drg: weight}` or Arrow columns) and `financing`: care type, outpatient and day-surgery
    weights and long-stay supplements included. `invoiced_amount_column` (needs both) is compared
    with the regrouped DRG's reimbursement; differences above `amount_tolerance` are findings.
    `block_list`: None for the shipped default; a path, or a sequence of paths or (layer name, path)
    pairs, layered on the default (see `layered_block_list`); a `BlockList` is used as it is.
    `date_column` (dates or YYYY-MM-DD) decides which dated block-list entries apply to an episode;
    without it, an entry applies when its validity overlaps the tables' year. `grouped` is
    `grouper.group(episodes)` when the caller already has it. `other_years` are tables of other
    years, so that a code unknown this year can be told apart from one valid in another year.
    `unit_column` and `period_column` are not needed here; they are accepted so that `audit`,
    `indicators` and `review_sample` take the same arguments.
    """
    del unit_column, period_column
    table = to_canonical(arrow_table(episodes))  # any dataframe exporting __arrow_c_stream__
    grouped = grouped if grouped is not None else grouper.group(table)
    if len(grouped) != len(table):
        raise ValueError(f"grouped has {len(grouped)} rows, the episodes {len(table)}")
    if block_list is None:
        block_list = default_block_list()
    elif not isinstance(block_list, BlockList):
        block_list = layered_block_list([block_list] if isinstance(block_list, str | Path) else block_list)
    facts = _CodeFacts(grouper.tables, block_list, other_years)
    facts.valid = _BlockValidity(table, date_column, grouper.tables.release.year)
    pricing = _Pricing(table, as_weight_table(weights), financing)
    regrouped = pricing.price(grouped.column("drg"))
    n = len(table)
    parts: list[_Part] = []
    parts += _grouping_findings(grouped, grouper.tables)
    parts += _field_findings(table)
    parts += _diagnosis_findings(table, grouped, facts)
    parts += _procedure_findings(table, facts)
    parts += _duplicate_episode_findings(table)
    if reported_drg_column is not None:
        parts += _mismatch_findings(table, grouped, reported_drg_column, pricing, regrouped)
    if invoiced_amount_column is not None:
        parts += _amount_findings(table, grouped, invoiced_amount_column, pricing, regrouped, amount_tolerance)
    return _assemble(parts, table, grouped, regrouped, n)


def drg_points(
    grouped: pa.Table, weights: WeightTable | Mapping[str, float] | pa.Table | None, *, episodes: pa.Table | None = None
) -> np.ndarray:
    """Points of each episode's regrouped DRG as `money.price_episodes` gives them (NaN where the
    weight table has no such DRG). Care type and hospital days come from `episodes` (else from
    `grouped`); without either, every episode counts as an inpatient stay without supplement."""
    source = to_canonical(episodes) if episodes is not None else grouped
    if "duration_days" not in source.column_names:
        source = source.append_column("duration_days", pa.nulls(len(source), pa.int32()))
    return _Pricing(source, as_weight_table(weights), None).price(grouped.column("drg"))[0]


def _grouping_findings(grouped: pa.Table, tables: DrgTables) -> list[_Part]:
    errors = error_drgs(tables)
    drg = pc.fill_null(grouped.column("drg"), "")
    rtc = pc.fill_null(grouped.column("rtc"), "")
    indices, distinct = _distinct(pc.binary_join_element_wise(drg, rtc, "|"))
    pairs = [value.split("|") for value in distinct] + [["", ""]]
    in_error = np.array([d in errors for d, _ in pairs])
    bad_rtc = np.array([r not in _OK_RTC for _, r in pairs])
    texts = pa.array(
        # the meaning says when it is nordgroup's default rather than the release's own rtc table
        [f"DRG {d or 'none'}, return code {r}: {tables.return_code_meaning(r)}" for d, r in pairs]
    )
    parts = []
    for kind, mask in (("error_drg", in_error), ("return_code", bad_rtc & ~in_error)):
        rows = np.flatnonzero(mask[indices])
        if len(rows):
            picked = pa.array(indices[rows])
            code = pa.array([r for _, r in pairs]).take(picked)
            parts.append(_Part(rows, kind, "error", "rtc", code, texts.take(picked)))
    return parts


def _field_findings(table: pa.Table) -> list[_Part]:
    sex = table.column("sex").to_numpy(zero_copy_only=False)
    age = pc.fill_null(table.column("age_days"), -(2**31)).to_numpy()
    duration = pc.fill_null(table.column("duration_days"), -(2**31)).to_numpy()
    missing = -(2**31)
    discharge = table.column("discharge")
    offsets, values = list_offsets(table.column("diagnoses"))
    principal = _principal_codes(offsets, values)
    checks = [
        ("sex", pc.is_null(table.column("sex")).to_numpy(zero_copy_only=False), "warning", "sex missing"),
        (
            "sex",
            ~np.isin(np.nan_to_num(sex.astype(float), nan=1), (1, 2)),
            "error",
            "sex is neither 1 (male) nor 2 (female)",
        ),
        ("age_days", age == missing, "warning", "age missing or not a number"),
        ("age_days", (age != missing) & ((age < 0) | (age > _MAX_AGE_DAYS)), "error", "age below 0 or above 125 years"),
        ("duration_days", duration == missing, "warning", "duration missing or not a number"),
        ("duration_days", (duration != missing) & (duration < 0), "error", "duration below 0"),
        (
            "discharge",
            pc.fill_null(pc.invert(pc.is_in(discharge, pa.array(["E", "N", "R"]))), False).to_numpy(
                zero_copy_only=False
            ),
            "error",
            "discharge is not E, N (H) or R",
        ),
        ("diagnoses", pc.equal(principal, "").to_numpy(zero_copy_only=False), "error", "no principal diagnosis"),
    ]
    shown = {
        "sex": pc.cast(table.column("sex"), pa.string()),
        "age_days": pc.cast(table.column("age_days"), pa.string()),
        "duration_days": pc.cast(table.column("duration_days"), pa.string()),
        "discharge": discharge,
        "diagnoses": principal,
    }
    parts = []
    for field, mask, severity, text in checks:
        rows = np.flatnonzero(mask)
        if len(rows):
            code = pc.fill_null(shown[field].take(rows), "")
            parts.append(_Part(rows, "malformed_field", severity, field, _flat(code), _repeat(text, len(rows))))
    return parts


def _duplicate_episode_findings(table: pa.Table) -> list[_Part]:
    ids = pc.cast(table.column("episode_id"), pa.string())
    indices, _ = _distinct(ids)
    _, first = np.unique(indices, return_index=True)
    repeated = np.ones(len(indices), bool)
    repeated[first] = False
    rows = np.flatnonzero(repeated)
    if not len(rows):
        return []
    times = np.bincount(indices)[indices[rows]]
    text = pc.binary_join_element_wise("episode id occurs ", pc.cast(pa.array(times), pa.string()), " times", "")
    return [_Part(rows, "duplicate_episode", "error", "episode_id", _flat(pc.fill_null(ids.take(rows), "")), text)]


@frozen(eq=False)
class _Pricing:
    """Prices any DRG column for the audited episodes as `money.price_episodes` does."""

    episodes: pa.Table  # canonical: hospital days and care type
    weights: WeightTable | None
    financing: Financing | None

    def price(self, drg: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """Points and reimbursement per episode, NaN where unpriced (money also without financing)."""
        n = len(self.episodes)
        if self.weights is None:
            return np.full(n, np.nan), np.full(n, np.nan)
        columns = {"drg": drg, "duration_days": self.episodes.column("duration_days")}
        if "care_type" in self.episodes.column_names:
            columns["care_type"] = self.episodes.column("care_type")
        financing = self.financing or Financing(price_per_point=0.0, activity_share=1.0)
        priced = price_episodes(pa.table(columns), self.weights, financing)

        def values(name: str) -> np.ndarray:
            return pc.fill_null(priced.column(name), np.nan).to_numpy(zero_copy_only=False).astype(np.float64)

        return values("points"), values("reimbursement") if self.financing else np.full(n, np.nan)


def _numbers_text(points: np.ndarray, money: np.ndarray) -> pa.Array:
    """`: 4.35 points, 97875 in money (regrouped minus reported)` per row, "" where no points."""
    rounded = pc.cast(pa.array(np.round(points, 3), mask=np.isnan(points)), pa.string())
    cash = pc.cast(pa.array(np.round(money), mask=np.isnan(money)), pa.string())
    cash_text = pc.fill_null(pc.binary_join_element_wise(", ", cash, " in money", ""), "")
    text = pc.binary_join_element_wise(": ", rounded, " points", cash_text, " (regrouped minus reported)", "")
    return pc.fill_null(text, "")


def _mismatch_findings(
    table: pa.Table, grouped: pa.Table, column: str, pricing: _Pricing, regrouped: tuple[np.ndarray, np.ndarray]
) -> list[_Part]:
    if column not in table.column_names:
        raise ValueError(f"reported DRG column {column!r} is not among {', '.join(table.column_names)}")
    reported = pc.utf8_trim_whitespace(pc.fill_null(pc.cast(table.column(column), pa.string()), ""))
    regrouped_drg = pc.fill_null(grouped.column("drg"), "")
    reported_key = drg_keys(reported)
    differs = pc.and_(pc.not_equal(reported_key, ""), pc.not_equal(reported_key, drg_keys(regrouped_drg)))
    rows = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
    if not len(rows):
        return []
    points, money = pricing.price(reported)
    delta_points = (regrouped[0] - points)[rows]
    delta_money = (regrouped[1] - money)[rows]
    taken = pa.array(rows)
    code = _flat(reported.take(taken))
    prefix = pc.binary_join_element_wise("reported DRG ", code, ", regrouped ", _flat(regrouped_drg.take(taken)), "")
    text = pc.binary_join_element_wise(prefix, _numbers_text(delta_points, delta_money), "")
    return [
        _Part(
            rows,
            "drg_mismatch",
            "error",
            column,
            code,
            text,
            pa.array(delta_points, mask=np.isnan(delta_points)),
            pa.array(delta_money, mask=np.isnan(delta_money)),
        )
    ]


def _amount_findings(
    table: pa.Table,
    grouped: pa.Table,
    column: str,
    pricing: _Pricing,
    regrouped: tuple[np.ndarray, np.ndarray],
    tolerance: float,
) -> list[_Part]:
    """The invoiced amount against the regrouped DRG's reimbursement."""
    if column not in table.column_names:
        raise ValueError(f"invoiced amount column {column!r} is not among {', '.join(table.column_names)}")
    if pricing.weights is None or pricing.financing is None:
        raise ValueError("comparing invoiced amounts needs weights and financing")
    invoiced = _amounts(table.column(column), column)
    money = regrouped[1]
    given = ~np.isnan(invoiced)
    unpriced = given & np.isnan(money)
    delta = money - invoiced
    rows = np.flatnonzero(unpriced | (given & (np.abs(np.nan_to_num(delta)) > tolerance)))
    if not len(rows):
        return []
    per_point = pricing.financing.price_per_point * pricing.financing.activity_share
    delta_points = delta[rows] / per_point if per_point > 0 else np.full(len(rows), np.nan)
    taken = pa.array(rows)
    drg = _flat(pc.fill_null(grouped.column("drg"), "").take(taken))
    amount = pc.cast(pa.array(invoiced[rows]), pa.string())
    price = pc.cast(pa.array(np.round(money[rows], 2), mask=np.isnan(money[rows])), pa.string())
    text = pc.if_else(
        pa.array(unpriced[rows]),
        pc.binary_join_element_wise(
            "regrouped DRG ", drg, " has no weight: invoiced ", amount, " cannot be checked", ""
        ),
        pc.binary_join_element_wise("invoiced ", amount, ", regrouped DRG ", drg, " is paid ", price, ""),
    )
    return [
        _Part(
            rows,
            "amount_mismatch",
            "error",
            column,
            amount,
            text,
            pa.array(delta_points, mask=np.isnan(delta_points)),
            pa.array(delta[rows], mask=np.isnan(delta[rows])),
        )
    ]


def _amounts(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """An amount column as numbers (NaN where blank); text may use a decimal comma and blanks."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        text = pc.replace_substring_regex(pc.utf8_trim_whitespace(column), r"[\s\x{00A0}]", "")
        text = pc.replace_substring(text, ",", ".")
        column = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"invoiced amount column {name!r}: {error}") from None
    return pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)
