"""The NDMS CSV and Excel readers: the public format sample, the demo tables, and broken input."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

from nordgroup.exceptions import TableFormatError
from nordgroup.tables import load_tables
from nordgroup.tables._ndms import NDMS_TABLES, ReleaseHints, release_from_name
from tests.conftest import DEMO_TABLES, shared_path

TABLE_FILES = [f"{layout.name}.csv" for layout in NDMS_TABLES]


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)


def _demo_copy(tmp_path: Path, name: str = "tables") -> Path:
    folder = tmp_path / name
    shutil.copytree(DEMO_TABLES, folder)
    return folder


def _edit_cell(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell; `row` numbered as in a spreadsheet (header = 1)."""
    rows = _read_csv(path)
    rows[row - 1][rows[0].index(column)] = value
    _write_csv(path, rows)


# --- the public format sample -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return load_tables(shared_path("norddrg", "ndms-format-sample"))


def test_sample_rules_follow_numeric_ord(sample):
    header, *records = _read_csv(shared_path("norddrg", "ndms-format-sample", "drg_logic.csv"))
    rows = [dict(zip(header, record, strict=True)) for record in records]
    expected = [row["id"] for row in sorted(rows, key=lambda row: int(row["ord"]))]
    assert [rule.id for rule in sample.rules] == expected
    assert [rule.position for rule in sample.rules] == list(range(len(rows)))
    first = sample.rules[0]
    assert (first.id, first.drg, first.rtc, first.icd, first.procpro, str(first.dur), first.disch) == (
        "000D000004",
        "470O",
        "0",
        "-",
        "99V35",
        "<2",
        "N",
    )


def test_sample_values_are_normalised(sample):
    by_id = {rule.id: rule for rule in sample.rules}
    assert by_id["015D800200"].mdc == "15"  # written 15.0
    assert by_id["000D005100"].mdc == "99"  # written 99.0
    assert by_id["015D800200"].secpro == "-15S02"
    assert by_id["015D8009750"].dgprop == ("15X23",)
    assert by_id["015D812100"].dgprop == ("15X25", "15X40")
    assert sample.drgs["001A"].mdc == "01"  # written 1
    assert sample.drgs["001A"].name == "Keskushermoston kasvaimen kallonsisäinen leikkaus"
    assert sample.diagnoses[("1AA01", "")].mdc == "00"
    assert sample.procedures["1AA01"].procpr == {"99T00"}


def test_sample_inactive_category_and_exclusions(sample):
    assert sample.complication_categories["03I01"].activating_dgprop == {"04X02"}
    assert sample.complication_categories["03I01"].kind == "I"
    assert sample.complication_categories["01C01"].activating_dgprop == frozenset()
    assert sample.exclusions["01C01"] == {("A598", ""), ("E104", "")}


def test_sample_release_guess_and_return_codes(sample):
    # The folder name says nothing; `country` and `nat_ver` agree on fin.
    assert (sample.release.country, sample.release.year, sample.release.release) == ("fin", None, "ndms-format-sample")
    assert sample.release.layout == "ndms-csv"
    assert len(sample.release.source_files) == len(TABLE_FILES)
    assert sample.return_codes["8"] == "Käytetty päädiagnoosi sopimaton"


def test_release_named_by_the_folder(tmp_path):
    shutil.copytree(shared_path("norddrg", "ndms-format-sample"), tmp_path / "FIN2026PL0")
    tables = load_tables(tmp_path / "FIN2026PL0")
    assert (tables.release.country, tables.release.year, tables.release.release) == ("fin", 2026, "FIN2026PL0")


def test_release_from_name_without_hints():
    assert release_from_name("NordDRG_SWE_2025_v2", ReleaseHints()) == ("swe", 2025, "NordDRG_SWE_2025_v2")
    assert release_from_name("NordDRG", ReleaseHints()) == ("", None, "NordDRG")


