"""Weight tables: reading a published DRG weight list (CSV, Excel, Parquet) into a `WeightTable`,
and DRG names.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pyarrow as pa
from attrs import frozen

from nordgroup.codes import drg_key
from nordgroup.exceptions import TableFormatError

if TYPE_CHECKING:
    from nordgroup.tables.model import DrgTables


#: What each column of a weight table holds; `load_weights(columns=...)` maps a file's headers to these.
WEIGHT_COLUMNS = {
    "drg": "DRG code",
    "name": "DRG name",
    "weight": "points of an inpatient episode",
    "trim_days": "trim point in days",
    "per_day_weight": "points per day above the trim point",
    "weight_outpatient": "points of an outpatient episode",
    "weight_day_surgery": "points of a day-surgery episode",
}


# Headers accepted in weight-table files (lower case, blanks collapsed -> canonical name): ours, the
# Norwegian ISF weight list's and the Swedish national weight list's (docs/money.md, "Weight lists").
_WEIGHT_COLUMN_NAMES = {
    **{name: name for name in WEIGHT_COLUMNS},
    "drg_nat": "drg",
    "drg-kode": "drg",
    "drg-kod": "drg",
    "drg_text": "name",
    "drg_text_nat": "name",
    "drg-navn": "name",
    "navn": "name",
    "beskrivelse": "name",
    "benämning": "name",
    "drg-benämning": "name",
    "weight_inpatient": "weight",
    "cost_weight": "weight",
    "vekt": "weight",
    "kostnadsvekt": "weight",
    "vikt": "weight",
    "vikt sluten vård": "weight",
    "vikt slutenvård": "weight",
    "trim_point": "trim_days",
    "trimpunkt": "trim_days",
    "trimpunkt (dager)": "trim_days",
    "trimpunkt (dagar)": "trim_days",
    "trimpunkt sluten vård": "trim_days",
    "weight_per_day": "per_day_weight",
    "vekt per liggedag utover trimpunkt": "per_day_weight",
    "vekt per dag over trimpunkt": "per_day_weight",
    "dagvekt": "per_day_weight",
    "vikt per vårddag utöver trimpunkt": "per_day_weight",
    "ytterfallsvikt per dag": "per_day_weight",
    "vekt poliklinisk": "weight_outpatient",
    "poliklinisk vekt": "weight_outpatient",
    "vikt öppen vård": "weight_outpatient",
    "vikt öppenvård": "weight_outpatient",
    "vekt dagkirurgi": "weight_day_surgery",
    "dagkirurgisk vekt": "weight_day_surgery",
    "vikt dagkirurgi": "weight_day_surgery",
}


_HEADER_SEARCH_ROWS = 30  # published lists put a title and notes above the header row


_BLANK_VALUES = ("", "-", "–", "—")  # published lists write "no trim point" as a dash


@frozen
class DrgWeight:
    """One row of a weight table. `trim_days` None: no long-stay supplement for this DRG;
    `weight_outpatient` / `weight_day_surgery` None: the inpatient weight applies."""

    drg: str
    weight: float
    trim_days: int | None = None
    per_day_weight: float = 0.0
    weight_outpatient: float | None = None
    weight_day_surgery: float | None = None
    name: str = ""


@frozen(eq=False)
class WeightTable:
    """The DRG weights of one release: points per DRG, trim points and per-day weights.

    `demo` marks invented values (the file name says `demo`): reports print it next to every figure.
    DRGs are matched to grouper output by `drg_keys`, so `001` in a weight file prices DRG `1`.
    """

    rows: tuple[DrgWeight, ...]
    source: str = "table"
    demo: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"<WeightTable {self.label}: {len(self.rows)} DRGs>"

    @property
    def label(self) -> str:
        name = Path(self.source).name if self.source else "weights"
        return f"{name} (DEMO values)" if self.demo else name

    def to_arrow(self) -> pa.Table:
        """The table as Arrow, in the column layout `load_weights` reads back (`WEIGHT_COLUMNS`)."""
        types = {"drg": pa.string(), "name": pa.string(), "trim_days": pa.int32()}
        return pa.table(
            {
                name: pa.array([getattr(row, name) for row in self.rows], types.get(name, pa.float64()))
                for name in WEIGHT_COLUMNS
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table, *, source: str = "table", demo: bool = False) -> WeightTable:
        """A weight table from Arrow columns named as `WEIGHT_COLUMNS` (`drg` and `weight` required)."""
        missing = [name for name in ("drg", "weight") if name not in table.column_names]
        if missing:
            raise ValueError(
                f"weight table lacks column(s) {', '.join(missing)}; it has {', '.join(table.column_names)}"
            )
        given = {name: table.column(name).to_pylist() for name in WEIGHT_COLUMNS if name in table.column_names}
        rows = []
        for index, drg in enumerate(given["drg"]):
            values = {name: column[index] for name, column in given.items()}
            if not drg or values["weight"] is None:
                continue
            rows.append(
                DrgWeight(
                    drg=str(drg).strip(),
                    weight=float(values["weight"]),
                    trim_days=None if values.get("trim_days") is None else int(values["trim_days"]),
                    per_day_weight=float(values.get("per_day_weight") or 0.0),
                    weight_outpatient=values.get("weight_outpatient"),
                    weight_day_surgery=values.get("weight_day_surgery"),
                    name=str(values.get("name") or ""),
                )
            )
        return cls(tuple(rows), source=source, demo=demo)

    def names(self) -> dict[str, str]:
        """DRG names the list carries, by `drg_key` (empty when the list has none)."""
        return {drg_key(row.drg): row.name for row in self.rows if row.name}

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as CSV that `load_weights` reads back."""
        import pyarrow.csv as pacsv

        path = Path(path)
        pacsv.write_csv(self.to_arrow(), path)
        return path


