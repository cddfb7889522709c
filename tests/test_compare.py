"""Comparing two codings: planted differences are all found, the metrics equal hand-computed
values, unmatched episodes are listed, and intervals cover known rates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nordgroup import Grouper, episodes_from_records, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import group_and_price
from nordgroup.money.weights import load_weights
from nordgroup.review._agreement import MIN_EPISODES, TOO_FEW
from nordgroup.review.comparison import compare, icd10_chapter
from tests.conftest import DEMO_TABLES

YEAR = 2017
_PATIENT = {"sex": 2, "age_days": 25000, "duration_days": 5, "discharge": "N", "unit": "med"}


def _episode(episode_id: str, diagnoses: list[str], procedures: list[str] = (), **fields) -> dict:
    return {**_PATIENT, "episode_id": episode_id, "diagnoses": diagnoses, "procedures": list(procedures), **fields}


CODING_A = [
    _episode("e1", ["J189", "E871", "I10"]),
    _episode("e2", ["I210", "E119", "J189"], ["FNG05"], sex=1),
    _episode("e3", ["K359"], ["JEA01"], duration_days=0, unit="surg"),
    _episode("e4", ["J189", "I10"]),
    _episode("e5", ["J189", "E871"]),
    _episode("e6", ["I500", "E119"]),
    _episode("a-only", ["J189"]),
    _episode("dup", ["J189"]),
]
CODING_B = [
    _episode("e6", ["I500", "E119"]),  # another order: the join is on episode_id
    _episode("e1", ["J18.9", "E871", "i10 "]),  # the same codes, written differently
    _episode("e2", ["I210", "E119"], [], sex=1),  # secondary J189 and procedure FNG05 missed
    _episode("e3", ["K358"], ["JEA01"], duration_days=0, unit="surg"),  # principal: same 3 characters
    _episode("e4", ["J189", "I10", "E871"]),  # secondary E871 added
    _episode("e5", ["J159", "E871"]),  # principal: another 3-character category
    _episode("b-only", ["J189"]),
    _episode("dup", ["J189"]),
    _episode("dup", ["J180"]),
]


@pytest.fixture
def planted(nor_grouper):
    grouper = nor_grouper(YEAR)
    a, b = episodes_from_records(CODING_A), episodes_from_records(CODING_B)
    return grouper, a, b, compare(a, b, grouper, replicates=50)


def test_every_planted_difference_is_found(planted):
    grouper, a, _, result = planted
    rows = {row["episode_id"]: row for row in result.episodes.to_pylist()}
    assert list(rows) == ["e1", "e2", "e3", "e4", "e5", "e6"]  # A's order
    assert [(r["principal_equal"], r["principal_3_equal"]) for r in rows.values()] == [
        (True, True), (True, True), (False, True), (True, True), (False, False), (True, True),
    ]  # fmt: skip
    assert rows["e1"]["secondary_both"] == ["E871", "I10"] and rows["e1"]["secondary_only_b"] == []
    assert rows["e2"]["secondary_only_a"] == ["J189"] and rows["e2"]["procedures_only_a"] == ["FNG05"]
    assert rows["e3"]["procedures_both"] == ["JEA01"]
    assert rows["e4"]["secondary_only_b"] == ["E871"] and rows["e4"]["secondary_only_a"] == []
    for name in ("e1", "e5", "e6"):
        assert rows[name]["secondary_only_a"] == rows[name]["secondary_only_b"] == [], name
    # the DRGs are the grouper's, side by side; the planted changes of e2 (no PCI) and e4 (a CC) show
    grouped_a = {r["episode_id"]: r for r in grouper.group(a).to_pylist()}
    for name, row in rows.items():
        assert (row["drg_a"], row["cc_level_a"], row["mdc_a"]) == (
            grouped_a[name]["drg"], grouped_a[name]["cc_level"], grouped_a[name]["mdc"],
        )  # fmt: skip
    assert rows["e2"]["drg_changed"] and rows["e4"]["drg_changed"]
    assert (rows["e4"]["drg_a"], rows["e4"]["drg_b"]) == ("90", "89")
    assert not rows["e1"]["drg_changed"] and not rows["e6"]["drg_changed"]


def test_episodes_in_one_coding_only_are_listed_with_the_reason(planted):
    *_, result = planted
    assert sorted(result.unmatched.select(["episode_id", "side", "reason"]).to_pylist(), key=str) == sorted(
        [
            {"episode_id": "a-only", "side": "A", "reason": "only in A: no episode with this id in B"},
            {"episode_id": "dup", "side": "A", "reason": "episode id occurs more than once in B"},
            {"episode_id": "b-only", "side": "B", "reason": "only in B: no episode with this id in A"},
            {"episode_id": "dup", "side": "B", "reason": "episode id occurs more than once in B"},
            {"episode_id": "dup", "side": "B", "reason": "episode id occurs more than once in B"},
        ],
        key=str,
    )
    assert len(result.episodes) + len(result.unmatched) == len(CODING_A) + len(CODING_B) - 6  # 6 pairs


def test_metrics_equal_hand_computed_values(planted):
    *_, result = planted
    drg_changed = sum(result.episodes.column("drg_changed").to_pylist())
    expected = {
        "principal_agreement": 4 / 6,
        "principal_agreement_3": 5 / 6,
        # secondary: A has 7, B has 7, 6 in both (J189 of e2 missed, E871 of e4 added)
        "secondary_precision": 6 / 7,
        "secondary_recall": 6 / 7,
        "secondary_f1": 12 / 14,
        # procedures: A has FNG05 and JEA01, B only JEA01
        "procedure_precision": 1.0,
        "procedure_recall": 1 / 2,
        "procedure_f1": 2 / 3,
        "drg_agreement": (6 - drg_changed) / 6,
    }
    for name, value in expected.items():
        row = result.metric(name)
        assert row["value"] == pytest.approx(value), name
        # six episodes are far below MIN_EPISODES: no interval, said plainly
        assert row["low"] is None and row["high"] is None and row["note"] == TOO_FEW, name
    assert drg_changed >= 2
    # per ICD-10 chapter: IV (E871, E119) has one code added, IX (I10) agrees, X (J189) one missed
    assert result.metric("secondary_precision", "icd10_chapter", icd10_chapter("E871"))["value"] == pytest.approx(4 / 5)
    assert result.metric("secondary_recall", "icd10_chapter", "IV E00-E90")["value"] == 1.0
    assert result.metric("secondary_f1", "icd10_chapter", "IX I00-I99")["value"] == 1.0
    assert result.metric("secondary_recall", "icd10_chapter", "X J00-J99")["value"] == 0.0
    assert result.metric("secondary_precision", "icd10_chapter", "X J00-J99")["value"] is None
    assert result.metric("procedure_recall", "ncsp_chapter", "F")["value"] == 0.0
    # per unit and care type: e3 is the surgical outpatient, its principal differs at the full code
    assert result.metric("principal_agreement", "unit", "surg")["value"] == 0.0
    assert result.metric("principal_agreement", "unit", "med")["value"] == pytest.approx(4 / 5)
    assert result.metric("principal_agreement_3", "care_type", "outpatient")["value"] == 1.0
    with pytest.raises(KeyError):
        result.metric("points_difference_sum")  # no weights: no points metrics
    confusion = result.confusion.filter(result.confusion.column("changed")).to_pylist()
    assert {(row["drg_a"], row["drg_b"]) for row in confusion} >= {("90", "89")}
    assert sum(row["episodes"] for row in confusion) == drg_changed


def test_icd10_chapters():
    assert [icd10_chapter(code) for code in ("A099", "D489", "D500", "H599", "H600", "U071", "Z380", "1234", "")] == [
        "I A00-B99", "II C00-D48", "III D50-D89", "VII H00-H59", "VIII H60-H95", "XXII U00-U99", "XXI Z00-Z99",
        "(other)", "(other)",
    ]  # fmt: skip


def _ai_coding(episodes: pa.Table, drop: float, add: float, seed: int) -> tuple[pa.Table, int, int, int]:
    """Another coding of `episodes`: each secondary diagnosis dropped with probability `drop`, and
    per episode a secondary diagnosis (from another episode) added with probability `add`.
    Returns the coding, and the counts of A's codes, of codes dropped and of codes added."""
    rng = np.random.default_rng(seed)
    diagnoses = episodes.column("diagnoses").to_pylist()
    pool = sorted({code for codes in diagnoses for code in codes[1:]})
    out, kept_total, dropped, added = [], 0, 0, 0
    for codes in diagnoses:
        secondary = list(dict.fromkeys(codes[1:]))
        keep = [code for code in secondary if rng.random() >= drop]
        dropped += len(secondary) - len(keep)
        kept_total += len(secondary)
        if rng.random() < add:
            extra = pool[rng.integers(len(pool))]
            if extra not in secondary and extra != codes[0]:
                keep.append(extra)
                added += 1
        out.append([codes[0], *keep])
    column = pa.array(out, pa.list_(pa.string()))
    return (
        episodes.set_column(episodes.column_names.index("diagnoses"), "diagnoses", column),
        kept_total,
        dropped,
        added,
    )


