"""Reader of the NDMS CSV export, and the NDMS table layout shared with the Excel reader.

NDMS (the Nordic Casemix Centre's maintenance system) exports the Swedish, Finnish and Combined
releases as one folder of CSV files: `drg_logic.csv`, `dg_feat.csv`, `proc_feat.csv`,
`compl_name.csv`, `compl_excl.csv`, `drg_name.csv` and, optionally, `rtc.csv` and `readme.csv`.
This module owns that layout: which tables and columns are required, how one row of each table
feeds the `TableBuilder` (as functions of a dict row, so `_excel` reads workbook sheets through the
very same code), and the guess of country, year and release from the folder name, `readme` and the
`country` / `nat_ver` columns.

It also owns the choice a release may need (`Reading`): a *Combined* release (`drg_comb` in
`drg_logic` instead of `drg_nat`) holds the rows of every national version, each row naming its
versions in `nat_ver`, so one version must be chosen; and code tables may carry national codes
(`code_nat`), the common ICD-10+/NCSP+ codes (`code_plus`) or both. Values go to the builder raw:
normalising them is its job.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nordgroup.exceptions import TableFormatError
from nordgroup.tables._build import TableBuilder, clean_value

__all__ = [
    "CODE_SYSTEMS",
    "NDMS_TABLES",
    "ParsedTable",
    "Reading",
    "ReleaseHints",
    "TableLayout",
    "feed_release",
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
#: The code columns a code table may carry, by the name `load_tables(codes=...)` gives them.
CODE_SYSTEMS = {"national": ("code_nat", "d_code_nat"), "plus": ("code_plus", "d_code_plus")}
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


@dataclass(frozen=True)
class ParsedTable:
    """One table as read from its file or sheet, before any row is fed."""

    layout: TableLayout
    header: list[str]
    rows: list[list[str]]
    source: str  # the file, or `workbook!sheet`

    @property
    def names(self) -> list[str]:
        return [name.strip().lower() for name in self.header]


@dataclass(frozen=True)
class Reading:
    """How the rows of one release are read: whose rows, which code columns, which DRG column."""

    national_version: str | None = None  # keep only the rows whose `nat_ver` (or `country`) names it
    codes: str = "national"  # a key of CODE_SYSTEMS
    combined: bool = False  # the rules' DRG is `drg_comb`, not `drg_nat`

    def renamed(self) -> dict[str, str]:
        """Release column -> the NDMS column the row functions read (the chosen codes, the DRG column)."""
        swap: dict[str, str] = {}
        if self.codes == "plus":
            swap |= {"code_plus": "code_nat", "d_code_plus": "d_code_nat"}
            swap |= {"code_nat": "national_code", "d_code_nat": "national_dagger"}
        if self.combined:
            swap |= {"drg_comb": "drg_nat", "drg_nat": "national_drg"}
        return swap

    def required(self, layout: TableLayout) -> tuple[str, ...]:
        """The columns `layout` needs, as this release names them."""
        if layout.rename:  # the Norwegian sheet layouts: national codes, national DRGs only
            return layout.columns
        back = {ndms: own for own, ndms in self.renamed().items()}
        return tuple(back.get(column, column) for column in layout.columns)

    def keeps(self, raw: Row) -> bool:
        """Whether a row belongs to the chosen national version (every row does when none is chosen).

        A row without `nat_ver` or `country` cell (the Swedish tables sometimes drop the column)
        belongs to every version: dropping it would lose logic silently.
        """
        if self.national_version is None:
            return True
        versions = _versions(raw.get("nat_ver", "") or raw.get("country", ""))
        return not versions or self.national_version in versions


@functools.cache
def _versions(cell: str) -> frozenset[str]:
    """The versions a `nat_ver` cell names; a release writes a few dozen distinct cells on 100 000 rows."""
    return frozenset(part.strip().lower() for part in cell.split("/") if part.strip())


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


#: The optional key/value `readme` table (no header row): read for the release name and year only.
README = TableLayout("readme", (), lambda builder, row, raw, source: None, required=False)


class ReleaseHints:
    """What the rows say of the release: `country` cells and the national versions every row shares."""

    def __init__(self) -> None:
        self.countries: set[str] = set()
        self.shared_versions: frozenset[str] | None = None

    def observe(self, raw: Row) -> None:
        country = raw.get("country", "").strip().lower()
        if country:
            self.countries.add(country)
        versions = _versions(raw.get("nat_ver", ""))
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


def feed_table(builder: TableBuilder, table: ParsedTable, hints: ReleaseHints, reading: Reading = Reading()) -> None:
    """Check the header of one table and feed its rows of the chosen version; rows are numbered as in
    a spreadsheet (header = 1)."""
    layout, names, source = table.layout, table.names, table.source
    missing = [column for column in reading.required(layout) if column not in names]
    if missing:
        raise TableFormatError(
            f"missing column(s) {', '.join(missing)}; the header has {', '.join(filter(None, names)) or 'nothing'}",
            path=source,
            row=1,
            column=missing[0],
        )
    swap = {} if layout.rename else reading.renamed()
    renamed = [layout.rename.get(name, swap.get(name, name)) for name in names]
    for number, cells in enumerate(table.rows, start=2):
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
        if not reading.keeps(raw):
            continue
        hints.observe(raw)
        layout.add_row(builder, number, raw, source)


def feed_release(
    tables: Sequence[ParsedTable], national_version: str | None, codes: str | None
) -> tuple[TableBuilder, ReleaseHints, Reading]:
    """Decide how to read a release (national or Combined, whose rows, which codes) and feed every table.

    `tables` starts with `drg_logic`, which the builder names in its errors (it raises only for
    rules: a malformed agelim/dur). A Combined release needs `national_version`; `codes=None`
    reads the national codes where the code tables carry them, else the ICD-10+/NCSP+ codes.
    """
    rules = tables[0]
    combined = "drg_nat" not in rules.names and "drg_comb" in rules.names
    column = rules.names.index("nat_ver") if "nat_ver" in rules.names else None
    found = sorted(
        {v for row in rules.rows if column is not None and column < len(row) for v in _versions(row[column])}
    )
    if national_version is None and combined:
        raise TableFormatError(
            f"a Combined release (drg_comb, no drg_nat) holds the rules of several national versions: "
            f"choose one of {', '.join(found) or 'none (nat_ver is empty)'} "
            "(national_version=... in load_tables, --national-version on the command line)",
            path=rules.source,
            column="nat_ver",
        )
    if national_version is not None and "nat_ver" in rules.names and national_version not in found:
        raise TableFormatError(
            f"no rule belongs to national version {national_version!r}: nat_ver names {', '.join(found) or 'none'}",
            path=rules.source,
            column="nat_ver",
        )
    reading = Reading(national_version, _code_system(tables, codes), combined)
    builder = TableBuilder(rules.source)
    hints = ReleaseHints()
    for table in tables:
        feed_table(builder, table, hints, reading)
    return builder, hints, reading


def _code_system(tables: Sequence[ParsedTable], codes: str | None) -> str:
    """The code columns to read: `codes`, checked against what every code table carries."""
    code_tables = [table for table in tables if "code_nat" in (*table.layout.columns, *table.layout.rename.values())]
    lacking = {
        system: [
            table
            for table in code_tables
            # a Norwegian sheet (renamed onto the NDMS columns) holds national codes only
            if (system != "national" if table.layout.rename else column not in table.names)
        ]
        for system, (column, _) in CODE_SYSTEMS.items()
    }  # system -> the code tables without its column
    if codes is None:
        return "national" if not lacking["national"] or lacking["plus"] else "plus"
    if lacking[codes]:
        column, table = CODE_SYSTEMS[codes][0], lacking[codes][0]
        held = [system for system, tables_without in lacking.items() if not tables_without]
        raise TableFormatError(
            f"codes={codes!r} reads column {column}, which {table.layout.name} lacks"
            + (f"; the release holds codes={held[0]!r}" if held else ""),
            path=table.source,
            row=1,
            column=column,
        )
    return codes


def release_from_readme(table: ParsedTable | None) -> tuple[int | None, str]:
    """(year, release name) from an NDMS `readme` table (`Version:,2024` / `Name:,...` rows), or (None, "")."""
    if table is None:
        return None, ""
    values = {}
    for cells in [table.header, *table.rows]:
        if len(cells) >= 2:
            values[cells[0].strip().rstrip(":").lower()] = cells[1].strip()
    year = values.get("version", "")
    return (int(year) if year.isdigit() else None), values.get("name", "")


def read_ndms_folder(
    path: Path, national_version: str | None = None, codes: str | None = None
) -> tuple[TableBuilder, dict[str, bytes], tuple[str, int | None, str], Reading]:
    """Read a folder of NDMS CSV files: the filled builder, the bytes of every file read, the release
    guess (country, year, release) and how the rows were read."""
    by_name = {child.name.lower(): child for child in path.iterdir() if child.is_file()}
    files: dict[str, bytes] = {}

    def parse(file: Path, layout: TableLayout) -> ParsedTable:
        data = file.read_bytes()
        files[str(file)] = data
        header, rows = _parse_csv(data, str(file))
        return ParsedTable(layout, header, rows, str(file))

    located: list[ParsedTable] = []
    for layout in NDMS_TABLES:
        file = by_name.get(f"{layout.name}.csv")
        if file is not None:
            located.append(parse(file, layout))
        elif layout.required:
            csv_files = sorted(name for name in by_name if name.endswith(".csv"))
            raise TableFormatError(
                f"required table file {layout.name}.csv is missing; the folder holds "
                f"{', '.join(csv_files) or 'no CSV files'}",
                path=str(path / f"{layout.name}.csv"),
            )
    readme = by_name.get("readme.csv")
    year, name = release_from_readme(parse(readme, README) if readme else None)
    builder, hints, reading = feed_release(located, national_version, codes)
    return builder, files, release_guess(path.name, year, name, hints, reading), reading


def release_guess(
    source_name: str, year: int | None, name: str, hints: ReleaseHints, reading: Reading
) -> tuple[str, int | None, str]:
    """(country, year, release): `readme` first, then the file or folder name, then the rows."""
    country, name_year, release = release_from_name(name or source_name, hints)
    return reading.national_version or country, year if year is not None else name_year, release


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