# --- the demo tables ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return load_tables(DEMO_TABLES)


def test_demo_counts_and_no_findings(demo):
    assert (len(demo.rules), len(demo.diagnoses), len(demo.procedures), len(demo.drgs)) == (80, 117, 36, 70)
    assert demo.findings == ()
    assert demo.release.country == "demo"
    assert {rule.drg for rule in demo.rules} == set(demo.drgs)


def test_demo_ord_is_sorted_as_a_number_not_as_text(demo, tmp_path):
    header, *records = _read_csv(DEMO_TABLES / "drg_logic.csv")
    ords = [record[header.index("ord")] for record in records]
    assert sorted(ords, key=int) != sorted(ords), "the demo ords must differ in length to test this"
    assert demo.rules[0].id == "000D0100"
    assert demo.rules[-1].conditions() == {}
    assert (demo.rules[-1].drg, demo.rules[-1].rtc) == ("470", "8")
    # Reversing the file changes nothing: the order comes from `ord`.
    folder = _demo_copy(tmp_path)
    _write_csv(folder / "drg_logic.csv", [header, *reversed(records)])
    assert load_tables(folder).rules == demo.rules


def test_demo_dagger_pairs_are_keyed_by_code_and_dagger(demo):
    assert demo.diagnoses[("G01", "A390")].mdc == "01"
    assert demo.diagnoses[("G01", "A390")].dgprop == {"01X02"}
    assert ("G01", "") not in demo.diagnoses
    assert demo.diagnoses[("A390", "")].dgprop == frozenset()
    assert {("G01", "A390"), ("G020", "B003"), ("A390", "")} <= demo.exclusions["01C01"]


def test_demo_complication_categories(demo):
    kinds = {code: category.kind for code, category in demo.complication_categories.items()}
    assert sorted(kinds.values()) == ["C", "C", "C", "C", "C", "G", "G", "I"]
    assert demo.complication_categories["01I01"].activating_dgprop == {"01X01"}
    # Each category excludes (at least) its own codes, as the guides ask.
    for key, props in demo.diagnoses.items():
        for category in props.compl:
            assert key in demo.exclusions[category]


def test_demo_weights_and_financing_cover_every_drg(demo):
    header, *records = _read_csv(DEMO_TABLES / "weights_demo.csv")
    assert header == ["drg", "weight", "trim_days", "per_day_weight", "weight_outpatient"]
    assert {record[0] for record in records} == set(demo.drgs)
    tomllib = pytest.importorskip("tomllib")  # standard library from Python 3.11
    financing = tomllib.loads((DEMO_TABLES / "financing_demo.toml").read_text(encoding="utf-8"))
    assert financing["demo"] is True
    assert financing["activity_share"] == 0.5
    assert financing["price_per_point"] > 0


def test_blank_rows_are_skipped(demo, tmp_path):
    folder = _demo_copy(tmp_path)
    rows = _read_csv(folder / "drg_logic.csv")
    _write_csv(folder / "drg_logic.csv", [rows[0], [""] * len(rows[0]), *rows[1:], [], ["", " "]])
    assert load_tables(folder).rules == demo.rules


def test_rule_findings_name_the_file_row(tmp_path):
    """Findings on rules point at the row of drg_logic.csv, not at the rule's place in `ord` order."""
    folder = _demo_copy(tmp_path)
    header, *records = _read_csv(folder / "drg_logic.csv")
    _write_csv(folder / "drg_logic.csv", [header, *reversed(records)])  # file order is not rule order
    last_row = len(records) + 1  # the first rule by `ord`, now at the bottom of the file
    _edit_cell(folder / "drg_logic.csv", last_row, "dgprop1", "NOSUCHPROP")
    _edit_cell(folder / "drg_logic.csv", 2, "drg_nat", "999")  # the last rule by `ord`, now first in the file
    findings = {finding.kind: finding for finding in load_tables(folder).findings}
    assert findings["property-never-carried"].row == last_row
    assert "NOSUCHPROP" in findings["property-never-carried"].message
    assert findings["drg-without-name"].row == 2


