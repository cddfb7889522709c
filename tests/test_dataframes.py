"""Dataframes in: pandas, polars and DuckDB give exactly what the equivalent pyarrow table gives."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest

from nordgroup import Grouper, load_tables, read_episodes
from nordgroup.episodes.synth import synthesize
from nordgroup.money.financing import load_financing
from nordgroup.money.scenario import PromoteSpecificSecondary, Scenario
from nordgroup.money.simulation import Baseline, simulate
from nordgroup.money.weights import load_weights
from nordgroup.review.findings import audit  # the function: `nordgroup.audit` is the module once it is imported
from tests.conftest import DEMO_TABLES

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")

_state: dict[str, object] = {}


def _grouper() -> Grouper:
    if "grouper" not in _state:
        _state["grouper"] = Grouper(load_tables(DEMO_TABLES), cache=False)
    return _state["grouper"]  # type: ignore[return-value]


def _episodes() -> pa.Table:
    """Synthetic episodes with the writings that need cleaning (dots, lower case, blanks, marks)."""
    table = synthesize(_grouper().tables, 3000, seed=11)
    diagnoses = table.column("diagnoses").to_pylist()
    for i, codes in enumerate(diagnoses):
        if i % 7 == 0 and codes:
            codes[0] = codes[0].lower()
        if i % 11 == 0 and codes:
            codes[-1] = f" {codes[-1][:3]}.{codes[-1][3:]} "
    return table.set_column(table.schema.get_field_index("diagnoses"), "diagnoses", pa.array(diagnoses))


FRAMES = {
    "pandas": lambda table: table.to_pandas(),
    "polars": lambda table: pl.from_arrow(table),
    "duckdb": lambda table: duckdb.from_arrow(table),
    "pyarrow-reader": lambda table: pa.RecordBatchReader.from_batches(table.schema, table.to_batches(500)),
}


@pytest.mark.parametrize("library", FRAMES)
def test_group_of_a_dataframe_equals_group_of_the_table(library):
    table = _episodes()
    expected = _grouper().group(table)
    result = _grouper().group(FRAMES[library](table))
    assert isinstance(result, pa.Table)
    assert result.equals(expected)


@pytest.mark.parametrize("library", ["polars", "duckdb", "pyarrow-reader"])
def test_group_batches_of_a_dataframe_equals_group_of_the_table(library):
    table = _episodes()
    expected = _grouper().group(table)
    parts = list(_grouper().group_batches(FRAMES[library](table)))
    assert pa.concat_tables(parts).equals(expected)


@pytest.mark.parametrize("library", ["pandas", "polars", "duckdb"])
def test_audit_and_simulate_of_a_dataframe_equal_those_of_the_table(library):
    table = _episodes()
    grouper = _grouper()
    assert audit(FRAMES[library](table), grouper).equals(audit(table, grouper))
    baseline = Baseline(
        grouper, load_weights(DEMO_TABLES / "weights_demo.csv"), load_financing(DEMO_TABLES / "financing_demo.toml")
    )
    scenario = Scenario(recodings=[PromoteSpecificSecondary()])
    expected = simulate(table, baseline, scenario).episodes
    assert simulate(FRAMES[library](table), baseline, scenario).episodes.equals(expected)


@pytest.mark.parametrize("library", ["pandas", "polars", "duckdb"])
def test_read_episodes_of_a_wide_dataframe_equals_that_of_the_table(library):
    wide = pa.table(
        {
            "id": ["a", "b", "c"],
            "sex": [1, 2, None],
            "age_days": [20000, 300, 9000],
            "duration_days": [3, 0, 1],
            "dg1": ["I21.9", "j189", ""],
            "dg2": ["E119", None, "R509"],
            "proc1": ["FNG05", "", None],
        }
    )
    expected = read_episodes(wide, layout="wide", id_column="id")
    assert read_episodes(FRAMES[library](wide), layout="wide", id_column="id").equals(expected)


def test_not_a_dataframe_is_refused_clearly():
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        _grouper().group([{"episode_id": "a"}])


def test_nordgroup_imports_neither_pandas_nor_polars():
    """Outside `nordgroup.dask` (Dask's partitions are pandas frames), the stream interface only."""
    imported = set()
    package = Path(__file__).parents[1] / "src" / "nordgroup"
    for path in sorted(set(package.rglob("*.py")) - {package / "dask.py"}):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert not imported & {"pandas", "polars", "duckdb"}
