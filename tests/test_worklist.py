"""The reviewer worklist round trip from the command line (issue 18): `audit --sample --worklist`
writes the workbook, the test fills it as a reviewer would, `corrections` reads it back, and
`simulate` regroups the reviewed sample with those corrections and extrapolates with its π."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from nordgroup.cli.grammar import main
from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import read_episodes, write_table
from nordgroup.episodes.synth import synthesize
from nordgroup.tables.load import load_tables

from .conftest import DEMO_TABLES

openpyxl = pytest.importorskip("openpyxl")
pytest.importorskip("xlsxwriter")
pytest.importorskip("python_calamine")


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """400 demo episodes audited with a 25 % sample and a worklist."""
    folder = tmp_path_factory.mktemp("worklist")
    tables = load_tables(DEMO_TABLES)
    write_table(synthesize(tables, 400, seed=11, units=3), folder / "episodes.parquet")
    arguments = ["audit", str(folder / "episodes.parquet"), "--tables", str(DEMO_TABLES)]
    arguments += ["--weights", str(DEMO_TABLES / "weights_demo.csv"), "--sample", "25%", "--period-column", "none"]
    arguments += ["--sample-out", str(folder / "sample.csv"), "--worklist", str(folder / "review.xlsx")]
    arguments += ["--out", str(folder / "findings.xlsx"), "--indicators-out", str(folder / "indicators.xlsx")]
    assert main(arguments) == 0
    return folder, tables


def _sheet_rows(sheet) -> list[dict]:
    values = list(sheet.values)
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


def _fill(path, out, edit) -> None:
    """Open the worklist in openpyxl (as Excel would), let `edit(sheet, header)` write cells, save."""
    workbook = openpyxl.load_workbook(path)
    for sheet in workbook.worksheets[1:]:
        header = {cell.value: cell.column for cell in sheet[1]}
        edit(sheet, header)
    workbook.save(out)


def test_worklist_has_one_sheet_per_unit_with_the_sample(audited):
    folder, _ = audited
    sample = pacsv.read_csv(folder / "sample.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    workbook = openpyxl.load_workbook(folder / "review.xlsx")
    units = sorted(set(sample.column("unit").to_pylist()))
    assert workbook.sheetnames == ["about", *units]
    rows = [row for sheet in workbook.worksheets[1:] for row in _sheet_rows(sheet)]
    assert sorted(r["episode_id"] for r in rows) == sorted(str(i) for i in sample.column("episode_id").to_pylist())
    by_id = {str(r["episode_id"]): r for r in sample.to_pylist()}
    for row in rows:
        expected = by_id[row["episode_id"]]
        assert row["unit"] == expected["unit"] and row["stratum"] == expected["stratum"]
        assert row["inclusion_probability"] == pytest.approx(expected["inclusion_probability"])
        assert row["verdict"] is None and row["corrected_principal"] is None
        assert row["points (DEMO weights)"] is None or row["points (DEMO weights)"] >= 0
    # findings and indicators written as workbooks too
    findings = openpyxl.load_workbook(folder / "findings.xlsx").worksheets[0]
    assert [cell.value for cell in findings[1]][:3] == ["row", "episode_id", "kind"]
    assert findings.max_row > 1
    assert openpyxl.load_workbook(folder / "indicators.xlsx").worksheets[0]["A1"].value == "unit"


def test_round_trip_to_corrections_and_simulation(audited, tmp_path):
    """Each sheet's first row corrected (new principal, one secondary added, procedures cleared),
    the second confirmed, the rest left blank: the corrections are exactly those edits with the
    episode's π, and simulate regroups the corrected episodes as direct grouping does."""
    folder, tables = audited
    edits: dict[str, dict] = {}

    def edit(sheet, header):
        first = {name: sheet.cell(2, column).value for name, column in header.items()}
        principal = "I219" if first["principal_diagnosis"] != "I219" else "J189"
        sheet.cell(2, header["verdict"], "corrected")
        sheet.cell(2, header["corrected_principal"], principal)
        secondary = [c for c in (first["secondary_diagnoses"] or "").split("; ") if c]
        sheet.cell(2, header["corrected_secondary"], "; ".join([*secondary, "E119"]))
        sheet.cell(2, header["corrected_procedures"], "-")
        sheet.cell(3, header["verdict"], "correct")
        edits[first["episode_id"]] = {"first": first, "principal": principal}

    _fill(folder / "review.xlsx", tmp_path / "filled.xlsx", edit)
    arguments = ["corrections", str(tmp_path / "filled.xlsx"), "--out", str(tmp_path / "corrections.csv")]
    arguments += ["--episodes", str(folder / "episodes.parquet"), "--sample-out", str(tmp_path / "reviewed.parquet")]
    assert main(arguments) == 0

    corrections = pacsv.read_csv(
        tmp_path / "corrections.csv",
        convert_options=pacsv.ConvertOptions(column_types={"episode_id": pa.string()}, strings_can_be_null=False),
    ).to_pylist()
    expected = []
    for episode_id, change in edits.items():
        first = change["first"]
        expected.append(("replace", "principal", change["principal"], first["principal_diagnosis"], episode_id))
        expected.append(("add", "secondary", "E119", "", episode_id))
        for code in (first["procedures"] or "").split("; "):
            if code:
                expected.append(("remove", "procedure", code, "", episode_id))
    got = [(c["action"], c["role"], c["code"], c["old_code"], c["episode_id"]) for c in corrections]
    assert sorted(got) == sorted(expected)
    probabilities = {c["episode_id"]: c["inclusion_probability"] for c in corrections}
    for episode_id, change in edits.items():
        assert probabilities[episode_id] == pytest.approx(change["first"]["inclusion_probability"])

    reviewed = pq.read_table(tmp_path / "reviewed.parquet")
    assert len(reviewed) == 2 * len(edits)  # blank rows are left out
    assert set(reviewed.column("verdict").to_pylist()) == {"corrected", "correct"}

    scenario = tmp_path / "review.toml"
    scenario.write_text(f'name = "review"\ncorrections = "{tmp_path / "corrections.csv"}"\n')
    arguments = ["simulate", str(tmp_path / "reviewed.parquet"), "--tables", str(DEMO_TABLES)]
    arguments += ["--weights", str(DEMO_TABLES / "weights_demo.csv")]
    arguments += ["--financing", str(DEMO_TABLES / "financing_demo.toml"), "--scenario", str(scenario)]
    arguments += ["--out-dir", str(tmp_path / "sim"), "--sample-probability", "inclusion_probability"]
    assert main(arguments) == 0
    after = pq.read_table(tmp_path / "sim" / "review_episodes.parquet")
    episodes = read_episodes(folder / "episodes.parquet")
    records = {str(r["episode_id"]): r for r in episodes.to_pylist()}
    corrected = []
    for episode_id, change in edits.items():
        record = dict(records[episode_id])
        record["diagnoses"] = [change["principal"], *record["diagnoses"][1:], "E119"]
        record["procedures"] = []
        corrected.append(record)
    direct = Grouper(tables).group(pa.Table.from_pylist(corrected, schema=episodes.schema))
    drg_after = dict(
        zip(
            pc.cast(after.column("episode_id"), pa.string()).to_pylist(),
            after.column("drg_after").to_pylist(),
            strict=True,
        )
    )
    assert [drg_after[r["episode_id"]] for r in corrected] == direct.column("drg").to_pylist()


