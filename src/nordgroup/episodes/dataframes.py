"""Dataframes in: any object exporting the Arrow PyCapsule stream interface, read as pyarrow.

pandas ≥ 2.2, polars, DuckDB relations and pyarrow itself export `__arrow_c_stream__`; reading
through it alone means nordgroup imports none of them. Their string flavours (`large_string`,
`string_view`, large lists) become plain `string` and `list`, so that a dataframe groups exactly
as the equivalent pyarrow table does. Results stay Arrow (`pl.from_arrow`, `.to_pandas()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

__all__ = ["arrow_batches", "arrow_table"]


def arrow_table(data: Any) -> pa.Table:
    """A pyarrow table from a table, a record batch or any `__arrow_c_stream__` exporter."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    elif not isinstance(data, pa.Table):
        if not hasattr(data, "__arrow_c_stream__"):
            raise TypeError(
                f"episodes must be a pyarrow Table or RecordBatch, or a dataframe exporting the Arrow stream "
                f"interface (__arrow_c_stream__: pandas ≥ 2.2, polars, DuckDB); not {type(data).__name__}"
            )
        data = pa.RecordBatchReader.from_stream(data).read_all()
    schema = _plain_schema(data.schema)
    return data if schema == data.schema else data.cast(schema)


def arrow_batches(data: Any) -> Iterator[pa.Table | pa.RecordBatch]:
    """The batches of a stream exporter (a dataframe, a reader) one at a time, else of an iterable."""
    if isinstance(data, pa.Table):
        yield from data.to_batches()
    elif hasattr(data, "__arrow_c_stream__"):
        yield from pa.RecordBatchReader.from_stream(data)
    else:
        batches: Iterable = data
        yield from batches


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([field.with_type(_plain_type(field.type)) for field in schema])  # metadata (pandas') dropped


def _plain_type(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return pa.string()
    if pa.types.is_large_list(type_) or pa.types.is_list_view(type_) or pa.types.is_large_list_view(type_):
        return pa.list_(_plain_type(type_.value_type))
    if pa.types.is_list(type_):
        return pa.list_(_plain_type(type_.value_type))  # also names the child `item`, as ours are
    return type_
