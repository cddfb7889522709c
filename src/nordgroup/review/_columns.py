"""Columnar pieces the audit modules share: dictionary indices of a column, repeated texts, and the
grouping keys (one or several unit columns, and a period read as is or derived from a date)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.exceptions import NordgroupError
from nordgroup.money.pricing import care_types

__all__ = ["PERIODS", "derive_period", "split_keys"]

#: The periods a date column can be cut into, and the label each gives (ISO weeks: `2017-W05`).
PERIODS = {"week": "%G-W%V", "month": "%Y-%m", "quarter": "", "year": "%Y"}


def unit_columns(unit_column: str | Sequence[str] | None) -> list[str]:
    """The grouping columns as a list: one name, several names, or a comma-separated text of names."""
    if unit_column is None:
        return []
    names = unit_column.split(",") if isinstance(unit_column, str) else list(unit_column)
    return [name.strip() for name in names if name.strip()]


def split_keys(
    table: pa.Table,
    unit_column: str | Sequence[str] | None,
    period_column: str | None,
    period: str | None = None,
) -> dict[str, pa.Array | pa.ChunkedArray]:
    """Text keys to group by: each unit column, then the period (`period` cuts a date column into
    weeks, months, quarters or years). Nulls become `(none)`; without any column, one key `all`."""
    keys: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in [*unit_columns(unit_column), *([period_column] if period_column else [])]:
        if name not in table.column_names:
            raise ValueError(f"column {name!r} is not among {', '.join(table.column_names)}")
        column = table.column(name)
        if name == period_column and period is not None:
            column = derive_period(column, period, name)
        keys[name] = pc.fill_null(pc.cast(column, pa.string()), "(none)")
    if not keys:
        keys["all"] = repeat_text("all", len(table))
    return keys


def derive_period(column: pa.ChunkedArray | pa.Array, period: str, name: str = "date") -> pa.Array:
    """A date column (date, timestamp, or ISO `YYYY-MM-DD` text) as week, month, quarter or year labels."""
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    dates = as_dates(column, name)
    if period == "quarter":
        return pc.binary_join_element_wise(
            pc.strftime(dates, format="%Y"), pc.cast(pc.quarter(dates), pa.string()), "-Q"
        )
    return pc.strftime(dates, format=PERIODS[period])


def as_dates(column: pa.ChunkedArray | pa.Array, name: str) -> pa.Array:
    """A date, timestamp or ISO `YYYY-MM-DD` text column as dates; a bad text names column and row."""
    dates = flat(column)
    if pa.types.is_string(dates.type) or pa.types.is_large_string(dates.type):
        text = pc.utf8_trim_whitespace(dates)
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        bad = np.flatnonzero(pc.and_(pc.is_null(parsed), pc.invert(pc.equal(text, ""))).to_numpy(zero_copy_only=False))
        if len(bad):
            raise NordgroupError(
                f"column {name!r}, row {bad[0] + 1}: {text[int(bad[0])].as_py()!r} is not a date YYYY-MM-DD "
                f"({len(bad)} such value(s))"
            )
        return pc.cast(parsed, pa.date32())
    if pa.types.is_timestamp(dates.type):
        return pc.cast(dates, pa.date32())
    if not pa.types.is_date(dates.type):
        raise NordgroupError(f"column {name!r} holds {dates.type}, not dates")
    return pc.cast(dates, pa.date32())


def distinct(values) -> tuple[np.ndarray, list]:
    """Dictionary indices (nulls and blanks map to the extra last entry) and the distinct values."""
    array = flat(values)
    encoded = pc.dictionary_encode(array)
    values_seen = encoded.dictionary.to_pylist()
    indices = pc.fill_null(encoded.indices, len(values_seen)).to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, values_seen


def cell_of(keys: dict[str, pa.Array | pa.ChunkedArray], n: int) -> np.ndarray:
    """One number per row naming its combination of keys (0 .. number of combinations - 1)."""
    cell = np.zeros(n, np.int64)
    span = 1
    for column in keys.values():
        codes = distinct(column)[0]
        size = int(codes.max(initial=0)) + 2
        if span * size >= 2**62:  # renumber densely first, so that many keys cannot overflow
            cell = np.unique(cell, return_inverse=True)[1].reshape(-1)
            span = int(cell.max(initial=0)) + 1
        cell, span = cell * size + codes, span * size
    return np.unique(cell, return_inverse=True)[1].reshape(-1)


def flat(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def repeat_text(text: str, size: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(size, np.int32)), pa.array([text])).cast(pa.string())


def list_offsets(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0])
    return offsets - offsets[0], values


def _principal_codes(offsets: np.ndarray, values: pa.Array) -> pa.Array:
    """The written principal diagnosis of each episode, trimmed and upper case ("" when none)."""
    counts = np.diff(offsets)
    if not len(values):
        return pa.array([""] * len(counts), pa.string())
    taken = values.take(pa.array(np.where(counts > 0, offsets[:-1], 0)))
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.fill_null(taken, "")))
    return pc.if_else(pa.array(counts > 0), text, "")


def _first_per_row(mask: np.ndarray, row_of: np.ndarray, n: int) -> np.ndarray:
    """Per row, the index of its first element where `mask` holds, else -1."""
    elements = np.flatnonzero(mask)
    rows, first = np.unique(row_of[elements], return_index=True)
    out = np.full(n, -1, np.int64)
    out[rows] = elements[first]
    return out


def _group_keys(
    table: pa.Table,
    unit_column: str | Sequence[str] | None,
    period_column: str | None,
    care_type: bool,
    period: str | None = None,
) -> dict:
    keys = split_keys(table, unit_column, period_column, period)
    if care_type:
        keys["care_type"] = care_types(table)
    return keys
