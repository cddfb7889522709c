"""Codes with several rows of one kind: every row is kept, tested, and reported when it conflicts.

The 2017 Norwegian `proc` table lists LFB30 with OR 1 and, further down, with OR 2 and PROCPR
13O04; the official grouper tests each row, so `or_proc S` holds for it (docs/semantics.md).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nordgroup as ng
from nordgroup.engine.reference import Episode, group_episode
from nordgroup.episodes.layouts import episodes_from_records
from tests import strategies
from tests.conftest import DEMO_TABLES
from tests.helpers import reference_episodes

YEAR = 2017


def _compiled_equals_reference(grouper, tables, batch: pa.Table) -> None:
    for row, episode in zip(grouper.group(batch).to_pylist(), reference_episodes(batch), strict=True):
        expected = group_episode(tables, episode)
        rule = expected.rule.id if expected.rule else None
        assert (row["drg"], row["rtc"], row["rule"], row["cc_level"]) == (
            expected.drg,
            expected.rtc,
            rule,
            expected.features.cc_level,
        ), episode


def test_lfb30_keeps_both_or_rows_and_groups_as_the_official_grouper(nor_tables, nor_grouper):
    tables = nor_tables(YEAR)
    lfb30 = tables.procedures["LFB30"]
    assert lfb30.or_values == {1, 2}
    assert {("OR", "1"), ("OR", "2"), ("PROCPR", "13S04"), ("PROCPR", "13O04")} <= set(lfb30.rows())
    conflicts = [f for f in tables.findings if f.kind == "two-or"]
    assert [f.message for f in conflicts] == ["LFB30: OR 1 in row 19388 and OR 2 in row 44794"]
    assert conflicts[0].table == "proc" and conflicts[0].row == 44794

    # a woman with C56 (ovarian cancer) and LFB30, a one-day stay: rule 113D1010 (or_proc S, 13S04)
    episode = Episode((("C56", ""),), ("LFB30",), sex=2, age_days=20_000, duration_days=0, discharge="N")
    expected = group_episode(tables, episode)
    assert (expected.drg, expected.rule.id, expected.rtc) == ("360O", "113D1010", "0")
    record = {"episode_id": "1", "diagnoses": ["C56"], "procedures": ["LFB30"], "sex": 2}
    record |= {"age_days": 20_000, "duration_days": 0, "discharge": "N"}
    grouped = nor_grouper(YEAR).group(episodes_from_records([record])).to_pylist()[0]
    assert (grouped["drg"], grouped["rule"], grouped["rtc"]) == ("360O", "113D1010", "0")


def test_a_repeated_row_is_a_finding_naming_both_rows(nor_tables):
    findings = [f for f in nor_tables(YEAR).findings if f.kind == "duplicate-row"]
    assert [f.message for f in findings] == ["S278: DGPROP 04X01 in rows 59990 and 59991"]


def test_lfb30_anywhere_among_procedures_groups_alike_compiled_and_reference(nor_tables, nor_grouper):
    """First or later procedure (`secpro +` reads OR 1 of a later one), the kernel equals the reference."""
    tables, grouper = nor_tables(YEAR), nor_grouper(YEAR)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategies.episodes(tables, max_size=20), st.integers(0, 6))
    def check(batch: pa.Table, where: int) -> None:
        procedures = batch["procedures"].to_pylist()
        for written in procedures:
            written.insert(where % (len(written) + 1), "LFB30")
        batch = batch.set_column(
            batch.schema.get_field_index("procedures"), "procedures", pa.array(procedures, pa.list_(pa.string()))
        )
        _compiled_equals_reference(grouper, tables, batch)

    check()


def _demo_rows(name: str) -> list[list[str]]:
    return list(csv.reader((DEMO_TABLES / name).read_text(encoding="utf-8").splitlines()))[1:]


def test_extra_rows_of_every_kind_keep_the_kernel_equal_to_the_reference():
    """Random extra rows for demo codes (a second OR, CC, PROCPR, DGPROP, MDC, ... value): nothing is
    lost from the model, and the compiled engine still equals the reference on random episodes."""
    procedure_rows, diagnosis_rows = _demo_rows("proc_feat.csv"), _demo_rows("dg_feat.csv")
    procedures = sorted({row[0] for row in procedure_rows})
    diagnoses = sorted({row[0] for row in diagnosis_rows if not row[1]})
    procedure_values = sorted({(row[2], row[3]) for row in procedure_rows if row[2] in ("OR", "PROCPR", "DGPROP")})
    procedure_values += [("OR", "1"), ("OR", "2"), ("CC", "1"), ("CC", "2")]
    diagnosis_values = sorted({(row[4], row[5]) for row in diagnosis_rows if row[4]})
    diagnosis_values += [("OR", "1"), ("OR", "2")]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.tuples(st.sampled_from(procedures), st.sampled_from(procedure_values)), min_size=1, max_size=10),
        st.lists(st.tuples(st.sampled_from(diagnoses), st.sampled_from(diagnosis_values)), max_size=10),
        st.data(),
    )
    def check(procedure_extra, diagnosis_extra, data) -> None:
        with tempfile.TemporaryDirectory() as folder:
            shutil.copytree(DEMO_TABLES, folder, dirs_exist_ok=True)
            with (Path(folder) / "proc_feat.csv").open("a", encoding="utf-8") as out:
                out.writelines(f"{code},extra,{kind},{value},,demo\n" for code, (kind, value) in procedure_extra)
            with (Path(folder) / "dg_feat.csv").open("a", encoding="utf-8") as out:
                out.writelines(f"{code},,extra,,{kind},{value},,demo\n" for code, (kind, value) in diagnosis_extra)
            tables = ng.load_tables(folder)
        for code, row in procedure_extra:
            assert row in tables.procedures[code].rows()
        for code, (kind, value) in diagnosis_extra:
            # MDC and DGCAT stay one value (the first row); every other row is kept
            assert kind in ("MDC", "DGCAT") or (kind, value) in tables.diagnoses[(code, "")].rows()
        grouper = ng.Grouper(tables, cache=False)
        _compiled_equals_reference(grouper, tables, data.draw(strategies.episodes(tables, max_size=30)))

    check()
