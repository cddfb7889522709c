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

Over 500 lines on purpose: each layout's reader and the schema it must reach are read together;
the byte-level parsing lives in `_text`, dataframes in `dataframes`.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nordgroup.episodes.dataframes import arrow_table
from nordgroup.exceptions import EpisodeFileError, EpisodeSchemaError

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "EPISODE_SCHEMA",
    "LAYOUTS",
    "PROBLEM_COLUMN",
    "ResultWriter",
    "episodes_from_records",
    "iter_episodes",
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
LAYOUTS = ("canonical", "wide", "nor-string")
#: Rows per batch when streaming: large enough for the kernel's threads, small enough to bound memory.
DEFAULT_BATCH_SIZE = 200_000
#: The column the text readers add: what made a line unreadable, and which line, or null.
PROBLEM_COLUMN = "line_problem"
_LIST_SEPARATOR = "|"  # how list columns are written in CSV, where Arrow lists cannot go
_IPC_SUFFIXES = (".arrow", ".feather", ".ipc")


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
    batch_size: int | None = None,
) -> pa.Table | pa.RecordBatchReader:
    """Read episodes in `layout` ("canonical", "wide" or "nor-string") into the canonical schema.

    Files are read by suffix: `.parquet` (or a directory of Parquet files), `.arrow`/`.feather`/
    `.ipc`, `.csv`, `.txt` (one Norwegian episode string per line); text may be gzipped.
    `id_column` names the column to use as `episode_id`. With `batch_size`, the result is a
    `pyarrow.RecordBatchReader` of at most that many rows per batch (see `iter_episodes`);
    without, one table. Either way memory while reading is about one batch.
    """
    source = arrow_table(source) if hasattr(source, "__arrow_c_stream__") else source  # pandas, polars, DuckDB
    if isinstance(source, pa.Table | pa.RecordBatch) and batch_size is None:
        table = pa.Table.from_batches([source]) if isinstance(source, pa.RecordBatch) else source
        return _canonical_batch(table, layout, id_column, "table")
    reader = iter_episodes(source, layout, id_column=id_column, batch_size=batch_size or DEFAULT_BATCH_SIZE)
    return reader if batch_size else reader.read_all()


