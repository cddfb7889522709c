"""Writing a loaded release in the NDMS layout: a folder of CSV files, or one workbook with a sheet per table.

Whatever layout the tables were read from, the export is a *national* NDMS release: the tables
`drg_logic`, `dg_feat`, `proc_feat`, `compl_name`, `compl_excl`, `drg_name`, `rtc` (when the
release has return-code meanings) and `readme` (release name and year), every row naming the
release's country in `nat_ver`. The code columns are `code_nat` or, for tables read with
`codes="plus"`, `code_plus`. `load_tables` reads the export back into equal tables: rows are
written in the model's order, so even the compiled tables come out byte for byte the same.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from nordgroup.tables._ndms import CODE_SYSTEMS
from nordgroup.tables.model import DiagnosisProperties, DrgTables, ProcedureProperties

__all__ = ["FORMATS", "export_tables", "property_rows", "release_rows", "write_workbook"]

#: The export formats: a folder of NDMS CSV files, or one Excel workbook.
FORMATS = ("ndms", "excel")

_RULE_COLUMNS = (
    *("ord", "id", "drg_nat", "drg_text_nat", "rtc", "icd", "mdc", "dgcat", "pdgprop", "compl", "or_proc"),
    *("procpro", "secpro", "dgprop1", "dgprop2", "dgprop3", "dgprop4", "agelim", "sex", "dur", "disch", "nat_ver"),
)
_ORD_STEP = 10  # room to insert a rule between two when the export is edited by hand

Table = list[list[str]]  # header, then rows


def property_rows(properties: DiagnosisProperties | ProcedureProperties) -> tuple[tuple[str, str], ...]:
    """The (vartype, varval) rows that say what one code (or dagger pair) carries: the model's own
    `rows()`, one per value of every row the release listed. A code that carries nothing still gets
    its `OR 0` row, so that the code stays listed."""
    return properties.rows() or (("OR", "0"),)


def release_rows(tables: DrgTables) -> dict[str, Table]:
    """Every table of the export, by NDMS table name, as rows of text (header first)."""
    release = tables.release
    version = release.national_version or release.country
    code, dagger = CODE_SYSTEMS[release.codes]
    names = {drg: info.name for drg, info in tables.drgs.items()}
    rules: Table = [list(_RULE_COLUMNS)]
    for rule in tables.rules:
        dgprop = [*rule.dgprop, "", "", "", ""][:4]
        rules.append(
            [
                str((rule.position + 1) * _ORD_STEP), rule.id, rule.drg, names.get(rule.drg, ""), rule.rtc,
                rule.icd, rule.mdc, rule.dgcat, rule.pdgprop, rule.compl, rule.or_proc, rule.procpro,
                rule.secpro, *dgprop, str(rule.agelim or ""), rule.sex, str(rule.dur or ""), rule.disch, version,
            ]
        )  # fmt: skip
    diagnoses: Table = [[code, dagger, "vartype", "varval", "nat_ver"]]
    for (name, dagger_code), properties in tables.diagnoses.items():
        diagnoses += [[name, dagger_code, kind, value, version] for kind, value in property_rows(properties)]
    procedures: Table = [[code, "vartype", "varval", "or_val", "nat_ver"]]
    for name, procedure in tables.procedures.items():
        or_value = str(max(procedure.or_values, default=0))  # informational: the OR rows are what is read
        procedures += [[name, kind, value, or_value, version] for kind, value in property_rows(procedure)]
    categories: Table = [["compl", "inclprop", "nat_ver"]]
    for category in tables.complication_categories.values():
        # one row per activating DGPROP: `inclprop` holds one value
        categories += [[category.code, value, version] for value in sorted(category.activating_dgprop) or [""]]
    exclusions: Table = [["vartype", "varval", code, dagger, "nat_ver"]]
    for category_code, keys in tables.exclusions.items():
        exclusions += [["COMPLEX", category_code, name, dagger_code, version] for name, dagger_code in sorted(keys)]
    drgs: Table = [["drg_nat", "drg_text_nat", "mdc", "country"]]
    drgs += [[info.drg, info.name, info.mdc, version] for info in tables.drgs.values()]
    written = {
        "drg_logic": rules,
        "dg_feat": diagnoses,
        "proc_feat": procedures,
        "compl_name": categories,
        "compl_excl": exclusions,
        "drg_name": drgs,
    }
    if tables.return_codes:
        written["rtc"] = [["rtc_code", "rtc_text_nat", "country"]]
        written["rtc"] += [[return_code, text, version] for return_code, text in tables.return_codes.items()]
    readme = [["Version:", str(release.year)]] if release.year is not None else []
    written["readme"] = [*readme, ["Name:", release.release], ["Source:", f"nordgroup export of {release.label}"]]
    return written


def export_tables(tables: DrgTables, path: str | os.PathLike[str], *, format: str = "ndms") -> Path:
    """Write `tables` to `path`: a folder of NDMS CSV files (`ndms`) or one `.xlsx` workbook (`excel`).

    Returns the path written. A folder is created if needed; files of the same names in it are
    replaced, other files are left alone.
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    written = release_rows(tables)
    if format == "excel":
        write_workbook(path, written)
        return path
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in written.items():
        with (path / f"{name}.csv").open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows(rows)
    return path


def write_workbook(path: Path, sheets: dict[str, Table]) -> None:
    """One `.xlsx` workbook, a sheet per table, every cell written as text (so `01` stays `01`)."""
    try:
        import xlsxwriter
    except ImportError as error:
        raise ImportError(
            "writing Excel workbooks needs xlsxwriter: pip install nordgroup[excel]", name=error.name
        ) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    # Text that looks like a formula or a link stays text; rows go straight to disk.
    options = {"strings_to_formulas": False, "strings_to_urls": False, "constant_memory": True}
    with xlsxwriter.Workbook(str(path), options) as workbook:
        for name, rows in sheets.items():
            sheet = workbook.add_worksheet(name)
            for number, row in enumerate(rows):
                for column, cell in enumerate(row):
                    if cell:
                        sheet.write_string(number, column, cell)
