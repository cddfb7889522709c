"""Block lists in layers (issue 18): the default, a regional and a unit list combine, entries can
target procedures and carry validity dates, and each finding names the layer and line."""

from __future__ import annotations

import datetime

import pyarrow as pa
import pytest

from nordgroup.cli.grammar import main
from nordgroup.episodes.layouts import episodes_from_records, write_table
from nordgroup.review.blocklist import BlockListError, layered_block_list, load_block_list
from nordgroup.review.findings import audit

from .conftest import RELEASES, shared_path

YEAR = 2017
REGIONAL = """\
# regional list
[[block]]
code = "I10"
role = "secondary"
reason = "regional rule: write the specific hypertension code"

[[block]]
code = "NFB40"
target = "procedure"
role = "principal"
reason = "regional rule: a hip prosthesis is not the first procedure of this clinic"
"""
UNIT = """code,role,reason,target,valid_from,valid_to
R69,principal,unit rule: find the diagnosis,,2017-07-01,
JAE00,any,unit rule: this unit does not code appendectomy,procedure,,2016-12-31
"""


@pytest.fixture(scope="module")
def grouper(nor_grouper):
    return nor_grouper(YEAR)


def _episodes(rows: list[tuple[str, list[str], list[str], str]]) -> pa.Table:
    return episodes_from_records(
        [
            {
                "episode_id": episode_id,
                "sex": 1,
                "age_days": 20_000,
                "duration_days": 3,
                "discharge": "E",
                "diagnoses": diagnoses,
                "procedures": procedures,
                "admitted": datetime.date.fromisoformat(day),
            }
            for episode_id, diagnoses, procedures, day in rows
        ]
    )


@pytest.fixture()
def layers(tmp_path):
    (tmp_path / "vgr.toml").write_text(REGIONAL)
    (tmp_path / "ward7.csv").write_text(UNIT)
    return [("regional", tmp_path / "vgr.toml"), ("unit", tmp_path / "ward7.csv")]


def _found(findings: pa.Table) -> dict[tuple[str, str], str]:
    return {(r["episode_id"], r["kind"]): r["text"] for r in findings.to_pylist() if r["kind"].startswith("blocked")}


def test_layers_combine_and_findings_name_layer_and_line(grouper, layers, tmp_path):
    episodes = _episodes(
        [
            ("external-cause", ["V010", "S7200"], [], "2017-03-01"),  # default layer
            ("hypertension", ["I210", "I10"], [], "2017-03-01"),  # regional layer
            ("prosthesis-first", ["M161"], ["NFB40", "NFB99"], "2017-03-01"),  # regional, procedure
            ("prosthesis-second", ["M161"], ["NFB99", "NFB40"], "2017-03-01"),  # not first: allowed
            ("vague-before", ["R69"], [], "2017-06-30"),  # unit entry not yet valid
            ("vague-after", ["R69"], [], "2017-07-01"),  # unit entry valid
        ]
    )
    findings = audit(episodes, grouper, block_list=layers, date_column="admitted")
    found = _found(findings)
    assert set(found) == {
        ("external-cause", "blocked_principal"),
        ("hypertension", "blocked_secondary"),
        ("prosthesis-first", "blocked_procedure"),
        ("vague-after", "blocked_principal"),
    }
    default = "default layer: nordgroup/data/default_block_list.toml, line 11"
    assert default in found["external-cause", "blocked_principal"]
    assert f"regional layer: {tmp_path / 'vgr.toml'}, line 2" in found["hypertension", "blocked_secondary"]
    assert f"regional layer: {tmp_path / 'vgr.toml'}, line 7" in found["prosthesis-first", "blocked_procedure"]
    assert found["prosthesis-first", "blocked_procedure"].startswith("NFB40 must not be the first procedure")
    assert f"unit layer: {tmp_path / 'ward7.csv'}, line 2" in found["vague-after", "blocked_principal"]


def test_without_a_date_column_the_tables_year_decides(grouper, layers):
    """JAE00 is blocked only until 2016-12-31: not applied with the 2017 tables; R69 from July 2017: applied."""
    episodes = _episodes([("vague", ["R69"], [], "2017-01-01"), ("appendix", ["K359"], ["JAE00"], "2017-01-01")])
    found = _found(audit(episodes, grouper, block_list=layers))
    assert set(found) == {("vague", "blocked_principal")}
    index = episodes.column_names.index("admitted")
    episodes = episodes.set_column(index, "admitted", pa.array([None, datetime.date(2016, 5, 1)]))
    dated = _found(audit(episodes, grouper, block_list=layers, date_column="admitted"))
    assert ("appendix", "blocked_procedure") in dated  # an episode of 2016 meets the 2016 entry


def test_the_cli_layers_lists_on_the_default(grouper, layers, tmp_path):
    day = "2017-03-01"
    episodes = _episodes([("hypertension", ["I210", "I10"], [], day), ("external", ["V010"], [], day)])
    write_table(episodes, tmp_path / "e.parquet")
    tables = shared_path("norddrg", "nor", RELEASES[YEAR])
    base = ["audit", str(tmp_path / "e.parquet"), "--tables", str(tables), "--out", str(tmp_path / "f.parquet")]
    assert main([*base, "--block-list", f"regional={layers[0][1]}"]) == 0
    assert {("hypertension", "blocked_secondary"), ("external", "blocked_principal")} <= _kinds(tmp_path)
    assert main([*base, "--block-list", "none", "--block-list", f"regional={layers[0][1]}"]) == 0
    kinds = _kinds(tmp_path)
    assert ("hypertension", "blocked_secondary") in kinds and ("external", "blocked_principal") not in kinds


def _kinds(folder) -> set[tuple[str, str]]:
    import pyarrow.parquet as pq

    findings = pq.read_table(folder / "f.parquet")
    return set(zip(findings.column("episode_id").to_pylist(), findings.column("kind").to_pylist(), strict=True))


def test_layered_list_keeps_every_entry_in_order(layers):
    combined = layered_block_list(layers)
    assert [entry.layer for entry in combined.entries][-4:] == ["regional", "regional", "unit", "unit"]
    assert combined.entries[0].layer == "default"
    assert len(layered_block_list(layers, default=False).entries) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[block]]\ncode = "R69"\nrole = "principal"\nreason = "x"\nvalid_from = "July"\n',
         "valid_from 'July' is not a date"),
        ('[[block]]\ncode = "R69"\nrole = "principal"\nreason = "x"\nvalid_from = 2018-01-01\nvalid_to = 2017-01-01\n',
         "valid_from 2018-01-01 is after valid_to 2017-01-01"),
        ('[[block]]\ncode = "NFB40"\ntarget = "procedure"\nrole = "combination"\nwith = "X"\nreason = "x"\n',
         "a procedure entry has role principal or any"),
        ('[[block]]\ncode = "NFB40"\ntarget = "surgery"\nrole = "any"\nreason = "x"\n',
         "target 'surgery' is not one of"),
    ],
)  # fmt: skip
def test_bad_entries_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BlockListError, match=f"bad.toml, line 1: {message}"):
        load_block_list(path)