def iter_episodes(
    source: str | os.PathLike[str] | pa.Table | pa.RecordBatch,
    layout: str = "canonical",
    *,
    id_column: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pa.RecordBatchReader:
    """Episodes as a stream of canonical batches of at most `batch_size` rows, read lazily: a file
    of any size goes through `Grouper.group_batches` in the memory of one batch.

    Every non-blank line of a text file is one row, in file order. A line that cannot be read
    (not UTF-8, a NUL byte, a quote left open, too few or too many fields, values after the 165
    fields of a Norwegian string) is a row all the same: its values are null where they could not
    be read, and the column `line_problem` says what and on which line (null on readable rows).
    A file that cannot be read at all raises `EpisodeFileError` naming file, line and column.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'canonical', 'wide' or 'nor-string', not {layout!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if isinstance(source, pa.Table | pa.RecordBatch):
        table = pa.Table.from_batches([source]) if isinstance(source, pa.RecordBatch) else source
        return _canonical_batch(table, layout, id_column, "table").to_reader(max_chunksize=batch_size)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    batches = (_canonical_batch(table, layout, id_column, str(path)) for table in _raw_tables(path, layout, batch_size))
    first = next(batches)  # every reader yields at least one batch, maybe empty, which fixes the schema
    return pa.RecordBatchReader.from_batches(
        first.schema, (batch for table in itertools.chain([first], batches) for batch in table.to_batches())
    )


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
            columns[field.name] = _parse_integers(pc.utf8_upper(column), field.type, letters=True)
        else:
            columns[field.name] = _cast(column, field, source)
    extra = [name for name in table.column_names if name not in EPISODE_SCHEMA.names]
    return pa.table({**columns, **{name: table.column(name) for name in extra}})


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a result table by suffix: `.parquet`, `.arrow`/`.feather`/`.ipc` or `.csv`."""
    with ResultWriter(path, table.schema) as writer:
        writer.write(table)


class ResultWriter:
    """Writes result batches to `path` one at a time (format by suffix), under a temporary name in
    the same directory that becomes `path` only when the `with` block ends without an exception:
    an interrupted run (Ctrl-C, an error) leaves no half-written file under the final name.

    >>> with ResultWriter("groups.parquet", schema) as writer:     # doctest: +SKIP
    ...     for result in grouper.group_batches(iter_episodes("cases.txt", "nor-string")):
    ...         writer.write(result)
    """

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (".parquet", ".csv", *_IPC_SUFFIXES):
            raise ValueError(f"{self.path}: unknown output format {self.suffix!r}; use .parquet, .arrow or .csv")
        self.partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self.schema = self._written_schema(schema)
        self._writer: pq.ParquetWriter | pa.ipc.RecordBatchFileWriter | pacsv.CSVWriter | None = None
        self._sink: pa.NativeFile | None = None

    def _written_schema(self, schema: pa.Schema) -> pa.Schema:
        if self.suffix == ".csv":  # lists as `|`-joined text, as `read_episodes` reads them back
            return pa.schema([(f.name, pa.string()) if pa.types.is_list(f.type) else f for f in schema])
        if self.suffix in _IPC_SUFFIXES:  # the IPC file format cannot change a dictionary between batches
            return pa.schema([(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema])
        return schema

    def __enter__(self) -> ResultWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.suffix == ".parquet":
            self._writer = pq.ParquetWriter(self.partial, self.schema)
        elif self.suffix == ".csv":
            self._writer = pacsv.CSVWriter(str(self.partial), self.schema)
        else:
            self._sink = pa.OSFile(str(self.partial), "wb")
            self._writer = pa.ipc.new_file(self._sink, self.schema)
        return self

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self.suffix == ".csv":
            for index, field in enumerate(table.schema):
                if pa.types.is_list(field.type):
                    table = table.set_column(index, field.name, _join_list(table.column(index)))
        assert self._writer is not None, "write inside the with block"
        self._writer.write_table(table.cast(self.schema) if table.schema != self.schema else table)

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        finally:
            if kind is None:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink(missing_ok=True)


def _canonical_batch(table: pa.Table, layout: str, id_column: str | None, source: str) -> pa.Table:
    """One batch of `layout` into the canonical schema."""
    if layout == "wide":
        table = _wide_to_canonical(table, id_column)
    elif layout not in LAYOUTS:
        raise ValueError(f"layout must be 'canonical', 'wide' or 'nor-string', not {layout!r}")
    elif id_column and layout == "canonical":
        table = table.rename_columns(["episode_id" if name == id_column else name for name in table.column_names])
    return to_canonical(table, source=source)


def _raw_tables(path: Path, layout: str, batch_size: int) -> Iterator[pa.Table]:
    """The file's rows as tables of at most `batch_size` rows, in the layout's own columns."""
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if layout == "nor-string":
        yield from _norwegian_tables(path, batch_size)
    elif path.is_dir() or suffix == ".parquet":
        import pyarrow.dataset as pads  # here only: importing it imports pandas when installed (0.4 s)

        scanner = pads.dataset(path, format="parquet").scanner(batch_size=batch_size)
        yield pa.Table.from_batches([], scanner.projected_schema)
        for batch in scanner.to_batches():
            if len(batch):
                yield pa.Table.from_batches([batch])
    elif suffix in _IPC_SUFFIXES:
        yield from _ipc_tables(path, batch_size)
    elif suffix in (".csv", ".csv.gz", ".gz", ".txt", ".txt.gz"):
        yield from _csv_tables(path, batch_size, delimiter=b",", quote=b'"', nulls=True)
    else:
        raise ValueError(f"{path}: unknown input format {suffix!r}; use .parquet, .arrow, .csv or .txt")


def _ipc_tables(path: Path, batch_size: int) -> Iterator[pa.Table]:
    with pa.memory_map(str(path)) as source:
        try:
            reader: pa.ipc.RecordBatchFileReader | pa.RecordBatchStreamReader = pa.ipc.open_file(source)
            batches: Iterator[pa.RecordBatch] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_stream(source)
            batches = iter(reader)
        yield pa.Table.from_batches([], reader.schema)
        for batch in batches:
            for start in range(0, len(batch), batch_size):
                yield pa.Table.from_batches([batch.slice(start, batch_size)])


def _split_list_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    filled = pc.fill_null(column, "")
    lists = pc.split_pattern(filled, _LIST_SEPARATOR)
    # "" splits into [""]; a list column with no codes must be empty, not hold one blank code
    return pc.if_else(pc.equal(filled, ""), pa.scalar([], pa.list_(pa.string())), lists)


def _join_list(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.binary_join(column, _LIST_SEPARATOR)


def _clean_discharge(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # cleaned once per distinct value, of which a file has a handful: a clean column (a canonical
    # batch, as the grouper gets it) comes back as it is
    text = pc.cast(column, pa.string())
    values = pc.unique(text)
    cleaned = pc.utf8_upper(pc.utf8_trim_whitespace(values))
    cleaned = pc.replace_substring_regex(cleaned, "^H$", "N")
    cleaned = pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)
    if cleaned.equals(values):
        return text
    return pc.take(cleaned, pc.index_in(text, values))


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


def _parse_integers(column: pa.ChunkedArray, type_: pa.DataType, *, letters: bool = False) -> pa.ChunkedArray:
    """Whole numbers from text; anything else (blank, `abc`, `x`) becomes null, never 0. A value
    out of the type's range is unknown too: a sex of `128` is no int8, not an error. `letters`:
    sex as the national letters M(ale), F(emale), K(vinne) as well."""
    from nordgroup.episodes._text import parse_integers

    text = pc.utf8_trim_whitespace(pc.cast(pc.fill_null(column, ""), pa.large_string()))
    limits = np.iinfo(type_.to_pandas_dtype())
    chunks = []
    for chunk in text.chunks if isinstance(text, pa.ChunkedArray) else [text]:
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
        values, valid = parse_integers(data, offsets, int(limits.min), int(limits.max), letters)
        chunks.append(pa.array(values.astype(type_.to_pandas_dtype()), type_, mask=~valid))
    return pa.chunked_array(chunks, type_)


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
    n, width = len(table), len(names)
    if not width:
        return pa.array([[]] * n, pa.list_(pa.string()))
    cells = pa.concat_arrays(
        [
            pc.utf8_trim_whitespace(pc.fill_null(pc.cast(table.column(name), pa.string()), "")).combine_chunks()
            for name in names
        ]
    )  # column after column; the take below puts them row after row
    row_major = cells.take(pa.array((np.arange(n)[:, None] + np.arange(width)[None, :] * n).ravel()))
    keep = pc.not_equal(row_major, "").to_numpy(zero_copy_only=False).reshape(n, width)
    if keep_first:
        keep[:, 0] |= keep[:, 1:].any(axis=1)  # an empty principal before secondaries stays, as "none"
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), row_major.filter(pa.array(keep.ravel())))


# --------------------------------------------------------------------------------------------
# Text files: every non-blank line one row, an unreadable line a row with its problem

_STRING_COLUMNS = ("DRGGrupperingsstreng", "case_string")
_LINES_CHECKED = 1000  # a plain file none of whose first lines is a comma-separated string is not one


def _csv_tables(
    path: Path, batch_size: int, *, delimiter: bytes, quote: bytes | None, nulls: bool
) -> Iterator[pa.Table]:
    """A delimited file with a header: its columns as text, one row per line."""
    header = _header(path, delimiter, quote)
    empty = True
    for rows, problems, numbers in _csv_rows(path, header, batch_size, delimiter=delimiter, quote=quote, nulls=nulls):
        empty = False
        yield rows.append_column(PROBLEM_COLUMN, _at_lines(problems, numbers))
    if empty:
        yield pa.table(
            {**{name: pa.array([], pa.string()) for name in header}, PROBLEM_COLUMN: pa.array([], pa.string())}
        )


def _csv_rows(
    path: Path, header: list[str], batch_size: int, *, delimiter: bytes, quote: bytes | None, nulls: bool
) -> Iterator[tuple[pa.Table, dict[int, str], np.ndarray]]:
    """Per batch of lines: the header's columns as text (null on unreadable lines), the problems
    of the unreadable lines by their index in the batch, and each line's number."""
    from nordgroup.episodes import _text

    parse = pacsv.ParseOptions(delimiter=delimiter.decode(), quote_char=quote.decode() if quote else False)
    # only an empty cell is null: a code written `NA` or `NULL` stays a code
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=nulls, null_values=[""]
    )
    read = pacsv.ReadOptions(column_names=header, use_threads=False)
    for lines in _text.read_lines(path, batch_size=batch_size, delimiter=delimiter, quote=quote, skip_header=True):
        readable = (lines.state == _text.READABLE) & (lines.fields == len(header))
        if readable.any():
            good = _text.gather_lines(lines.data, lines.starts[readable], lines.ends[readable])
            try:
                rows = pacsv.read_csv(
                    pa.BufferReader(good), read_options=read, parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as error:  # the line scanner lets through only lines Arrow parses
                raise EpisodeFileError(
                    f"unreadable ({error})", path=str(path), line=int(lines.numbers[readable][0])
                ) from error
            rows = rows.take(pa.array(np.cumsum(readable) - 1, mask=~readable))
        else:
            rows = pa.table({name: pa.nulls(len(lines), pa.string()) for name in header})
        problems = lines.problems()
        for row in np.flatnonzero(~readable).tolist():
            problems.setdefault(row, f"{lines.fields[row]} fields, the header has {len(header)}")
        yield rows, problems, lines.numbers


def _header(path: Path, delimiter: bytes, quote: bytes | None) -> list[str]:
    """The header's column names; a file that is not text, or whose header is one column holding
    another delimiter, cannot be read at all."""
    from nordgroup.episodes import _text

    head = _text.first_line(path)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EpisodeFileError("not UTF-8 text: is this an episode file?", path=str(path), line=1) from error
    if "\0" in text:
        raise EpisodeFileError("binary data, not text: is this an episode file?", path=str(path), line=1)
    names = next(csv.reader([text], delimiter=delimiter.decode(), quotechar=quote.decode() if quote else None))
    if not text.strip():
        raise EpisodeFileError("no header line", path=str(path), line=1)
    if len(names) == 1:
        other = next((d for d in (";", ",", "\t", "|") if d in text and d != delimiter.decode()), None)
        if other:
            raise EpisodeFileError(
                f"the header is one column {names[0][:60]!r}; the columns are separated by {other!r}, "
                f"not {delimiter.decode()!r}",
                path=str(path),
                line=1,
                column=1,
            )
    return names


def _norwegian_tables(path: Path, batch_size: int) -> Iterator[pa.Table]:
    """Norwegian episode strings: a `;`-separated file with the strings in `DRGGrupperingsstreng`
    (the official reference cases, `RegelNr` as the id) or `case_string`, other columns passed
    through; or a plain file of one string per line. Ids are row numbers otherwise."""
    from nordgroup.episodes import _text

    head = _text.first_line(path).decode("utf-8", errors="replace")
    names = next(csv.reader([head], delimiter=";")) if head.strip() else []
    string_column = next((name for name in _STRING_COLUMNS if name in names), None)
    rows_before = 0
    if string_column is None:
        batches = _text.read_lines(path, batch_size=batch_size, delimiter=b",", quote=None, skip_header=False)
        first_batches: list[_text.Lines] = []
        for lines in batches:  # the first lines tell a file of strings from something else
            first_batches.append(lines)
            if sum(map(len, first_batches)) >= _LINES_CHECKED:
                break
        _check_strings_are_readable(path, first_batches)
        for lines in itertools.chain(first_batches, batches):
            readable = lines.state == _text.READABLE
            columns, beyond = _text.split_episode_strings(
                lines.data, lines.starts, np.where(readable, lines.ends, lines.starts)
            )
            ids = _row_numbers(rows_before, len(lines))
            rows_before += len(lines)
            problems = _at_lines(_beyond(lines.problems(), beyond), lines.numbers)
            yield pa.table({"episode_id": ids, **columns, PROBLEM_COLUMN: problems})
        if rows_before == 0:
            columns, _ = _text.split_episode_strings(
                np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
            )
            yield pa.table(
                {"episode_id": pa.array([], pa.string()), **columns, PROBLEM_COLUMN: pa.array([], pa.string())}
            )
        return
    header = _header(path, b";", None)
    batches_of_rows = _csv_rows(path, header, batch_size, delimiter=b";", quote=None, nulls=False)
    no_rows: dict[int, str] = {}
    empty = pa.table({name: pa.array([], pa.string()) for name in header}), no_rows, np.zeros(0, np.int64)
    for rows, problems, numbers in itertools.chain(batches_of_rows, [empty]):
        if len(rows) == 0 and rows_before:
            return  # the empty batch only gives an empty file its schema
        columns, beyond = _text.split_episode_strings(*_spans(rows.column(string_column).combine_chunks()))
        ids = rows.column("RegelNr") if "RegelNr" in header else _row_numbers(rows_before, len(rows))
        rows_before += len(rows)
        passed = {name: rows.column(name) for name in header if name not in ("RegelNr", string_column)}
        problems = _at_lines(_beyond(problems, beyond), numbers)
        yield pa.table({"episode_id": ids, **columns, **passed, PROBLEM_COLUMN: problems})
        if len(rows) == 0:
            return


def _check_strings_are_readable(path: Path, head: list) -> None:
    """A plain file none of whose first lines is comma-separated text is not one of strings."""
    from nordgroup.episodes import _text

    n = sum(map(len, head))
    if not n:
        return
    state = np.concatenate([lines.state for lines in head])
    fields = np.concatenate([lines.fields for lines in head])
    readable = state == _text.READABLE
    line = int(head[0].numbers[0])
    if not readable.any():
        problem = head[0].problems()[0]  # every line is unreadable, the first one too
        raise EpisodeFileError(
            f"{problem}, as every line of the first {n:,}: is this an episode file?", path=str(path), line=line
        )
    if not (fields[readable] > 1).any():
        raise EpisodeFileError(
            f"no line of the first {n:,} has the comma-separated fields of an episode string "
            "(sex,age,discharge,duration,...)",
            path=str(path),
            line=line,
            column=1,
        )


def _spans(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string array's bytes and where each value starts and ends in them."""
    offsets = np.frombuffer(strings.buffers()[1], np.int32)[strings.offset : strings.offset + len(strings) + 1]
    data_buffer = strings.buffers()[2]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return data, offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)


def _row_numbers(rows_before: int, n: int) -> pa.Array:
    """The ids of rows without one: their 1-based row number in the file, as text."""
    return pc.cast(pa.array(np.arange(rows_before + 1, rows_before + n + 1)), pa.string())


def _beyond(problems: dict[int, str], beyond: np.ndarray) -> dict[int, str]:
    """The problems, and on a string with values after its 165 fields, that (they have no meaning)."""
    from nordgroup.episodes._text import STRING_FIELDS

    for row in np.flatnonzero(beyond).tolist():
        extra = f"{beyond[row]} values after the {STRING_FIELDS} fields of an episode string, not read"
        problems[row] = f"{problems[row]}; {extra}" if row in problems else extra
    return problems


def _at_lines(problems: dict[int, str], numbers: np.ndarray) -> pa.Array:
    """The `line_problem` column: each problem with its line number, null on the other lines."""
    rows = np.fromiter(problems, np.int64, len(problems))
    texts = pa.array([f"line {numbers[row]}: {problems[row]}" for row in rows.tolist()], pa.string())
    at = np.zeros(len(numbers), np.int64)
    at[rows] = np.arange(len(rows))
    missing = np.ones(len(numbers), np.bool_)
    missing[rows] = False
    return texts.take(pa.array(at, mask=missing))
