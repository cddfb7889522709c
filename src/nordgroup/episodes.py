"""Episodes as Arrow: the canonical schema and a reader for every supported layout.

The canonical layout (one row per episode; any further columns are passed through untouched):

| column | type | meaning |
|---|---|---|
| `episode_id` | any | the caller's identifier; comes back as the first result column |
| `sex` | int8 | 1 male, 2 female, null unknown |
| `age_days` | int32 | age in days at admission; null unknown |
| `duration_days` | int32 | hospital days (0 for outpatient contacts); null unknown |
| `discharge` | string | `E` died, `N` alive (`H`, home, is read as `N`), `R` transferred; null unknown |
| `diagnoses` | list<string> | principal diagnosis first; an asterisk/dagger pair is one element |
| `procedures` | list<string> | the first is "the first procedure" of the `secpro` rule |

A pair is written `E830 F028` (dagger first) or with marks in any order (`F02.8*E83.0†`); an
empty first element means "no principal diagnosis".
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nordgroup._dataframes import arrow_table
from nordgroup.exceptions import EpisodeSchemaError

__all__ = [
    "CANONICAL_COLUMNS",
    "EPISODE_SCHEMA",
    "episodes_from_records",
    "read_episodes",
    "to_canonical",
    "write_table",
]

EPISODE_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("sex", pa.int8()),
        ("age_days", pa.int32()),
        ("duration_days", pa.int32()),
        ("discharge", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
    ]
)
CANONICAL_COLUMNS = tuple(EPISODE_SCHEMA.names)
_LIST_SEPARATOR = "|"  # how list columns are written in CSV, where Arrow lists cannot go
_NOR_FIELDS = 165  # sex, age, discharge, duration, unused, 30 diagnosis pairs, 100 procedures
_NOR_PROCEDURES = slice(65, 165)


def episodes_from_records(records: list[dict]) -> pa.Table:
    """A canonical table from Python dicts: handy in notebooks and tests."""
    columns = {name: [record.get(name) for record in records] for name in CANONICAL_COLUMNS}
    extra = sorted({key for record in records for key in record} - set(CANONICAL_COLUMNS))
    table = pa.table({name: pa.array(columns[name], type=EPISODE_SCHEMA.field(name).type) for name in columns})
    for name in extra:
        table = table.append_column(name, pa.array([record.get(name) for record in records]))
    return table


def read_episodes(
    source: str | os.PathLike[str] | pa.Table | pa.RecordBatch,
    layout: str = "canonical",
    *,
    id_column: str | None = None,
) -> pa.Table:
    """Read episodes in `layout` ("canonical", "wide" or "nor-string") into the canonical schema.

    Files are read by suffix: `.parquet`, `.arrow`/`.feather`/`.ipc`, `.csv`, `.txt` (one
    Norwegian episode string per line). `id_column` names the column to use as `episode_id`.
    """
    source = arrow_table(source) if hasattr(source, "__arrow_c_stream__") else source  # pandas, polars, DuckDB
    if layout == "nor-string":
        return _read_norwegian_strings(Path(source))
    table = source if isinstance(source, pa.Table) else _read_table(Path(source))
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if layout == "wide":
        table = _wide_to_canonical(table, id_column)
    elif layout != "canonical":
        raise ValueError(f"layout must be 'canonical', 'wide' or 'nor-string', not {layout!r}")
    elif id_column:
        table = table.rename_columns(["episode_id" if name == id_column else name for name in table.column_names])
    return to_canonical(table, source=str(source) if not isinstance(source, pa.Table | pa.RecordBatch) else "table")


def to_canonical(table: pa.Table, source: str = "table") -> pa.Table:
    """Check the canonical columns and cast them to the canonical types; extra columns stay."""
    missing = [name for name in ("episode_id", "diagnoses") if name not in table.column_names]
    if missing:
        raise EpisodeSchemaError.missing_columns(missing, table.column_names, source)
    columns = {}
    for field in EPISODE_SCHEMA:
        if field.name not in table.column_names:
            columns[field.name] = pa.nulls(len(table), field.type)
            continue
        column = table.column(field.name)
        if field.name == "episode_id":
            columns[field.name] = column
        elif pa.types.is_list(field.type) and (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        ):
            columns[field.name] = _split_list_text(column)
        elif field.name == "discharge":
            columns[field.name] = _clean_discharge(column)
        elif field.name == "sex" and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            # national letters: M(ale), F(emale), K(vinne); anything else is unknown
            letters = pc.utf8_upper(pc.utf8_trim_whitespace(column))
            digits = pc.replace_substring_regex(pc.replace_substring_regex(letters, "^M$", "1"), "^[FK]$", "2")
            columns[field.name] = _parse_integers(digits, field.type)
        else:
            columns[field.name] = _cast(column, field, source)
    extra = [name for name in table.column_names if name not in EPISODE_SCHEMA.names]
    return pa.table({**columns, **{name: table.column(name) for name in extra}})


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a result table by suffix: `.parquet`, `.arrow`/`.feather`/`.ipc` or `.csv`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix in (".arrow", ".feather", ".ipc"):
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    elif suffix == ".csv":
        flat = table
        for index, field in enumerate(table.schema):
            if pa.types.is_list(field.type):
                flat = flat.set_column(index, field.name, _join_list(table.column(index)))
        pacsv.write_csv(flat, path)
    else:
        raise ValueError(f"{path}: unknown output format {suffix!r}; use .parquet, .arrow or .csv")


def _read_table(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix in (".arrow", ".feather", ".ipc"):
        with pa.memory_map(str(path)) as source:
            try:
                return pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_stream(source).read_all()
    if suffix in (".csv", ".gz"):
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    raise ValueError(f"{path}: unknown input format {suffix!r}; use .parquet, .arrow, .csv or .txt")


def _split_list_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    filled = pc.fill_null(column, "")
    lists = pc.split_pattern(filled, _LIST_SEPARATOR)
    # "" splits into [""]; a list column with no codes must be empty, not hold one blank code
    return pc.if_else(pc.equal(filled, ""), pa.scalar([], pa.list_(pa.string())), lists)


def _join_list(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.binary_join(column, _LIST_SEPARATOR)


def _clean_discharge(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(column, pa.string())))
    text = pc.replace_substring_regex(text, "^H$", "N")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _cast(column: pa.ChunkedArray, field: pa.Field, source: str) -> pa.ChunkedArray:
    if column.type == field.type:
        return column
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _parse_integers(column, field.type)
    try:
        return pc.cast(column, field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise EpisodeSchemaError(
            f"{source}: column {field.name!r} of type {column.type} is not {field.type}: {error}"
        ) from error


def _parse_integers(column: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    """Whole numbers from text; anything else (blank, `abc`, `x`) becomes null, never 0."""
    text = pc.utf8_trim_whitespace(pc.fill_null(column, ""))
    valid = pc.match_substring_regex(text, r"^-?\d{1,9}$")
    numbers = pc.cast(pc.if_else(valid, text, "0"), pa.int64())
    return pc.cast(pc.if_else(valid, numbers, pa.scalar(None, pa.int64())), type_)


def _wide_to_canonical(table: pa.Table, id_column: str | None) -> pa.Table:
    """`dg1..dgN`, `proc1..procN` columns (as registries export) into list columns."""

    def numbered(prefixes: tuple[str, ...]) -> list[str]:
        pattern = re.compile(rf"^(?:{'|'.join(prefixes)})(\d+)$", re.IGNORECASE)
        found = [(int(m.group(1)), name) for name in table.column_names if (m := pattern.match(name))]
        return [name for _, name in sorted(found)]

    diagnosis_columns = numbered(("dg", "diag", "diagnosis"))
    procedure_columns = numbered(("proc", "procedure", "op"))
    if not diagnosis_columns:
        raise EpisodeSchemaError(f"wide layout: no dg1..dgN columns among {', '.join(table.column_names)}")
    rename = {id_column: "episode_id"} if id_column else {}
    kept = [name for name in table.column_names if name not in diagnosis_columns + procedure_columns]
    out = {rename.get(name, name): table.column(name) for name in kept}
    out["diagnoses"] = _columns_to_list(table, diagnosis_columns, keep_first=True)
    out["procedures"] = _columns_to_list(table, procedure_columns, keep_first=False)
    return pa.table(out)


def _columns_to_list(table: pa.Table, names: list[str], *, keep_first: bool) -> pa.Array:
    """Non-blank cells of `names`, row by row, as a list column (the first cell kept when asked)."""
    n = len(table)
    if not names:
        return pa.array([[]] * n, pa.list_(pa.string()))
    cells = np.column_stack(
        [pc.fill_null(pc.cast(table.column(name), pa.string()), "").to_numpy(zero_copy_only=False) for name in names]
    ).astype(object)
    stripped = np.char.strip(cells.astype(str))
    keep = stripped != ""
    if keep_first:
        keep[:, 0] |= keep[:, 1:].any(axis=1)  # an empty principal before secondaries stays, as "none"
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(stripped[keep], pa.string()))


_STRING_COLUMNS = ("DRGGrupperingsstreng", "case_string")


def _read_norwegian_strings(path: Path) -> pa.Table:
    """Norwegian episode strings: a `;`-separated file with the strings in `DRGGrupperingsstreng`
    (the official reference cases, `RegelNr` as the id) or `case_string`, other columns passed
    through; or a plain file of one string per line (gzip allowed). Ids are row numbers otherwise."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    head = raw[:4096].decode("utf-8-sig", errors="replace")
    header = _header(head) if head.strip() else []
    string_column = next((name for name in _STRING_COLUMNS if name in header), None)
    if string_column:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            parse_options=pacsv.ParseOptions(delimiter=";", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )
        strings = table.column(string_column)
        if "RegelNr" in header:
            ids = table.column("RegelNr")
        else:
            ids = pa.chunked_array([pa.array(np.arange(1, len(table) + 1).astype(str))])
        passed = {name: table.column(name) for name in table.column_names if name not in ("RegelNr", string_column)}
    else:
        lines = [line for line in raw.decode("utf-8-sig").splitlines() if line.strip()]
        strings = pa.chunked_array([pa.array(lines, pa.string())])
        ids = pa.chunked_array([pa.array([str(i) for i in range(1, len(lines) + 1)], pa.string())])
        passed = {}
    return to_canonical(pa.table({"episode_id": ids, **_parse_norwegian_strings(strings), **passed}), str(path))