def test_known_rates_are_recovered_within_the_intervals():
    """An "AI" coding that drops 20% of secondary diagnoses: recall ~0.8 inside its interval, and
    the intervals of a large sample are narrow; points come from money's pricing on both sides."""
    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables)
    weights = load_weights(DEMO_TABLES / "weights_demo.csv")
    a = synthesize(tables, 4000, seed=11, units=4)
    b, total, dropped, added = _ai_coding(a, drop=0.2, add=0.1, seed=5)
    result = compare(a, b, grouper, weights=weights, seed=1)
    recall = result.metric("secondary_recall")
    precision = result.metric("secondary_precision")
    assert recall["value"] == pytest.approx((total - dropped) / total)
    assert precision["value"] == pytest.approx((total - dropped) / (total - dropped + added))
    for row, rate in ((recall, 0.8), (precision, (0.8 * total) / (0.8 * total + 0.1 * len(a)))):
        assert row["low"] <= rate <= row["high"], row
        assert row["high"] - row["low"] < 0.05
        assert row["note"] == ""
    assert result.metric("principal_agreement")["value"] == 1.0
    assert result.metric("procedure_f1")["value"] == 1.0
    # points: B - A summed equals money's pricing of the two codings
    financing = Financing(1.0, 1.0)
    points_a = pc.sum(group_and_price(grouper, a, weights, financing).column("points")).as_py()
    points_b = pc.sum(group_and_price(grouper, b, weights, financing).column("points")).as_py()
    total_difference = result.metric("points_difference_sum")
    priced_both = result.episodes.column("points_difference").is_valid().to_numpy(zero_copy_only=False)
    if priced_both.all():
        assert total_difference["value"] == pytest.approx(points_b - points_a)
    mean = result.metric("points_difference_mean")
    assert mean["value"] == pytest.approx(total_difference["value"] / priced_both.sum())
    assert mean["low"] <= mean["value"] <= mean["high"]
    # a unit of fewer than MIN_EPISODES episodes gets no interval
    small = compare(a.slice(0, MIN_EPISODES - 1), b.slice(0, MIN_EPISODES - 1), grouper, by=[])
    assert small.metric("secondary_recall")["note"] == TOO_FEW
    assert compare(a.slice(0, 200), b.slice(0, 200), grouper).metric("secondary_recall")["note"] == ""


