"""`DrgTables.export` and `nordgroup tables export`: NDMS CSV and Excel written, read back the same.

The Norwegian releases 2015–2017 are the full-scale test of the NDMS and Excel readers on real
logic (20 000 diagnoses, 2 200 rules, exclusions, dagger pairs): exported and loaded again, their
compiled tables are byte for byte the original's, and every oracle episode groups the same.
"""

from __future__ import annotations

import csv

import attrs
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nordgroup as ng
from nordgroup.cli.grammar import main
from nordgroup.engine.compile import CompiledTables, compile_tables
from nordgroup.tables import load_tables
from nordgroup.tables._build import TableBuilder
from nordgroup.tables._export import property_rows
from nordgroup.tables.model import DiagnosisProperties, DrgTables, ProcedureProperties, ReleaseInfo
from tests.conftest import DEMO_TABLES, RELEASES, shared_path

ANSWERS = ("drg", "rule", "rtc", "cc_level")
MODEL = ("rules", "diagnoses", "procedures", "complication_categories", "exclusions", "drgs", "return_codes")


def _same_tables(left: DrgTables, right: DrgTables) -> None:
    for name in MODEL:
        assert getattr(left, name) == getattr(right, name), name
    for name in ("country", "year", "release", "national_version", "codes"):
        assert getattr(left.release, name) == getattr(right.release, name), name


def _same_compiled(left: CompiledTables, right: CompiledTables) -> None:
    """Every array equal in type, shape and bytes; every index and value list equal."""
    for field in attrs.fields(CompiledTables):
        if field.name == "source_hash":  # a hash of the bytes read, which are not the same files
            continue
        a, b = getattr(left, field.name), getattr(right, field.name)
        arrays = isinstance(a, np.ndarray) or (isinstance(a, tuple) and isinstance(a[0], np.ndarray))
        if arrays:
            for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
                assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), field.name
        else:
            assert a == b, field.name


def _answers(grouper: ng.Grouper, episodes: pa.Table) -> list[tuple]:
    result = grouper.group(episodes)
    return list(zip(*(result[column].to_pylist() for column in ANSWERS), strict=True))


# --- the demo tables ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return load_tables(DEMO_TABLES)


@pytest.mark.parametrize("format", ["ndms", "excel"])
def test_demo_round_trip(demo, tmp_path, format):
    if format == "excel":
        pytest.importorskip("xlsxwriter")
        pytest.importorskip("python_calamine")
    written = demo.export(tmp_path / ("demo.xlsx" if format == "excel" else "demo"), format=format)
    again = load_tables(written)
    _same_tables(again, demo)
    assert again.release.release == "grouper_tables"  # from readme, not from the new name
    assert again.findings == demo.findings == ()
    _same_compiled(compile_tables(again), compile_tables(demo))


def test_export_writes_the_ndms_layout(demo, tmp_path):
    folder = demo.export(tmp_path / "out")
    assert sorted(path.name for path in folder.iterdir()) == [
        *("compl_excl.csv", "compl_name.csv", "dg_feat.csv", "drg_logic.csv", "drg_name.csv", "proc_feat.csv"),
        *("readme.csv", "rtc.csv"),
    ]
    with (folder / "drg_logic.csv").open(encoding="utf-8", newline="") as file:
        header, *rules = csv.reader(file)
    assert header[:4] == ["ord", "id", "drg_nat", "drg_text_nat"] and header[-1] == "nat_ver"
    assert [int(rule[0]) for rule in rules] == [10 * (i + 1) for i in range(len(demo.rules))]
    assert {rule[-1] for rule in rules} == {"demo"}
    with (folder / "proc_feat.csv").open(encoding="utf-8", newline="") as file:
        header, *rows = csv.reader(file)
    or_values = {row[0]: row[header.index("or_val")] for row in rows}
    assert or_values == {code: str(max(props.or_values, default=0)) for code, props in demo.procedures.items()}


def test_unknown_format_is_refused(demo, tmp_path):
    with pytest.raises(ValueError, match=r"format='csv': choose one of ndms, excel"):
        demo.export(tmp_path / "x", format="csv")


