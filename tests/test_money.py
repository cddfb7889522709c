"""Money: weight and financing files, pricing, casemix and KPP, with figures checked by hand.

The worked example is the one in docs/money.md: price 40 000 per point, activity share 0.5.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from nordgroup.exceptions import TableFormatError
from nordgroup.money.financing import Financing, load_financing
from nordgroup.money.kpp import CostWeightRules, cost_vs_reimbursement, weights_from_costs
from nordgroup.money.pricing import casemix, price_episodes
from nordgroup.money.weights import WEIGHT_COLUMNS, DrgWeight, load_weights, name_drgs, parse_weight_columns
from nordgroup.tables import load_tables
from tests.conftest import DEMO_TABLES

WEIGHTS_CSV = """drg,weight,trim_days,per_day_weight,weight_outpatient
100,1.0,10,0.1,0.25
200,2.5,,,
"""
FINANCING = Financing(price_per_point=40_000, activity_share=0.5, year=2026, currency="NOK", demo=True)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "weights_example.csv"
    path.write_text(WEIGHTS_CSV)
    return load_weights(path)


def worked_example() -> pa.Table:
    """Five grouped episodes: A-D as in docs/money.md, E in a DRG the weight table lacks."""
    return pa.table(
        {
            "episode_id": ["A", "B", "C", "D", "E"],
            "unit": ["med", "med", "med", "surg", "surg"],
            "drg": ["100", "100", "100", "200", "999"],
            "duration_days": pa.array([4, 15, 0, 30, 3], pa.int32()),
        }
    )


def test_worked_example_per_episode(weights):
    priced = price_episodes(worked_example(), weights, FINANCING).to_pydict()
    assert priced["care_type"] == ["inpatient", "inpatient", "outpatient", "inpatient", "inpatient"]
    assert priced["supplement_days"] == [0, 5, 0, 0, None]
    assert priced["points"][:4] == pytest.approx([1.0, 1.5, 0.25, 2.5])  # B: 1.0 + 5 days x 0.1
    assert priced["points"][4] is None and priced["priced"] == [True, True, True, True, False]
    assert priced["drg_value"][:4] == pytest.approx([40_000, 60_000, 10_000, 100_000])
    assert priced["reimbursement"][:4] == pytest.approx([20_000, 30_000, 5_000, 50_000])


def test_worked_example_casemix(weights):
    priced = price_episodes(worked_example(), weights, FINANCING)
    total = casemix(priced).to_pylist()[0]
    assert total["episodes"] == 5 and total["unpriced"] == 1
    assert total["points"] == pytest.approx(5.25)
    assert total["casemix_index"] == pytest.approx(5.25 / 4)
    assert total["reimbursement"] == pytest.approx(105_000)
    by_unit = {row["unit"]: row for row in casemix(priced, "unit").to_pylist()}
    assert by_unit["med"]["casemix_index"] == pytest.approx(2.75 / 3)
    assert by_unit["surg"]["points"] == pytest.approx(2.5)


def test_zero_padded_drgs_meet(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("DRG;Weight;Trim_days\n001;1,5;\n014A;0,5;3\n")  # semicolons and decimal commas
    grouped = pa.table({"drg": ["1", "14A"], "duration_days": pa.array([1, 1], pa.int32())})
    priced = price_episodes(grouped, load_weights(path), FINANCING)
    assert priced.column("points").to_pylist() == pytest.approx([1.5, 0.5])


def test_cost_vs_reimbursement_by_hand(weights):
    priced = price_episodes(worked_example(), weights, FINANCING)
    priced = priced.append_column("cost", pa.array([50_000.0, 70_000.0, 5_000.0, 90_000.0, 1_000.0]))
    table = {row["drg"]: row for row in cost_vs_reimbursement(priced, min_episodes=2).to_pylist()}
    # DRG 100: cost 125 000 against DRG value 110 000 -> loses 15 000 on 3 episodes
    assert table["100"]["cost"] == pytest.approx(125_000) and table["100"]["revenue"] == pytest.approx(110_000)
    assert table["100"]["margin"] == pytest.approx(-15_000) and table["100"]["episodes"] == 3
    assert table["200"]["margin"] == pytest.approx(10_000) and table["200"]["few_episodes"]
    assert "999" not in table  # unpriced: no revenue to compare
    first = cost_vs_reimbursement(priced, basis="reimbursement").to_pylist()[0]
    assert first["drg"] == "100" and first["margin"] == pytest.approx(55_000 - 125_000)


def test_weights_from_costs_by_hand(tmp_path):
    costed = pa.table(
        {
            "drg": ["X"] * 5 + ["Y"] * 2,
            "cost": [100.0, 100.0, 100.0, 100.0, 1000.0, 300.0, 300.0],
            "duration_days": pa.array([2, 2, 2, 2, 2, 3, 3], pa.int32()),
        }
    )
    result = weights_from_costs(costed, rules=CostWeightRules(cost_fence=3.0, min_episodes=3))
    details = {row["drg"]: row for row in result.details.to_pylist()}
    assert details["X"]["outliers"] == 1  # IQR 0: the 1000 lies outside the fences
    assert result.mean_cost == pytest.approx(1000 / 6)
    assert details["X"]["weight"] == pytest.approx(0.6) and details["Y"]["weight"] == pytest.approx(1.8)
    assert details["Y"]["per_day_weight"] == pytest.approx(100 / (1000 / 6))
    assert result.few_episodes == ["Y"]
    reloaded = load_weights(result.write_csv(tmp_path / "kpp_weights.csv"))
    assert [(row.drg, round(row.weight, 9)) for row in reloaded.rows] == [("X", 0.6), ("Y", 1.8)]


def test_cost_weights_average_one():
    costed = pa.table({"drg": ["A", "A", "B", "C", "C", "C"], "cost": [1.0, 3.0, 10.0, 2.0, 2.0, 2.0]})
    result = weights_from_costs(costed, rules=CostWeightRules(cost_fence=None))
    details = result.details.to_pylist()
    mean_weight = sum(row["weight"] * row["inliers"] for row in details) / sum(row["inliers"] for row in details)
    assert mean_weight == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        ("drg,weight\n100,abc\n", 2, "weight"),
        ("drg,weight,trim_days\n100,1.0,2.5\n", 2, "trim_days"),
        ("drg,weight\n100,1\n0100,2\n", 3, "drg"),
        ("drg,points\n100,1\n", 1, "weight"),
        ("drg,weight\n100,-1\n", 2, "weight"),
    ],
)
def test_weight_errors_name_row_and_column(tmp_path, text, row, column):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TableFormatError) as raised:
        load_weights(path)
    assert raised.value.row == row and raised.value.column == column and raised.value.path == str(path)


def test_weights_from_excel(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    pytest.importorskip("python_calamine")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["DRG", "weight", "trim_days", "per_day_weight"], ["5", 1.25, 7, 0.05]):
        sheet.append(row)
    workbook.save(tmp_path / "w.xlsx")
    table = load_weights(tmp_path / "w.xlsx")
    assert table.rows[0].drg == "5" and table.rows[0].trim_days == 7 and table.rows[0].weight == 1.25


def test_demo_files_are_labelled_demo():
    weights = load_weights(DEMO_TABLES / "weights_demo.csv")
    financing = load_financing(DEMO_TABLES / "financing_demo.toml")
    assert weights.demo and "DEMO" in weights.label
    assert financing.demo and "DEMO" in financing.label
    assert math.isclose(financing.activity_share, 0.5)
    assert weights.to_arrow().column_names == list(WEIGHT_COLUMNS)


def test_financing_errors(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text("price_per_point = 45000\nyear = 2026\n")
    with pytest.raises(TableFormatError, match="activity_share"):
        load_financing(path)
    path.write_text("price_per_point = 45000\nactivity_share = 1.5\nyear = 2026\n")
    with pytest.raises(ValueError, match="activity_share"):
        load_financing(path)


def test_weights_from_costs_keep_inpatient_and_outpatient_apart(tmp_path):
    """DRG 175 with 7 outpatient contacts (100 each) and 3 stays (550 each), DRG A with 10 stays
    at 1135: the mean inpatient stay costs (10 x 1135 + 3 x 550) / 13 = 1000, so 175 weighs
    550 / 1000 = 0.55 as a stay and 100 / 1000 = 0.1 as a contact (issue 18, defect 6: one mixed
    weight gave 0.34). Pricing the same episodes with the result gives the inpatient casemix index 1."""
    costed = pa.table(
        {
            "drg": ["A"] * 10 + ["175"] * 10,
            "cost": [1135.0] * 10 + [100.0] * 7 + [550.0] * 3,
            "duration_days": pa.array([4] * 10 + [0] * 7 + [3] * 3, pa.int32()),
        }
    )
    result = weights_from_costs(costed, rules=CostWeightRules(min_episodes=3))
    assert result.mean_cost == pytest.approx(1000.0)
    details = {row["drg"]: row for row in result.details.to_pylist()}
    assert details["175"]["weight"] == pytest.approx(0.55)
    assert details["175"]["weight_outpatient"] == pytest.approx(0.1)
    assert details["A"]["weight"] == pytest.approx(1.135) and details["A"]["weight_outpatient"] is None
    assert (details["175"]["inpatient_inliers"], details["175"]["outpatient_inliers"]) == (3, 7)
    reloaded = load_weights(result.write_csv(tmp_path / "kpp.csv"))
    priced = price_episodes(costed, reloaded, FINANCING)
    by_care = {row["care_type"]: row for row in casemix(priced, "care_type").to_pylist()}
    assert by_care["inpatient"]["casemix_index"] == pytest.approx(1.0)
    assert by_care["outpatient"]["points"] == pytest.approx(0.7)


# --- weight lists as published (issue 18) ------------------------------------------------------
# Small lists in the layouts of the published files (docs/money.md, "Weight lists as published"):
# a title above the header, `;` and decimal commas, a dash for "no trim point". The figures are
# made up; the headers and layout are those of the lists.

NORWEGIAN_ISF = """Innsatsstyrt finansiering 2017 - DRG-vekter (utdrag);;;;;
;;;;;
DRG;Navn;Vekt;Trimpunkt;Gj.sn. liggetid;Vekt per liggedag utover trimpunkt
1A;Kraniotomi, alder > 17 år med bløding;4,562;31;9,1;0,081
14B;Spesifikke karsykdommer i hjernen unntatt TIA uten bk;1,204;26;6,4;0,089
119O;Venestripping, dagkirurgisk;0,398;-;;
801O;Poliklinisk konsultasjon;0,045;-;;
"""

SWEDISH_HEADER = (
    "DRG;Benämning;MDC;Vikt sluten vård;Medelvårdtid;Trimpunkt;Vikt per vårddag utöver trimpunkt;"
    "Vikt öppen vård;Vikt dagkirurgi"
)
SWEDISH_NATIONAL = f"""Nationella vikter NordDRG 2017;;;;;;;;
{SWEDISH_HEADER}
014B;Specifika cerebrovaskulära sjukdomar utom TIA utan kompl;01;1,1840;6,2;25;0,0910;0,3010;
175;Gastrointestinal blödning utan kompl;06;0,5500;3,1;10;0,0800;0,1380;
162;Ljumsk- och bråckoperationer;06;0,9120;2,0;8;0,1020;0,4550;0,5120
"""


def test_norwegian_isf_weight_list_as_published(tmp_path):
    """The ISF list: its title lines skipped, `Vekt`/`Trimpunkt`/per-day weight read with decimal
    commas, a dash as no trim point, the DRG names kept, unknown columns ignored."""
    path = tmp_path / "drg-vekter-2017.csv"
    path.write_text(NORWEGIAN_ISF, encoding="utf-8")
    table = load_weights(path)
    rows = {row.drg: row for row in table.rows}
    assert list(rows) == ["1A", "14B", "119O", "801O"]
    assert (rows["14B"].weight, rows["14B"].trim_days, rows["14B"].per_day_weight) == (1.204, 26, 0.089)
    assert rows["119O"].trim_days is None and rows["801O"].weight == 0.045
    assert table.names()["14B"] == "Spesifikke karsykdommer i hjernen unntatt TIA uten bk"
    priced = price_episodes(
        pa.table({"drg": ["14B", "014B"], "duration_days": pa.array([40, 2], pa.int32())}), table, FINANCING
    )
    assert priced.column("points").to_pylist() == pytest.approx([1.204 + 14 * 0.089, 1.204])


def test_norwegian_isf_weight_list_as_excel(tmp_path):
    """The same list as the published workbook: a title row, numbers as numbers."""
    openpyxl = pytest.importorskip("openpyxl")
    pytest.importorskip("python_calamine")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Innsatsstyrt finansiering 2017 - DRG-vekter"])
    sheet.append([])
    sheet.append(["DRG", "Navn", "Vekt", "Trimpunkt", "Vekt per liggedag utover trimpunkt"])
    sheet.append(["14B", "Spesifikke karsykdommer i hjernen unntatt TIA uten bk", 1.204, 26, 0.089])
    sheet.append(["801O", "Poliklinisk konsultasjon", 0.045, None, None])
    workbook.save(tmp_path / "vekter.xlsx")
    rows = load_weights(tmp_path / "vekter.xlsx").rows
    assert [(r.drg, r.weight, r.trim_days, r.per_day_weight) for r in rows] == [
        ("14B", 1.204, 26, 0.089),
        ("801O", 0.045, None, 0.0),
    ]


def test_swedish_national_weight_list_as_published(tmp_path):
    """The Swedish list: inpatient, outpatient and day-surgery weights in their own columns, each
    applied to its care type; a blank day-surgery weight falls back to the outpatient weight."""
    path = tmp_path / "nationella-vikter-2017.csv"
    path.write_text(SWEDISH_NATIONAL, encoding="utf-8")
    table = load_weights(path)
    rows = {row.drg: row for row in table.rows}
    assert rows["175"].weight == 0.55 and rows["175"].weight_outpatient == 0.138
    assert rows["162"].weight_day_surgery == 0.512 and rows["014B"].weight_day_surgery is None
    grouped = pa.table(
        {
            "drg": ["175", "175", "162", "14B", "14B"],
            "duration_days": pa.array([0, 3, 0, 0, 30], pa.int32()),
            "care_type": ["outpatient", None, "day surgery", "day_surgery", None],
        }
    )
    points = price_episodes(grouped, table, FINANCING).column("points").to_pylist()
    assert points == pytest.approx([0.138, 0.55, 0.512, 0.301, 1.184 + 5 * 0.091])


def test_weight_list_through_a_column_mapping(tmp_path):
    """Headers of no known layout are read through a mapping; a missing mapped header is named."""
    path = tmp_path / "regional.csv"
    path.write_text("Kod;Text;Poäng;Gräns\n175;GI-blödning;0,55;10\n", encoding="utf-8")
    with pytest.raises(TableFormatError, match="columns="):
        load_weights(path)
    table = load_weights(path, columns=parse_weight_columns("drg=Kod, name=Text, weight=Poäng, trim_days=Gräns"))
    assert table.rows[0] == DrgWeight("175", 0.55, trim_days=10, name="GI-blödning")
    with pytest.raises(TableFormatError) as raised:
        load_weights(path, columns={"drg": "Kod", "weight": "Vikt"})
    assert raised.value.column == "weight"
    with pytest.raises(TableFormatError, match="unknown column name"):
        load_weights(path, columns={"drg": "Kod", "points": "Poäng"})
    with pytest.raises(ValueError, match="NAME=HEADER"):
        parse_weight_columns("drg")


def test_drg_names_from_the_weight_list_where_the_tables_have_none(nor_tables, tmp_path):
    """The Norwegian JSON carries no DRG names; the ISF list's fill them, names present stay."""
    tables = nor_tables(2017)
    assert tables.drgs["14B"].name == ""
    path = tmp_path / "drg-vekter-2017.csv"
    path.write_text(NORWEGIAN_ISF, encoding="utf-8")
    named = name_drgs(tables, load_weights(path))
    assert named.drgs["14B"].name == "Spesifikke karsykdommer i hjernen unntatt TIA uten bk"
    assert named.drgs["1A"].name.startswith("Kraniotomi") and named.drgs["1B"].name == ""
    demo = load_tables(DEMO_TABLES)
    assert name_drgs(demo, load_weights(path)).drgs["014B"].name == demo.drgs["014B"].name != ""


def test_swedish_list_saved_in_windows_1252(tmp_path):
    """A list saved from Excel on Windows is cp1252, not UTF-8: `Vikt öppen vård` still reads."""
    path = tmp_path / "vikter.csv"
    path.write_bytes(SWEDISH_NATIONAL.encode("cp1252"))
    rows = {row.drg: row for row in load_weights(path).rows}
    assert rows["175"].weight_outpatient == 0.138 and rows["175"].name.startswith("Gastrointestinal blödning")
