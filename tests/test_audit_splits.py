"""Two-level splits and the report's labels (issue 18): indicators and the report take several
grouping columns and a date cut into periods, the report has one trend chart per unit, points from
demo weights say DEMO, and tables without a known year say so in words instead of `?`."""

from __future__ import annotations

import collections
import datetime
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from nordgroup.cli.grammar import main
from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import write_table
from nordgroup.episodes.synth import synthesize
from nordgroup.money.weights import load_weights
from nordgroup.review.findings import audit
from nordgroup.review.report import audit_report
from nordgroup.review.unit_indicators import indicators
from nordgroup.tables.load import load_tables

from .conftest import DEMO_TABLES


@pytest.fixture(scope="module")
def demo():
    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables)
    episodes = synthesize(tables, 1200, seed=3, units=3)
    rng = np.random.default_rng(0)
    days = rng.integers(0, 365, len(episodes))
    episodes = episodes.append_column("administration", pa.array(rng.choice(["north", "south"], len(episodes))))
    episodes = episodes.append_column("coder", pa.array(rng.choice(["c1", "c2", "c3"], len(episodes))))
    episodes = episodes.append_column(
        "admitted", pa.array([datetime.date(2017, 1, 1) + datetime.timedelta(days=int(d)) for d in days])
    )
    # a code no table knows, so that a finding names the tables' year
    diagnoses = episodes.column("diagnoses").to_pylist()
    diagnoses[0] = [*diagnoses[0], "Q9999"]
    episodes = episodes.set_column(episodes.column_names.index("diagnoses"), "diagnoses", pa.array(diagnoses))
    grouped = grouper.group(episodes)
    findings = audit(episodes, grouper, grouped=grouped)
    return tables, grouper, episodes, grouped, findings


def test_indicators_by_two_columns(demo):
    """administration × coder × care type: one row per combination present, counts as by hand."""
    _, _, episodes, grouped, findings = demo
    table = indicators(episodes, grouped, findings, unit_column=["administration", "coder"], period_column=None)
    assert table.column_names[:3] == ["administration", "coder", "care_type"]
    care = ["inpatient" if d > 0 else "outpatient" for d in episodes.column("duration_days").to_pylist()]
    expected = collections.Counter(
        zip(episodes.column("administration").to_pylist(), episodes.column("coder").to_pylist(), care, strict=True)
    )
    got = {(r["administration"], r["coder"], r["care_type"]): r["episodes"] for r in table.to_pylist()}
    assert got == dict(expected)


def test_indicators_by_unit_care_type_and_month(demo):
    _, _, episodes, grouped, findings = demo
    table = indicators(episodes, grouped, findings, unit_column="unit", period_column="admitted", period="month")
    months = {r["admitted"] for r in table.to_pylist()}
    assert months == {f"2017-{m:02d}" for m in range(1, 13)}
    assert sum(table.column("episodes").to_pylist()) == len(episodes)
    first = table.filter(pa.compute.equal(table.column("admitted"), "2017-01"))
    in_january = sum(1 for d in episodes.column("admitted").to_pylist() if d.month == 1)
    assert sum(first.column("episodes").to_pylist()) == in_january


def test_unknown_year_is_said_in_words(demo):
    """The demo tables carry no year: a finding says `(year unknown)`, not `DEMO ? grouper_tables`."""
    _, _, _, _, findings = demo
    text = [t for t in findings.column("text").to_pylist() if "Q9999" in t]
    assert text and "(year unknown)" in text[0] and "?" not in text[0]


def test_report_trends_per_unit_and_demo_points(demo, tmp_path):
    """One trend panel per unit; every points column says DEMO; the intro names the tables' year as unknown."""
    tables, _, episodes, grouped, findings = demo
    page = audit_report(
        tmp_path / "r.html", episodes, grouped, findings, demo_weights=True, release=tables.release
    ).read_text()
    section = page.split("<h2>Indicators over time per unit</h2>")[1].split("<h2>")[0]
    units = set(episodes.column("unit").to_pylist())
    panels = {title for title in units if f"<!-- {title} -->" in section}
    assert panels == units
    headers = re.findall(r"<th>([^<]*points[^<]*)</th>", page)
    assert headers and all(header.endswith("(DEMO weights)") for header in headers)
    assert "DEMO grouper_tables (year unknown)" in page and " ? " not in page


def test_cli_two_level_split_and_monthly_period(demo, tmp_path):
    _, _, episodes, _, _ = demo
    write_table(episodes, tmp_path / "e.parquet")
    arguments = ["audit", str(tmp_path / "e.parquet"), "--tables", str(DEMO_TABLES), "--out", str(tmp_path / "f.csv")]
    arguments += ["--unit-column", "administration,coder", "--period-column", "admitted", "--period", "month"]
    arguments += ["--weights", str(DEMO_TABLES / "weights_demo.csv"), "--indicators-out", str(tmp_path / "i.csv")]
    arguments += ["--report", str(tmp_path / "r.html"), "--sample", "10%", "--sample-out", str(tmp_path / "s.csv")]
    assert main(arguments) == 0
    written = pacsv.read_csv(tmp_path / "i.csv")
    assert written.column_names[:4] == ["administration", "coder", "admitted", "care_type"]
    assert sum(written.column("episodes").to_pylist()) == len(episodes)
    assert load_weights(DEMO_TABLES / "weights_demo.csv").demo
    assert "mismatch_points (DEMO weights)" in (tmp_path / "r.html").read_text()
    sample = pacsv.read_csv(tmp_path / "s.csv")
    assert abs(len(sample) / len(episodes) - 0.10) < 0.07  # 2 x 3 x 12 cells of about 17
