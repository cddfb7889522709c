"""Reader of a definition-table workbook (.xlsx, .xlsm, .xls, .ods): one sheet per table.

A sheet is named after the NDMS table (`drg_logic`, `dg_feat`, ... as the CSV files without
`.csv`) and has the NDMS columns, or after the Norwegian DefinitionData table (`drglogic`, `dg`,
`proc`, `complcat`, `complexcl`, `drgnames`) and has the Norwegian columns. Either way the rows go
through the NDMS row functions of `_ndms`: a Norwegian sheet only renames its columns first.
This module owns the sheet lookup, the Norwegian column names and turning cells into text.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

from nordgroup.exceptions import TableFormatError
from nordgroup.tables._build import TableBuilder
from nordgroup.tables._ndms import (
    NDMS_TABLES,
    README,
    ParsedTable,
    Reading,
    Row,
    TableLayout,
    feed_release,
    release_from_readme,
    release_guess,
    rule_values,
)

__all__ = ["read_excel_workbook"]

_NORWEGIAN_RULE_RENAME = {
    "ord": "id",  # the Norwegian `ord` is the rule's identifier; the sheet's row order is first-match order
    "drg": "drg_nat",
    "dgcat1": "dgcat",
    "or": "or_proc",
    "procpro1": "procpro",
    "secproc1": "secpro",
}
_NORWEGIAN_RULE_COLUMNS = (
    *("ord", "drg", "rtc", "icd", "mdc", "dgcat1", "pdgprop", "compl", "or", "procpro1", "secproc1"),
    *("dgprop1", "dgprop2", "dgprop3", "dgprop4", "agelim", "sex", "dur", "disch"),
)


def _add_rule_in_sheet_order(builder: TableBuilder, row: int, raw: Row, source: str) -> None:
    builder.add_rule(row, order=row, values=rule_values(raw))


def _norwegian_layouts() -> dict[str, TableLayout]:
    """NDMS table name -> the Norwegian layout of the same table, renamed onto the NDMS row functions."""
    ndms = {layout.name: layout for layout in NDMS_TABLES}
    return {
        "drg_logic": TableLayout("drglogic", _NORWEGIAN_RULE_COLUMNS, _add_rule_in_sheet_order, _NORWEGIAN_RULE_RENAME),
        "dg_feat": TableLayout(
            "dg",
            ("code", "d_code", "vartype", "varval"),
            ndms["dg_feat"].add_row,
            {"code": "code_nat", "d_code": "d_code_nat"},
        ),
        "proc_feat": TableLayout(
            "proc", ("code", "vartype", "varval"), ndms["proc_feat"].add_row, {"code": "code_nat"}
        ),
        "compl_name": TableLayout("complcat", ("compl", "inclprop"), ndms["compl_name"].add_row),
        "compl_excl": TableLayout(
            "complexcl",
            ("compl", "code", "d_code"),
            ndms["compl_excl"].add_row,
            {"compl": "varval", "code": "code_nat", "d_code": "d_code_nat"},
        ),
        "drg_name": TableLayout(
            "drgnames", ("drg", "mdc"), ndms["drg_name"].add_row, {"drg": "drg_nat", "name": "drg_text_nat"}
        ),
    }


def read_excel_workbook(
    path: Path, national_version: str | None = None, codes: str | None = None
) -> tuple[TableBuilder, dict[str, bytes], tuple[str, int | None, str], Reading]:
    """Read a workbook with one sheet per table: the filled builder, the workbook's bytes, the release
    guess (country, year, release) and how the rows were read."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError as error:
        raise ImportError(
            "reading Excel workbooks needs python-calamine: pip install nordgroup[excel]", name=error.name
        ) from error

    data = path.read_bytes()
    try:
        # Parse the bytes that are hashed, not the file a second time: they cannot differ.
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as error:  # calamine raises its own error types, one per container format
        raise TableFormatError(f"not a readable workbook: {error}", path=str(path)) from error
    sheets = {name.strip().lower(): name for name in workbook.sheet_names}

    def parse(layout: TableLayout, sheet_name: str) -> ParsedTable:
        # skip_empty_area=False keeps leading blank rows, so row numbers are the spreadsheet's.
        cells = workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
        rows = [[_cell_text(cell) for cell in row] for row in cells]
        source = f"{path}!{sheet_name}"
        if not rows:
            raise TableFormatError("empty sheet: no header row", path=source)
        return ParsedTable(layout, rows[0], rows[1:], source)

    norwegian = _norwegian_layouts()
    located: list[ParsedTable] = []
    for layout in NDMS_TABLES:
        alternative = norwegian.get(layout.name)
        for candidate in (layout, alternative):
            if candidate is not None and candidate.name in sheets:
                located.append(parse(candidate, sheets[candidate.name]))
                break
        else:
            if layout.required:
                names = layout.name + (f" (or {alternative.name})" if alternative else "")
                raise TableFormatError(
                    f"required sheet {names} is missing; the workbook has {', '.join(workbook.sheet_names) or 'none'}",
                    path=str(path),
                )
    readme = sheets.get(README.name)
    year, name = release_from_readme(parse(README, readme) if readme else None)
    builder, hints, reading = feed_release(located, national_version, codes)
    return builder, {str(path): data}, release_guess(path.stem, year, name, hints, reading), reading


def _cell_text(cell: object) -> str:
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, float) and cell.is_integer():
        # Numbers come back as floats; as text a whole one would read `15.0`, from 1e16 on `1e+16`.
        return str(int(cell))
    if isinstance(cell, datetime.date | datetime.time):
        return cell.isoformat()
    return "" if cell is None else str(cell)