def test_unreadable_cells_are_named_by_sheet_row_and_column(audited, tmp_path, capsys):
    """A bad verdict, a malformed code and a bad probability: each named by sheet, row and column
    (letter and name), and no corrections file written."""
    folder, _ = audited

    def edit(sheet, header):
        sheet.cell(2, header["verdict"], "maybe")
        sheet.cell(3, header["verdict"], "corrected")
        sheet.cell(3, header["corrected_secondary"], "I10; 12")
        sheet.cell(4, header["inclusion_probability"], "high")

    _fill(folder / "review.xlsx", tmp_path / "bad.xlsx", edit)
    assert main(["corrections", str(tmp_path / "bad.xlsx"), "--out", str(tmp_path / "c.csv")]) == 2
    error = capsys.readouterr().err
    header = [cell.value for cell in openpyxl.load_workbook(folder / "review.xlsx").worksheets[1][1]]
    letter = {name: openpyxl.utils.get_column_letter(header.index(name) + 1) for name in header}
    sheet = openpyxl.load_workbook(folder / "review.xlsx").sheetnames[1]
    assert f"sheet '{sheet}', row 2, column {letter['verdict']} (verdict): 'maybe' is not one of" in error
    assert f"sheet '{sheet}', row 3, column {letter['corrected_secondary']} (corrected_secondary): '12'" in error
    assert f"sheet '{sheet}', row 4, column {letter['inclusion_probability']} (inclusion_probability)" in error
    assert not (tmp_path / "c.csv").exists()