def test_rtc_file_is_optional(tmp_path):
    folder = _demo_copy(tmp_path)
    (folder / "rtc.csv").unlink()
    tables = load_tables(folder)
    assert tables.return_codes == {}
    assert len(tables.rules) == 80


# --- Excel --------------------------------------------------------------------------------------


def _write_workbook(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def _as_spreadsheet_values(name: str, rows: list[list[str]]) -> list[list[object]]:
    """As a spreadsheet holds them: `ord` as a number, drg_name's MDC as a float (`1` -> 1.0)."""
    header = rows[0]
    numeric = {"drg_logic": "ord", "drg_name": "mdc"}.get(name)
    if numeric is None:
        return rows
    column = header.index(numeric)
    converted: list[list[object]] = [header]
    for row in rows[1:]:
        value: object = int(row[column]) if numeric == "ord" else float(row[column])
        converted.append([*row[:column], value, *row[column + 1 :]])
    return converted


def _same_tables(left, right) -> None:
    assert left.rules == right.rules
    assert left.diagnoses == right.diagnoses
    assert left.procedures == right.procedures
    assert left.complication_categories == right.complication_categories
    assert left.exclusions == right.exclusions
    assert left.drgs == right.drgs


def test_excel_round_trip_equals_csv(demo, tmp_path):
    pytest.importorskip("python_calamine")
    sheets = {
        file[: -len(".csv")]: _as_spreadsheet_values(file[: -len(".csv")], _read_csv(DEMO_TABLES / file))
        for file in TABLE_FILES
    }
    workbook = tmp_path / "DEMO2026.xlsx"
    _write_workbook(workbook, sheets)
    tables = load_tables(workbook)
    _same_tables(tables, demo)
    assert tables.return_codes == demo.return_codes
    assert (tables.release.layout, tables.release.country, tables.release.year) == ("excel", "demo", 2026)
    assert tables.release.source_files == (str(workbook),)
    assert tables.findings == ()


_NORWEGIAN_SHEETS = {
    "drg_logic": ("drglogic", {"id": "ord", "drg_nat": "drg", "dgcat": "dgcat1", "or_proc": "or",
                               "procpro": "procpro1", "secpro": "secproc1"}),
    "dg_feat": ("dg", {"code_nat": "code", "d_code_nat": "d_code"}),
    "proc_feat": ("proc", {"code_nat": "code"}),
    "compl_name": ("complcat", {}),
    "compl_excl": ("complexcl", {"varval": "compl", "code_nat": "code", "d_code_nat": "d_code"}),
    "drg_name": ("drgnames", {"drg_nat": "drg", "drg_text_nat": "name"}),
}  # fmt: skip


def test_excel_with_norwegian_sheet_and_column_names(demo, tmp_path):
    pytest.importorskip("python_calamine")
    sheets = {}
    for ndms_name, (norwegian_name, rename) in _NORWEGIAN_SHEETS.items():
        header, *records = _read_csv(DEMO_TABLES / f"{ndms_name}.csv")
        if ndms_name == "drg_logic":
            # The Norwegian table has no numeric `ord`: its row order is the rule order.
            keep = [i for i, name in enumerate(header) if name != "ord"]
            header, records = [header[i] for i in keep], [[record[i] for i in keep] for record in records]
        sheets[norwegian_name] = [[rename.get(name, name) for name in header], *records]
    workbook = tmp_path / "norwegian.xlsx"
    _write_workbook(workbook, sheets)
    _same_tables(load_tables(workbook), demo)


def test_excel_missing_sheet_names_both_layouts(tmp_path):
    pytest.importorskip("python_calamine")
    sheets = {file[:-4]: _read_csv(DEMO_TABLES / file) for file in TABLE_FILES if file != "compl_name.csv"}
    workbook = tmp_path / "broken.xlsx"
    _write_workbook(workbook, sheets)
    with pytest.raises(TableFormatError, match=r"compl_name \(or complcat\) is missing"):
        load_tables(workbook)


def test_excel_non_numeric_ord_names_sheet_row_and_column(tmp_path):
    pytest.importorskip("python_calamine")
    sheets = {file[:-4]: _read_csv(DEMO_TABLES / file) for file in TABLE_FILES}
    sheets["drg_logic"][5][0] = "5x"
    workbook = tmp_path / "broken.xlsx"
    _write_workbook(workbook, sheets)
    with pytest.raises(TableFormatError) as error:
        load_tables(workbook)
    assert (error.value.path, error.value.row, error.value.column) == (f"{workbook}!drg_logic", 6, "ord")


def test_excel_without_calamine_names_the_extra(tmp_path, monkeypatch):
    from nordgroup.tables._excel import read_excel_workbook

    monkeypatch.setitem(sys.modules, "python_calamine", None)
    with pytest.raises(ImportError, match=r"pip install nordgroup\[excel\]"):
        read_excel_workbook(tmp_path / "any.xlsx")


# --- broken CSV input ---------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    folder = _demo_copy(tmp_path)
    (folder / "compl_name.csv").unlink()
    with pytest.raises(TableFormatError) as error:
        load_tables(folder)
    assert error.value.path == str(folder / "compl_name.csv")
    assert "compl_name.csv is missing" in str(error.value)


def test_missing_column_names_file_row_and_column(tmp_path):
    folder = _demo_copy(tmp_path)
    rows = _read_csv(folder / "drg_logic.csv")
    column = rows[0].index("dgcat")
    _write_csv(folder / "drg_logic.csv", [row[:column] + row[column + 1 :] for row in rows])
    with pytest.raises(TableFormatError) as error:
        load_tables(folder)
    assert (error.value.path, error.value.row, error.value.column) == (str(folder / "drg_logic.csv"), 1, "dgcat")
    assert str(error.value).startswith(f"{folder / 'drg_logic.csv'}, row 1, column 'dgcat': missing column(s) dgcat")


def test_non_numeric_ord_names_file_row_and_column(tmp_path):
    folder = _demo_copy(tmp_path)
    _edit_cell(folder / "drg_logic.csv", 4, "ord", "13O")
    with pytest.raises(TableFormatError) as error:
        load_tables(folder)
    assert (error.value.path, error.value.row, error.value.column) == (str(folder / "drg_logic.csv"), 4, "ord")
    assert "'13O' is not a whole number" in str(error.value)


def test_bad_limit_names_the_rule_file(tmp_path):
    folder = _demo_copy(tmp_path)
    _edit_cell(folder / "drg_logic.csv", 4, "agelim", "6574")
    with pytest.raises(TableFormatError) as error:
        load_tables(folder)
    assert (error.value.path, error.value.row, error.value.column) == (str(folder / "drg_logic.csv"), 4, "agelim")


def test_shifted_row_is_refused(tmp_path):
    folder = _demo_copy(tmp_path)
    rows = _read_csv(folder / "drg_name.csv")
    # A name with an unquoted comma: one cell more, every later cell shifted.
    rows[3] = [rows[3][0], "an unquoted", " comma", *rows[3][2:]]
    _write_csv(folder / "drg_name.csv", rows)
    with pytest.raises(TableFormatError) as error:
        load_tables(folder)
    assert (error.value.path, error.value.row) == (str(folder / "drg_name.csv"), 4)


def test_not_utf8_is_named(tmp_path):
    folder = _demo_copy(tmp_path)
    (folder / "rtc.csv").write_bytes("rtc_code,rtc_text_nat\n8,Pääd\n".encode("latin-1"))
    with pytest.raises(TableFormatError, match=r"rtc\.csv: not UTF-8 .* line 2"):
        load_tables(folder)
