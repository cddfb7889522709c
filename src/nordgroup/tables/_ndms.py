"""Reader of the NDMS CSV export, and the NDMS table layout shared with the Excel reader.

NDMS (the Nordic Casemix Centre's maintenance system) exports the Swedish, Finnish and Combined
releases as one folder of CSV files: `drg_logic.csv`, `dg_feat.csv`, `proc_feat.csv`,
`compl_name.csv`, `compl_excl.csv`, `drg_name.csv` and, optionally, `rtc.csv`. This module owns
that layout: which tables and columns are required, how one row of each table feeds the
`TableBuilder` (as functions of a dict row, so `_excel` reads workbook sheets through the very same
code), and the guess of country, year and release from the folder name and the `country` /
`nat_ver` columns. Values go to the builder raw: normalising them is its job.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nordgroup.exceptions import TableFormatError
from nordgroup.tables._build import TableBuilder, clean_value

__all__ = [
    "NDMS_TABLES",
    "ReleaseHints",
    "TableLayout",
    "feed_table",
    "read_ndms_folder",
    "release_from_name",
    "rule_values",
]

#: One table row, column name -> cell text.
Row = Mapping[str, str]
#: Feeds one row to the builder: (builder, row number, row, source naming the file or sheet).
RowAdder = Callable[[TableBuilder, int, Row, str], None]

_RULE_COLUMNS = (
    *("id", "drg_nat", "rtc", "icd", "mdc", "dgcat", "pdgprop", "compl", "or_proc", "procpro", "secpro"),
    *("dgprop1", "dgprop2", "dgprop3", "dgprop4", "agelim", "sex", "dur", "disch"),
)
# The national versions NDMS writes in `nat_ver`; a release name carries one of them.
_NATIONAL_VERSIONS = ("den", "est", "fin", "ice", "lat", "nor", "swe")
_COUNTRY_IN_NAME = re.compile(rf"(?<![a-z])({'|'.join(_NATIONAL_VERSIONS)})(?![a-z])", re.IGNORECASE)
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


@dataclass(frozen=True)
class TableLayout:
    """One table of a layout: where it is found, the columns it must have, how a row is fed."""

    name: str  # file stem or sheet name
    columns: tuple[str, ...]  # required columns, as this layout names them
    add_row: RowAdder
    # layout column -> the NDMS column the row adders read (for layouts that name columns otherwise)
    rename: Mapping[str, str] = field(default_factory=dict)
    required: bool = True


def rule_values(raw: Row) -> dict[str, object]:
    """The builder's rule values from a `drg_logic` row in NDMS column names."""
    return {
        "id": raw["id"],
        "drg": raw["drg_nat"],
        "rtc": raw["rtc"],
        "icd": raw["icd"],
        "mdc": raw["mdc"],
        "dgcat": raw["dgcat"],
        "pdgprop": raw["pdgprop"],
        "compl": raw["compl"],
        "or_proc": raw["or_proc"],
        "procpro": raw["procpro"],
        "secpro": raw["secpro"],
        "dgprop": [raw[f"dgprop{i}"] for i in range(1, 5)],
        "agelim": raw["agelim"],
        "sex": raw["sex"],
        "dur": raw["dur"],
        "disch": raw["disch"],
    }


