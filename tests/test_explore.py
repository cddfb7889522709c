"""`drgs_for_code` is sound and its examples reach every DRG; code_info, drg_contents and diff_tables."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nordgroup.episodes import episodes_from_records
from nordgroup.explore import code_info, code_satisfies, diff_tables, drg_contents, drgs_for_code
from nordgroup.reference import Episode, group_episode
from tests.conftest import DEMO_TABLES

YEAR = 2017
# codes chosen to cover a principal with many DRGs, a CC-giving secondary and an OR=2 procedure
CASES = [
    ("I210", "principal"),
    ("J189", "principal"),
    ("E119", "secondary"),
    ("I210", "secondary"),
    ("FNG02", "procedure"),
]


@pytest.fixture(scope="module")
def tables_2017(nor_tables):
    return nor_tables(YEAR)


def _record(episode) -> dict:
    return {
        "episode_id": "1",
        "diagnoses": [f"{d} {a}".strip() for d, a in episode.diagnoses],
        "procedures": list(episode.procedures),
        "sex": episode.sex,
        "age_days": episode.age_days,
        "duration_days": episode.duration_days,
        "discharge": episode.discharge,
    }


@pytest.mark.parametrize(("code", "role"), CASES)
def test_examples_reach_every_drg(tables_2017, nor_grouper, code, role):
    answer = drgs_for_code(tables_2017, code, role)
    assert answer.drgs
    drgs = list(answer.drgs)
    records = [_record(answer.examples[d]) for d in drgs]
    result = nor_grouper(YEAR).group(episodes_from_records(records)).column("drg").to_pylist()
    assert result == drgs
    for drg in drgs:
        rule = next(r for r in tables_2017.rules if r.id == answer.rules[drg])
        assert code_satisfies(rule, answer.examples[drg], code, role, tables_2017)


@pytest.mark.parametrize(("code", "role"), CASES)
def test_no_drg_outside_the_answer(tables_2017, code, role):
    answer = drgs_for_code(tables_2017, code, role)
    allowed = set(answer.drgs) | {r.drg for r in tables_2017.rules if r.id in answer.unconfirmed}
    diagnoses = sorted(c for c, dagger in tables_2017.diagnoses if not dagger)
    procedures = sorted(tables_2017.procedures)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        principal=st.sampled_from(diagnoses),
        secondaries=st.lists(st.sampled_from(diagnoses), max_size=4),
        others=st.lists(st.sampled_from(procedures), max_size=3),
        where=st.integers(0, 4),
        sex=st.sampled_from([1, 2, None]),
        age=st.one_of(st.integers(0, 40_000), st.sampled_from([0, 7, 28, 29, 365, 6574, 45654, 45655])),
        duration=st.integers(0, 30),
        discharge=st.sampled_from(["E", "N", "R", None]),
    )
    def check(principal, secondaries, others, where, sex, age, duration, discharge):
        dx = [(principal, "")] + [(c, "") for c in secondaries]
        px = list(others)
        if role == "principal":
            dx[0] = (code, "")
        elif role == "secondary":
            dx.insert(1 + where % len(dx), (code, ""))
        else:
            px.insert(where % (len(px) + 1), code)
        episode = Episode(tuple(dx), tuple(px), sex, age, duration, discharge)
        result = group_episode(tables_2017, episode)
        if result.rule is not None and code_satisfies(result.rule, episode, code, role, tables_2017):
            assert result.drg in allowed, (episode, result.rule)

    check()


def test_drgs_for_code_is_fast(tables_2017):
    import time

    drgs_for_code(tables_2017, "I210")  # builds the per-table indexes once
    start = time.perf_counter()
    drgs_for_code(tables_2017, "J189", "principal")
    assert time.perf_counter() - start < 1.0


def test_code_info_names_every_property(tables_2017):
    info = code_info(tables_2017, "I21.0")
    assert ("diagnosis", "MDC", "05") in info.properties
    assert ("diagnosis", "COMPL", "05G01") in info.properties
    assert info.to_arrow().num_rows == len(info.properties)
    assert not code_info(tables_2017, "XXXX").known


def test_drg_contents(tables_2017):
    contents = drg_contents(tables_2017, "5O")
    assert [c.rule.id for c in contents.rules] == [r.id for r in tables_2017.rules if r.drg == "5O"]
    assert all(c.principals for c in contents.rules)
    assert "procpro 01S03" in contents.rules[0].procedures
    assert contents.to_arrow().num_rows > 0 and "DRG 5O" in str(contents)


def test_diff_tables(nor_tables):
    before, after = nor_tables(2016), nor_tables(YEAR)
    diff = diff_tables(before, after)
    kinds = {(kind, change) for kind, _, change, _, _ in diff.changes}
    assert ("rule", "added") in kinds or ("rule", "changed") in kinds
    assert diff.to_arrow().num_rows == len(diff.changes)
    assert diff_tables(after, after).changes == ()
    assert "->" in str(diff)


def test_explore_on_the_demo_tables():
    if not (DEMO_TABLES / "drg_logic.csv").exists():
        pytest.skip("demo tables not present")
    from nordgroup import Grouper, load_tables

    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables, cache=False)
    code = next(c for c, dagger in tables.diagnoses if not dagger and tables.diagnoses[(c, dagger)].mdc)
    answer = drgs_for_code(tables, code)
    records = [_record(answer.examples[d]) for d in answer.drgs]
    assert grouper.group(episodes_from_records(records)).column("drg").to_pylist() == list(answer.drgs)
    assert code_info(tables, code).known
    assert drg_contents(tables, answer.drgs[0]).rules