def name_drgs(tables: DrgTables, weights: WeightTable) -> DrgTables:
    """`tables` with the DRG names of a published weight list where the tables have none (the
    Norwegian JSON releases carry no DRG names; the ISF list does). Names the tables have stay."""
    names = weights.names()
    drgs = {
        drg: info if info.name or drg_key(drg) not in names else attrs.evolve(info, name=names[drg_key(drg)])
        for drg, info in tables.drgs.items()
    }
    return attrs.evolve(tables, drgs=drgs)


def as_weight_table(weights: WeightTable | Mapping[str, float] | pa.Table | None) -> WeightTable | None:
    """A `WeightTable` from any form the library accepts: a table, `{drg: weight}`, Arrow columns."""
    if weights is None or isinstance(weights, WeightTable):
        return weights
    if isinstance(weights, pa.Table):
        return WeightTable.from_arrow(weights)
    return WeightTable(tuple(DrgWeight(str(drg).strip(), float(value)) for drg, value in weights.items()))


def load_weights(
    path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None, demo: bool | None = None
) -> WeightTable:
    """Read a weight table from CSV (`,` or `;`, decimal point or comma) or Excel (first sheet with a header).

    The header row is the first of the first rows that names a DRG and a weight column, so the title
    and notes above a published list's header are skipped. Headers are read in any case: ours
    (`WEIGHT_COLUMNS`: `drg` and `weight` required; `name`, `trim_days`, `per_day_weight`,
    `weight_outpatient`, `weight_day_surgery` optional), the Norwegian ISF list's (`DRG`, `Navn`,
    `Vekt`, `Trimpunkt`, ...) and the Swedish national list's (`Vikt sluten vård`, `Vikt öppen vård`,
    `Vikt dagkirurgi`, ...). `columns` maps our names to other headers (`{"weight": "Vekt 2017"}`).
    Blank or a dash: no value. Other columns are ignored. Errors name the file, the row and the column.
    `demo` marks invented values (default: the file name says `demo`).
    """
    path = Path(path)
    if not path.exists():
        raise TableFormatError("no such file", path=str(path))
    wanted = _column_mapping(columns, path)
    records, row_number, positions = _find_header(_read_rows(path), wanted, path)
    header = {name: str(records[row_number - 1][index]).strip() for name, index in positions.items()}
    rows: list[DrgWeight] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records[row_number:], start=row_number + 1):
        cells = {name: _cell(record, index) for name, index in positions.items()}
        if not any(cells.values()):
            continue
        drg = cells["drg"].replace(" ", "").upper()
        if not drg:
            raise TableFormatError("empty DRG code", path=str(path), row=number, column=header["drg"])
        key = drg_key(drg)
        if key in seen:
            raise TableFormatError(
                f"DRG {drg} again (first on row {seen[key]})", path=str(path), row=number, column=header["drg"]
            )
        seen[key] = number

        numbers = {
            name: _number(cells.get(name, ""), path, number, header.get(name, name), whole=name == "trim_days")
            for name in WEIGHT_COLUMNS
            if name not in ("drg", "name")
        }
        weight, trim = numbers["weight"], numbers["trim_days"]
        if weight is None:
            raise TableFormatError("empty value", path=str(path), row=number, column=header["weight"])
        rows.append(
            DrgWeight(
                drg=drg,
                weight=weight,
                trim_days=None if trim is None else int(trim),
                per_day_weight=numbers["per_day_weight"] or 0.0,
                weight_outpatient=numbers["weight_outpatient"],
                weight_day_surgery=numbers["weight_day_surgery"],
                name=cells.get("name", ""),
            )
        )
    return WeightTable(tuple(rows), source=str(path), demo="demo" in path.name.lower() if demo is None else demo)