def _header(head: str) -> list[str]:
    return next(csv.reader([head.splitlines()[0]], delimiter=";"))


def _parse_norwegian_strings(strings: pa.ChunkedArray) -> dict[str, pa.Array]:
    """Split `sex,age,discharge,duration,,dg pairs...,procedures...` strings column-wise."""
    n = len(strings)
    fields = pc.split_pattern(pc.fill_null(strings.combine_chunks(), ""), ",")
    lengths = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
    # Pad every row to the full width so that field k of row i sits at i * width + k.
    width = max(_NOR_FIELDS, int(lengths.max()) if n else 0)
    values = fields.flatten().to_numpy(zero_copy_only=False).astype(object)
    grid = np.full((n, width), "", dtype=object)
    starts = fields.offsets.to_numpy()[:-1]
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(values)) - np.repeat(starts - starts[0], lengths) if n else np.array([], dtype=int)
    grid[rows, cols] = values
    grid = np.char.strip(grid.astype(str))

    first, second = grid[:, 5:65:2], grid[:, 6:65:2]
    written = np.char.strip(np.char.add(np.char.add(first, " "), second))
    has_code = written != ""
    has_code[:, 0] |= has_code[:, 1:].any(axis=1)
    diagnoses = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(has_code.sum(axis=1))]).astype(np.int32)),
        pa.array(written[has_code], pa.string()),
    )
    procedure_grid = grid[:, _NOR_PROCEDURES]
    has_procedure = procedure_grid != ""
    procedures = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(has_procedure.sum(axis=1))]).astype(np.int32)),
        pa.array(procedure_grid[has_procedure], pa.string()),
    )
    return {
        "sex": pa.array(grid[:, 0], pa.string()),
        "age_days": pa.array(grid[:, 1], pa.string()),
        "discharge": pa.array(grid[:, 2], pa.string()),
        "duration_days": pa.array(grid[:, 3], pa.string()),
        "diagnoses": diagnoses,
        "procedures": procedures,
    }
