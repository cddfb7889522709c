"""Money: weight tables, financing parameters, DRG points per episode, casemix summaries and KPP.

This module owns everything that turns a grouped episode into points and money, and cost data
(KPP, cost per patient) into a weight table. Every number comes from an input file or argument:
weight tables per release (`load_weights`), financing per year (`load_financing`). The formulas
are written out in `docs/money.md`; in short, per episode

    care type     = the input's `care_type` where filled, else outpatient for 0 days (`care_types`)
    base points   = the weight of the care type (outpatient, day surgery: when given) else weight
    extra days    = max(0, duration_days - trim_days)       (inpatient, DRG with a trim point)
    points        = base points + extra days x per_day_weight
    DRG value     = points x price_per_point
    reimbursement = DRG value x activity_share

All per-episode work is vectorised over Arrow/numpy columns; no Python loop runs per episode.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import field, frozen

from nordgroup._toml import tomllib
from nordgroup.codes import drg_key
from nordgroup.exceptions import NordgroupError, TableFormatError

if TYPE_CHECKING:
    from nordgroup.tables.model import DrgTables

__all__ = [
    "PRICE_COLUMNS",
    "CostWeightRules",
    "CostWeights",
    "DrgWeight",
    "Financing",
    "WeightTable",
    "as_weight_table",
    "care_types",
    "casemix",
    "cost_vs_reimbursement",
    "drg_keys",
    "group_and_price",
    "load_financing",
    "load_weights",
    "name_drgs",
    "parse_weight_columns",
    "price_episodes",
    "weights_from_costs",
    "with_drg_names",
]

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


def as_weight_table(weights: WeightTable | Mapping[str, float] | pa.Table | None) -> WeightTable | None:
    """A `WeightTable` from any form the library accepts: a table, `{drg: weight}`, Arrow columns."""
    if weights is None or isinstance(weights, WeightTable):
        return weights
    if isinstance(weights, pa.Table):
        return WeightTable.from_arrow(weights)
    return WeightTable(tuple(DrgWeight(str(drg).strip(), float(value)) for drg, value in weights.items()))


@frozen
class Financing:
    """How points become money in one year: price per point and the activity-based share.

    Norway's ISF pays `activity_share` (e.g. 0.5) of points x the national unit price; a Swedish
    region paying another for out-of-region care pays the whole, `activity_share = 1`.
    """

    price_per_point: float = field(converter=float)
    activity_share: float = field(converter=float)
    year: int | None = None
    currency: str = ""
    demo: bool = False
    description: str = ""
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.activity_share <= 1.0:
            raise NordgroupError(f"{self.source or 'financing'}: activity_share {self.activity_share} is not in 0..1")
        if self.price_per_point < 0:
            raise NordgroupError(f"{self.source or 'financing'}: price_per_point {self.price_per_point} is negative")

    @property
    def label(self) -> str:
        text = f"{self.price_per_point:,.0f} {self.currency}/point x share {self.activity_share:g}"
        if self.year:
            text += f" ({self.year})"
        return text + (" DEMO values" if self.demo else "")


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


def load_financing(path: str | os.PathLike[str]) -> Financing:
    """Read financing parameters from TOML: `price_per_point`, `activity_share` and `year` are
    required; `currency`, `description` and `demo = true` (for invented values) are optional."""
    path = Path(path)
    if not path.exists():
        raise TableFormatError("no such file", path=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise TableFormatError(f"not valid TOML: {error}", path=str(path)) from error
    return financing_from_mapping(data, source=str(path))


def financing_from_mapping(data: Mapping[str, object], *, source: str = "financing") -> Financing:
    """`Financing` from a parsed TOML table (also the inline `[financing]` of a scenario)."""
    for required in ("price_per_point", "activity_share", "year"):
        if required not in data:
            raise TableFormatError("missing key", path=source, column=required)
    known = {"price_per_point", "activity_share", "year", "currency", "demo", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TableFormatError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", path=source)
    return Financing(**financing_values(data, source=source), source=source)


def financing_values(data: Mapping[str, object], *, source: str) -> dict[str, Any]:
    """The financing values `data` gives, checked: numbers, a whole year, text (a scenario may give
    only some of them)."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("price_per_point", "activity_share"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TableFormatError(f"{value!r} is not a number", path=source, column=name)
            values[name] = float(value)
        elif name == "year":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TableFormatError(f"{value!r} is not a year", path=source, column=name)
            values[name] = value
        elif name == "demo":
            values[name] = bool(value)
        else:
            values[name] = str(value)
    return values


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
    from nordgroup.episodes import to_canonical

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


def _flat_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


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
