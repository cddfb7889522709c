"""`nordgroup compare` and `nordgroup audit --sensitivity` from files, as a user runs them."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq

from nordgroup import Grouper, load_tables, write_table
from nordgroup.cli.grammar import main
from nordgroup.episodes.synth import synthesize
from nordgroup.review.code_sensitivity import sensitivity
from nordgroup.review.comparison import compare
from tests.conftest import DEMO_TABLES
from tests.test_compare import _ai_coding


def test_compare_writes_the_tables_and_the_report(tmp_path, capsys):
    tables = load_tables(DEMO_TABLES)
    a = synthesize(tables, 600, seed=2, units=3)
    b, *_ = _ai_coding(a, drop=0.3, add=0.0, seed=1)
    write_table(a, tmp_path / "a.parquet")
    write_table(b.slice(5), tmp_path / "b.csv")  # five episodes only in A; list columns as text
    out = {name: tmp_path / f"{name}.parquet" for name in ("episodes", "agreement", "confusion", "unmatched")}
    code = main(
        [
            "compare", "--tables", str(DEMO_TABLES), str(tmp_path / "a.parquet"), str(tmp_path / "b.csv"),
            "--weights", str(DEMO_TABLES / "weights_demo.csv"), "--out", str(out["episodes"]),
            "--agreement-out", str(out["agreement"]), "--confusion-out", str(out["confusion"]),
            "--unmatched-out", str(out["unmatched"]), "--report", str(tmp_path / "compare.html"), "--replicates", "50",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert "595 episodes compared; 5 unmatched" in printed.out
    assert "secondary_recall" in printed.out and "5 only in A" in printed.err
    expected = compare(a, b.slice(5), Grouper(tables), weights=DEMO_TABLES / "weights_demo.csv", replicates=50)
    assert pq.read_table(out["agreement"]).column("value").to_pylist() == expected.agreement.column("value").to_pylist()
    assert pq.read_table(out["episodes"]).column("drg_b").to_pylist() == expected.episodes.column("drg_b").to_pylist()
    assert pq.read_table(out["unmatched"]).column("episode_id").to_pylist() == [f"E{i}" for i in range(1, 6)]
    assert len(pq.read_table(out["confusion"])) == len(expected.confusion)
    assert "Codes most often missed or added" in (tmp_path / "compare.html").read_text()


def test_compare_by_a_column_that_is_not_there_is_exit_code_2(tmp_path, capsys):
    a = synthesize(load_tables(DEMO_TABLES), 50, seed=2)
    write_table(a, tmp_path / "a.parquet")
    path = str(tmp_path / "a.parquet")
    assert (
        main(["compare", "--tables", str(DEMO_TABLES), path, path, "--by", "ward", "--out", str(tmp_path / "x.csv")])
        == 2
    )
    assert "no column 'ward'" in capsys.readouterr().err


def test_audit_sensitivity_writes_the_changes_and_weights_the_sample(tmp_path, capsys):
    tables = load_tables(DEMO_TABLES)
    episodes = synthesize(tables, 2000, seed=4, units=2)
    write_table(episodes, tmp_path / "episodes.parquet")
    code = main(
        [
            "audit", str(tmp_path / "episodes.parquet"), "--tables", str(DEMO_TABLES),
            "--out", str(tmp_path / "findings.parquet"), "--sensitivity", str(tmp_path / "sensitivity.parquet"),
            "--sample", "10%", "--sample-out", str(tmp_path / "sample.parquet"),
        ]
    )  # fmt: skip
    assert code == 0
    assert "whose DRG hangs on one code" in capsys.readouterr().out
    changes = pq.read_table(tmp_path / "sensitivity.parquet")
    expected = sensitivity(episodes, Grouper(tables))
    assert changes.to_pylist() == expected.to_pylist()
    sample = pq.read_table(tmp_path / "sample.parquet")
    carried = set(changes.filter(pc.not_equal(changes.column("change"), "swap_principal")).column("row").to_pylist())
    # episodes whose DRG hangs on one code are in the finding strata (or a merged stratum holding one)
    strata = dict(zip(sample.column("row").to_pylist(), sample.column("stratum").to_pylist(), strict=True))
    assert carried & set(strata)
    assert all("findings" in strata[row] for row in carried & set(strata))