def _add_rule(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    # NDMS files are not in first-match order by themselves: `ord` is, read as a number.
    order = clean_value(raw["ord"])
    if not order.isdigit():
        raise TableFormatError(f"ord {raw['ord']!r} is not a whole number", path=source, row=row, column="ord")
    builder.add_rule(row, order=int(order), values=rule_values(raw))


def _add_diagnosis(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_diagnosis_property(row, raw["code_nat"], raw["d_code_nat"], raw["vartype"], raw["varval"])


def _add_procedure(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_procedure_property(row, raw["code_nat"], raw["vartype"], raw["varval"])


def _add_category(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_complication_category(row, raw["compl"], raw["inclprop"])


def _add_exclusion(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    # In compl_excl the category is the `varval` of vartype COMPLEX.
    builder.add_exclusion(row, raw["varval"], raw["code_nat"], raw["d_code_nat"])


def _add_drg(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_drg(row, raw["drg_nat"], raw["mdc"], raw.get("drg_text_nat") or raw.get("drg_text_comb", ""))


def _add_return_code(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_return_code(raw["rtc_code"], raw.get("rtc_text_nat") or raw.get("rtc_text_comb", ""))


#: The NDMS tables in the order they are fed; `drg_logic` first, as it names the builder's source.
NDMS_TABLES: tuple[TableLayout, ...] = (
    TableLayout("drg_logic", ("ord", *_RULE_COLUMNS), _add_rule),
    TableLayout("dg_feat", ("code_nat", "d_code_nat", "vartype", "varval"), _add_diagnosis),
    TableLayout("proc_feat", ("code_nat", "vartype", "varval"), _add_procedure),
    TableLayout("compl_name", ("compl", "inclprop"), _add_category),
    TableLayout("compl_excl", ("varval", "code_nat", "d_code_nat"), _add_exclusion),
    TableLayout("drg_name", ("drg_nat", "mdc"), _add_drg),
    TableLayout("rtc", ("rtc_code",), _add_return_code, required=False),
)


class ReleaseHints:
    """What the rows say of the release: `country` cells and the national versions every row shares."""

    def __init__(self) -> None:
        self.countries: set[str] = set()
        self.shared_versions: set[str] | None = None

    def observe(self, raw: Row) -> None:
        country = raw.get("country", "").strip().lower()
        if country:
            self.countries.add(country)
        versions = {part.strip().lower() for part in raw.get("nat_ver", "").split("/") if part.strip()}
        if versions:
            self.shared_versions = versions if self.shared_versions is None else self.shared_versions & versions

    def country(self) -> str:
        """The one country the rows agree on, or "" (a Combined release names several)."""
        if len(self.countries) == 1:
            return next(iter(self.countries))
        # A national table holds only its own rows, so its version is in every row's nat_ver.
        if not self.countries and self.shared_versions and len(self.shared_versions) == 1:
            return next(iter(self.shared_versions))
        return ""


def release_from_name(name: str, hints: ReleaseHints) -> tuple[str, int | None, str]:
    """(country, year, release) from a name like `FIN2026PL0`, the rows filling in the country."""
    country = _COUNTRY_IN_NAME.search(name)
    year = _YEAR_IN_NAME.search(name)
    return (
        country.group(1).lower() if country else hints.country(),
        int(year.group(1)) if year else None,
        name,
    )


def feed_table(
    builder: TableBuilder,
    layout: TableLayout,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    source: str,
    hints: ReleaseHints,
) -> None:
    """Check the header of one table and feed its rows; rows are numbered as in a spreadsheet (header = 1)."""
    names = [name.strip().lower() for name in header]
    missing = [column for column in layout.columns if column not in names]
    if missing:
        raise TableFormatError(
            f"missing column(s) {', '.join(missing)}; the header has {', '.join(filter(None, names)) or 'nothing'}",
            path=source,
            row=1,
            column=missing[0],
        )
    renamed = [layout.rename.get(name, name) for name in names]
    for number, cells in enumerate(rows, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(renamed) and any(cell.strip() for cell in cells[len(renamed) :]):
            # Usually an unquoted comma in a text cell: every later cell of the row has shifted.
            raise TableFormatError(
                f"{len(cells)} cells but {len(renamed)} columns in the header",
                path=source,
                row=number,
                column=None,
            )
        # A short row (trailing empty cells dropped by the exporter) reads as empty cells.
        raw = dict.fromkeys(renamed, "") | dict(zip(renamed, cells, strict=False))
        hints.observe(raw)
        layout.add_row(builder, number, raw, source)


def read_ndms_folder(path: Path) -> tuple[TableBuilder, dict[str, bytes], tuple[str, int | None, str]]:
    """Read a folder of NDMS CSV files: the filled builder, the bytes of every file read, the release guess."""
    by_name = {child.name.lower(): child for child in path.iterdir() if child.is_file()}
    located: list[tuple[TableLayout, Path]] = []
    for layout in NDMS_TABLES:
        file = by_name.get(f"{layout.name}.csv")
        if file is not None:
            located.append((layout, file))
        elif layout.required:
            csv_files = sorted(name for name in by_name if name.endswith(".csv"))
            raise TableFormatError(
                f"required table file {layout.name}.csv is missing; the folder holds "
                f"{', '.join(csv_files) or 'no CSV files'}",
                path=str(path / f"{layout.name}.csv"),
            )
    # The builder raises only for drg_logic rows (a malformed agelim/dur), so it names that file.
    builder = TableBuilder(str(located[0][1]))
    hints = ReleaseHints()
    files: dict[str, bytes] = {}
    for layout, file in located:
        data = file.read_bytes()
        files[str(file)] = data
        header, rows = _parse_csv(data, str(file))
        feed_table(builder, layout, header, rows, str(file), hints)
    return builder, files, release_from_name(path.name, hints)


def _parse_csv(data: bytes, source: str) -> tuple[list[str], list[list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TableFormatError(f"not UTF-8 ({error.reason} at byte {error.start}, line {line})", path=source) from error
    records: list[list[str]] = []
    try:
        records.extend(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise TableFormatError(f"broken CSV: {error}", path=source, row=len(records) + 1) from error
    if not records:
        raise TableFormatError("empty file: no header row", path=source)
    return records[0], records[1:]