def test_cli_export_guesses_the_format_from_the_name(demo, tmp_path, capsys, monkeypatch):
    pytest.importorskip("xlsxwriter")
    pytest.importorskip("python_calamine")
    monkeypatch.setenv("NORDGROUP_CACHE", str(tmp_path / "cache"))
    assert main(["tables", "export", str(DEMO_TABLES), str(tmp_path / "demo.xlsx")]) == 0
    assert f"80 rules, 117 diagnoses, 36 procedures, 70 DRGs written to {tmp_path / 'demo.xlsx'} (excel)" in (
        capsys.readouterr().out
    )
    _same_tables(load_tables(tmp_path / "demo.xlsx"), demo)
    assert main(["tables", "export", str(DEMO_TABLES), str(tmp_path / "folder")]) == 0
    assert "(ndms)" in capsys.readouterr().out
    _same_tables(load_tables(tmp_path / "folder"), demo)


_VALUES = st.sampled_from(["01X01", "01X02", "05P01", "13O04", "98M03"])
_SETS = st.frozensets(_VALUES, max_size=3)
_NUMBERS = st.frozensets(st.integers(0, 2), max_size=2)  # several rows of one kind: LFB30 has OR 1 and OR 2


@given(
    st.builds(
        DiagnosisProperties,
        mdc=st.sampled_from(["", "01", "98"]),
        dgcat=st.sampled_from(["", "01M01"]),
        pdgprop=_SETS,
        dgprop=_SETS,
        sdgprop=_SETS,
        compl=_SETS,
        procpr=_SETS,
        or_values=_NUMBERS,
    ),
    st.builds(ProcedureProperties, or_values=_NUMBERS, procpr=_SETS, cc_values=_NUMBERS, dgprop=_SETS),
)
def test_property_rows_read_back_as_the_properties(diagnosis, procedure):
    builder = TableBuilder("test")
    for kind, value in property_rows(diagnosis):
        builder.add_diagnosis_property(1, "A000", "", kind, value)
    for kind, value in property_rows(procedure):
        builder.add_procedure_property(1, "AAA00", kind, value)
    tables = builder.build(ReleaseInfo(country="", year=None, release="", layout="test", source_hash=""))
    # A code carrying nothing is still listed (its OR 0 row), so it stays a known code.
    assert tables.diagnoses == {("A000", ""): diagnosis if diagnosis.rows() else attrs.evolve(diagnosis, or_values={0})}
    assert tables.procedures == {"AAA00": procedure if procedure.rows() else attrs.evolve(procedure, or_values={0})}


# --- the Norwegian releases at full scale -------------------------------------------------------


def _has_excel() -> bool:
    try:
        import python_calamine  # noqa: F401
        import xlsxwriter  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("year", sorted(RELEASES))
def test_nor_round_trip(year, nor_tables, nor_grouper, tmp_path):
    """One test per year, so that each release is exported and loaded once, whatever runs the tests in parallel."""
    original = nor_grouper(year)
    exported = {"ndms": nor_tables(year).export(tmp_path / "ndms")}
    if _has_excel():
        exported["excel"] = nor_tables(year).export(tmp_path / f"NOR{year}.xlsx", format="excel")
    episodes = pa.concat_tables(
        ng.read_episodes(shared_path("norddrg", "nor", f"oracle_{kind}_{year}.csv.gz"), layout="nor-string")
        for kind in ("random", "directed")
    )
    assert episodes.num_rows > 10_000
    expected = _answers(original, episodes)
    for format, path in exported.items():
        tables = load_tables(path)
        # the model and the release-level values: rtc meanings, DRG names, release name and year
        _same_tables(tables, original.tables)
        assert tables.release.label == f"NOR {year} {original.tables.release.release}", format
        assert tables.release.layout == {"ndms": "ndms-csv", "excel": "excel"}[format]
        # the compiled arrays, byte for byte
        grouper = ng.Grouper(tables, compiled=compile_tables(tables))
        _same_compiled(grouper.compiled, original.compiled)
        # every oracle episode: DRG, rule, return code, CC level
        assert _answers(grouper, episodes) == expected, format
