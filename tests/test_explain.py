"""`explain_episode` agrees with the compiled `Grouper` on random episodes from the real tables."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nordgroup.engine.explain import episode_from_row, explain_episode
from nordgroup.episodes.layouts import episodes_from_records
from tests.conftest import DEMO_TABLES

YEAR = 2017


def episode_records(tables) -> st.SearchStrategy[dict]:
    """Random canonical episode rows drawn from the codes of `tables`, ages and durations at the limits."""
    diagnoses = sorted(code for code, dagger in tables.diagnoses if not dagger)
    pairs = sorted(f"{dagger} {code}" for code, dagger in tables.diagnoses if dagger)
    procedures = sorted(tables.procedures)
    limits = sorted({r.agelim.days + d for r in tables.rules if r.agelim for d in (-1, 0, 1)})
    written = st.one_of(st.sampled_from(diagnoses), st.sampled_from(pairs)) if pairs else st.sampled_from(diagnoses)
    return st.fixed_dictionaries(
        {
            "episode_id": st.just("1"),
            "diagnoses": st.lists(written, min_size=1, max_size=6),
            "procedures": st.lists(st.sampled_from(procedures), max_size=4),
            "sex": st.sampled_from([1, 2, None]),
            "age_days": st.one_of(st.sampled_from(limits or [0]), st.integers(0, 40_000), st.none()),
            "duration_days": st.one_of(st.integers(0, 30), st.none()),
            "discharge": st.sampled_from(["E", "N", "R", "H", None]),
        }
    )


def _agrees(grouper, tables, records: list[dict]) -> None:
    result = grouper.group(episodes_from_records(records)).to_pylist()
    for record, row in zip(records, result, strict=True):
        explanation = explain_episode(tables, record)
        got = (explanation.drg, explanation.rtc, explanation.rule_id, explanation.cc_level)
        assert got == (row["drg"], row["rtc"], row["rule"], row["cc_level"]), record
        json.dumps(explanation.to_dict())
        assert str(explanation)


@pytest.fixture(scope="module")
def tables_2017(nor_tables):
    return nor_tables(YEAR)


def test_explain_agrees_with_group(nor_grouper, tables_2017):
    grouper = nor_grouper(YEAR)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(episode_records(tables_2017), min_size=1, max_size=20))
    def check(records):
        _agrees(grouper, tables_2017, records)

    check()


def test_explanation_names_its_sources(tables_2017):
    record = {"diagnoses": ["I210", "E119"], "procedures": ["FNG02"], "sex": 1, "age_days": 25000, "duration_days": 4}
    explanation = explain_episode(tables_2017, record, weights={"112F": 1.5})
    assert explanation.drg == "112F"
    assert explanation.weight == 1.5
    assert explanation.cc_sources == ("E119",)
    assert any(f.kind == "procpr" and f.value == "05S25" and f.codes == ("FNG02",) for f in explanation.features)
    assert all(check.position < explanation.rule_position for check in explanation.rules_above)
    text = str(explanation)
    assert "DRG 112F" in text and "E119" in text and "05S25" in text


def test_episode_from_row_cleans_like_the_grouper():
    episode = episode_from_row({"diagnoses": ["I21.0 ", "G63.2*E11.4†"], "procedures": ["fng02"], "discharge": "H"})
    assert episode.diagnoses == (("I210", ""), ("E114", "G632"))
    assert episode.procedures == ("FNG02",)
    assert episode.discharge == "N"


def test_explain_on_the_demo_tables():
    if not (DEMO_TABLES / "drg_logic.csv").exists():
        pytest.skip("demo tables not present")
    from nordgroup import Grouper, load_tables

    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables, cache=False)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(episode_records(tables), min_size=1, max_size=10))
    def check(records):
        _agrees(grouper, tables, records)

    check()


def test_the_return_code_meaning_says_whether_the_release_gives_it(tables_2017):
    """The Norwegian JSON has no rtc table: its meanings are nordgroup's defaults, and say so; the demo
    NDMS tables carry their own, shown as they are."""
    from nordgroup import load_tables
    from nordgroup.tables.model import RETURN_CODE_MEANINGS

    record = {"diagnoses": ["I210"], "sex": 1, "age_days": 20_000, "duration_days": 3, "discharge": "N"}
    norwegian = explain_episode(tables_2017, record)
    assert norwegian.rtc == "0" and not tables_2017.return_codes
    as_dict = norwegian.to_dict()
    assert (as_dict["rtc_meaning"], as_dict["rtc_meaning_source"]) == (RETURN_CODE_MEANINGS["0"], "default")
    assert "rtc 0: grouping completed [nordgroup's default meaning" in str(norwegian).splitlines()[0]

    demo = load_tables(DEMO_TABLES)
    own = explain_episode(demo, {**record, "diagnoses": ["I630"]})
    assert own.rtc in demo.return_codes
    assert (own.to_dict()["rtc_meaning"], own.to_dict()["rtc_meaning_source"]) == (demo.return_codes[own.rtc], "tables")
    assert "default" not in str(own).splitlines()[0]
    assert demo.return_code_meaning("NO_RULE").source == "default"  # not in the demo rtc table
    assert str(demo.return_code_meaning("ZZ")) == "meaning not in the tables"