def test_a_procedure_put_first_regroups_as_written(audited, tmp_path):
    """The reviewer puts a procedure first (new, or one written later: secpro reads the first): the
    corrections add it with position `first`, and simulate regroups each episode exactly as grouping
    the corrected procedure list does."""
    folder, tables = audited
    wanted: dict[str, list[str]] = {}

    def edit(sheet, header):
        for number in (2, 3):
            episode_id = sheet.cell(number, header["episode_id"]).value
            written = [c for c in (sheet.cell(number, header["procedures"]).value or "").split("; ") if c]
            procedures = [*written[1:], written[0]] if len(written) > 1 else ["NFB40", *written]
            sheet.cell(number, header["verdict"], "corrected")
            sheet.cell(number, header["corrected_procedures"], "; ".join(procedures))
            wanted[str(episode_id)] = procedures

    _fill(folder / "review.xlsx", tmp_path / "filled.xlsx", edit)
    arguments = ["corrections", str(tmp_path / "filled.xlsx"), "--out", str(tmp_path / "corrections.csv")]
    arguments += ["--episodes", str(folder / "episodes.parquet"), "--sample-out", str(tmp_path / "reviewed.parquet")]
    assert main(arguments) == 0
    corrections = pacsv.read_csv(
        tmp_path / "corrections.csv",
        convert_options=pacsv.ConvertOptions(column_types={"episode_id": pa.string()}, strings_can_be_null=False),
    ).to_pylist()
    firsts = {(c["episode_id"], c["code"]) for c in corrections if c["position"] == "first"}
    # a procedure added to an empty list is first anyway: only the others need the position
    assert firsts == {(episode_id, procedures[0]) for episode_id, procedures in wanted.items() if len(procedures) > 1}
    assert len(firsts) >= 2

    scenario = tmp_path / "review.toml"
    scenario.write_text(f'name = "review"\ncorrections = "{tmp_path / "corrections.csv"}"\n')
    arguments = ["simulate", str(tmp_path / "reviewed.parquet"), "--tables", str(DEMO_TABLES)]
    arguments += ["--weights", str(DEMO_TABLES / "weights_demo.csv")]
    arguments += ["--financing", str(DEMO_TABLES / "financing_demo.toml"), "--scenario", str(scenario)]
    arguments += ["--out-dir", str(tmp_path / "sim")]
    assert main(arguments) == 0
    after = pq.read_table(tmp_path / "sim" / "review_episodes.parquet")
    drg_after = dict(
        zip(
            pc.cast(after.column("episode_id"), pa.string()).to_pylist(),
            after.column("drg_after").to_pylist(),
            strict=True,
        )
    )
    records = {str(r["episode_id"]): r for r in read_episodes(folder / "episodes.parquet").to_pylist()}
    corrected = [{**records[episode_id], "procedures": procedures} for episode_id, procedures in wanted.items()]
    direct = Grouper(tables).group(
        pa.Table.from_pylist(corrected, schema=read_episodes(folder / "episodes.parquet").schema)
    )
    assert [drg_after[episode_id] for episode_id in wanted] == direct.column("drg").to_pylist()