def _secondary_sets(table: pa.Table) -> list[set[str]]:
    """Each episode's secondary diagnoses as codes.py reads them (blank writings dropped)."""
    from nordgroup.codes import split_written_diagnosis

    out = []
    for codes in table.column("diagnoses").to_pylist():
        read = [split_written_diagnosis(code) for code in (codes or [])[1:]]
        out.append({f"{d} {s}" if s else d for d, s, _ in read} - {""})
    return out


def test_properties_on_random_codings(nor_grouper, nor_tables):
    """On random codings: A against itself agrees everywhere; swapping A and B swaps precision and
    recall and the only-A/only-B lists; every per-episode list is the set arithmetic of the codes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests import strategies

    tables, grouper = nor_tables(YEAR), nor_grouper(YEAR)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.integers(1, 15).flatmap(
            lambda n: st.tuples(strategies.episodes(tables, max_size=n), strategies.episodes(tables, max_size=n))
        )
    )
    def check(pair: tuple[pa.Table, pa.Table]) -> None:
        a, b = pair
        same = compare(a, a, grouper, replicates=0)
        assert not any(same.episodes.column("drg_changed").to_pylist())
        for name in ("principal_agreement", "drg_agreement", "cc_level_agreement"):
            assert same.metric(name)["value"] == 1.0
        forward, backward = compare(a, b, grouper, replicates=0), compare(b, a, grouper, replicates=0)
        matched = len(forward.episodes)
        assert matched + len(forward.unmatched) == len(a) + len(b) - matched
        for kind in ("secondary", "procedure"):
            assert forward.metric(f"{kind}_precision")["value"] == backward.metric(f"{kind}_recall")["value"]
        ids = forward.episodes.column("episode_id").to_pylist()
        by_id = {row["episode_id"]: row for row in backward.episodes.to_pylist()}
        rows_a = {row["episode_id"]: i for i, row in enumerate(a.to_pylist())}
        rows_b = {row["episode_id"]: i for i, row in enumerate(b.to_pylist())}
        sets_a, sets_b = _secondary_sets(a), _secondary_sets(b)
        for episode_id, row in zip(ids, forward.episodes.to_pylist(), strict=True):
            assert row["secondary_only_a"] == by_id[episode_id]["secondary_only_b"]
            assert set(row["secondary_both"]) | set(row["secondary_only_a"]) == sets_a[rows_a[episode_id]]
            assert set(row["secondary_both"]) | set(row["secondary_only_b"]) == sets_b[rows_b[episode_id]]
        assert forward.episodes.column("drg_a").to_pylist() == [
            grouper.group(a).column("drg")[rows_a[i]].as_py() for i in ids
        ]

    check()


def test_no_episode_in_common(tmp_path):
    """Codings with no id in common: every episode is listed as unmatched, the report still renders."""
    tables = load_tables(DEMO_TABLES)
    a = synthesize(tables, 40, seed=1)
    b = a.set_column(0, "episode_id", pc.binary_join_element_wise("B", a.column("episode_id"), ""))
    result = compare(a, b, Grouper(tables))
    assert len(result.episodes) == 0 and len(result.unmatched) == 80
    assert len(result.agreement) == 0  # nothing to agree on, and no rate made up
    assert "0 episodes compared; 80 unmatched" in result.summary()
    assert "Every episode is in both codings" not in result.report(tmp_path / "empty.html").read_text()