def parse_weight_columns(text: str) -> dict[str, str]:
    """`drg=DRG,weight=Vekt` (the CLI's `--weights-columns`) as `{"drg": "DRG", "weight": "Vekt"}`."""
    mapping = {}
    for part in (part.strip() for part in text.split(",")):
        name, equals, header = part.partition("=")
        if not equals or not name.strip() or not header.strip():
            raise ValueError(f"{part!r} is not NAME=HEADER (e.g. weight=Vekt)")
        mapping[name.strip()] = header.strip()
    return mapping


def _header_key(text: object) -> str:
    return " ".join(str(text).split()).lower()


def _column_mapping(columns: Mapping[str, str] | None, path: Path) -> dict[str, str]:
    """Header key -> our column name: the known headers, with `columns` taking precedence."""
    if not columns:
        return dict(_WEIGHT_COLUMN_NAMES)
    unknown = sorted(set(columns) - set(WEIGHT_COLUMNS))
    if unknown:
        raise TableFormatError(
            f"unknown column name(s) {', '.join(unknown)} in the mapping; known: {', '.join(WEIGHT_COLUMNS)}",
            path=str(path),
        )
    mapped = {_header_key(header): name for name, header in columns.items()}
    # a header the mapping gives to one column must not also be read, by its known name, as another
    known = {key: name for key, name in _WEIGHT_COLUMN_NAMES.items() if name not in columns}
    return {**known, **mapped}


def _find_header(
    records: Sequence[Sequence[object]], wanted: Mapping[str, str], path: Path
) -> tuple[Sequence[Sequence[object]], int, dict[str, int]]:
    """The records, the 1-based number of the header row and our column name -> position."""
    if not records:
        raise TableFormatError("empty file: a weight table needs a header row", path=str(path))
    for number, record in enumerate(records[:_HEADER_SEARCH_ROWS], start=1):
        positions: dict[str, int] = {}
        for index, cell in enumerate(record):
            name = wanted.get(_header_key(cell)) if cell is not None else None
            if name is None:
                continue
            if name in positions:
                raise TableFormatError(f"two columns mean {name!r}", path=str(path), row=number, column=str(cell))
            positions[name] = index
        if "drg" in positions and "weight" in positions:
            return records, number, positions
    header = [str(cell).strip() for cell in records[0] if cell is not None and str(cell).strip()]
    found = {name for record in records[:_HEADER_SEARCH_ROWS] for name in map(wanted.get, map(_header_key, record))}
    missing = "weight" if "drg" in found else "drg"
    raise TableFormatError(
        f"missing column: no row names both a DRG and a weight column; the first row has "
        f"{', '.join(header) or 'nothing'} (map other headers with columns=, CLI --weights-columns)",
        path=str(path),
        row=1,
        column=missing,
    )


def _number(text: str, path: Path, row: int, column: str, *, whole: bool = False) -> float | None:
    """A weight-table cell as a number >= 0 (decimal comma, blanks between thousands accepted);
    blank or a dash is None."""
    text = text.replace("\u00a0", "").replace(" ", "")
    if text in _BLANK_VALUES:
        return None
    text = text.replace(".", "").replace(",", ".") if "," in text and "." in text else text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise TableFormatError(f"{text!r} is not a number", path=str(path), row=row, column=column) from None
    if not math.isfinite(value) or value < 0:
        raise TableFormatError(f"{text!r} must be a finite number >= 0", path=str(path), row=row, column=column)
    if whole and not value.is_integer():
        raise TableFormatError(f"{text!r} is not a whole number of days", path=str(path), row=row, column=column)
    return value


def _cell(record: Sequence[object], index: int) -> str:
    if index >= len(record) or record[index] is None:
        return ""
    value = record[index]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_rows(path: Path) -> Sequence[Sequence[object]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
        try:
            from python_calamine import CalamineWorkbook
        except ImportError as error:
            raise ImportError(
                "reading Excel weight tables needs python-calamine: pip install nordgroup[excel]", name=error.name
            ) from error
        try:
            workbook = CalamineWorkbook.from_path(str(path))
            return workbook.get_sheet_by_index(0).to_python()
        except Exception as error:  # calamine raises its own error types, one per container format
            raise TableFormatError(f"not a readable workbook: {error}", path=str(path)) from error
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # lists saved from Excel on Windows (Vekt, Vikt sluten vård, Benämning) come in cp1252
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise TableFormatError("neither UTF-8 nor Windows-1252 text", path=str(path)) from None
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return list(csv.reader(text.splitlines(), delimiter=delimiter))
