"""The review sample (issue 18, defects 3 and 4): every non-empty stratum has draws, so that
1/π sums to each cell's size, and a date column can be cut into weeks, months, quarters or years."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nordgroup.episodes.layouts import episodes_from_records
from nordgroup.review.kinds import FINDING_SCHEMA
from nordgroup.review.sample import SampleSizeWarning, review_sample


def _episodes(units: list[str], periods: list, **extra) -> pa.Table:
    records = [
        {
            "episode_id": f"e{i}",
            "sex": 1,
            "age_days": 20_000,
            "duration_days": 2,
            "discharge": "E",
            "diagnoses": ["I219"],
            "procedures": [],
            "unit": unit,
            "period": period,
            **{name: values[i] for name, values in extra.items()},
        }
        for i, (unit, period) in enumerate(zip(units, periods, strict=True))
    ]
    return episodes_from_records(records)


def _findings(rows, points=None) -> pa.Table:
    rows = list(rows)
    return pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "episode_id": [f"e{r}" for r in rows],
            "kind": ["unknown_code"] * len(rows),
            "severity": ["warning"] * len(rows),
            "field": ["diagnoses"] * len(rows),
            "code": ["X"] * len(rows),
            "text": ["planted"] * len(rows),
            "drg": ["1"] * len(rows),
            "points": pa.array(points if points is not None else [None] * len(rows), pa.float64()),
            "money": pa.array([None] * len(rows), pa.float64()),
        },
        schema=FINDING_SCHEMA,
    )


def _weights_per_cell(sample: pa.Table, keys: list[str]) -> dict[tuple, float]:
    totals: dict[tuple, float] = {}
    for record in sample.to_pylist():
        key = tuple(record[k] for k in keys)
        totals[key] = totals.get(key, 0.0) + 1.0 / record["inclusion_probability"]
    return totals


def _cell_sizes(episodes: pa.Table, keys: list[str]) -> dict[tuple, int]:
    sizes: dict[tuple, int] = {}
    for record in episodes.select(keys).to_pylist():
        key = tuple(str(record[k]) for k in keys)
        sizes[key] = sizes.get(key, 0) + 1
    return sizes


def test_a_rare_stratum_is_drawn_not_left_at_probability_zero():
    """100 episodes in one cell, one with a finding, 5 %: the finding's stratum expects 0.15 draws
    and used to get none (π = 0, so Σ 1/π came to 99); now it gets one and Σ 1/π = 100."""
    episodes = _episodes(["a"] * 100, ["2017-W01"] * 100)
    sample = review_sample(episodes, _findings([7]), fraction=0.05, seed=0)
    assert 7 in sample.column("row").to_pylist()
    assert len(sample) == 5
    assert _weights_per_cell(sample, ["unit", "period"]) == {("a", "2017-W01"): pytest.approx(100.0)}


def test_strata_merged_when_a_cell_draws_fewer_than_its_strata():
    """A 10-episode cell at 10 % draws one episode but has two strata: they are merged, the sample
    says so in the stratum's name, and the one draw stands for all ten."""
    episodes = _episodes(["a"] * 10, ["w"] * 10)
    sample = review_sample(episodes, _findings([3]), fraction=0.1, seed=4)
    assert len(sample) == 1
    assert sample.column("stratum").to_pylist() == ["other + findings"]
    assert sample.column("inclusion_probability").to_pylist() == [pytest.approx(0.1)]


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(st.tuples(st.integers(1, 60), st.floats(0, 0.5)), min_size=1, max_size=8),
    fraction=st.sampled_from([0.02, 0.05, 0.1, 0.25, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_inverse_probabilities_sum_to_every_cell(cells, fraction, seed):
    """Whatever the cell sizes and finding rates: every episode of a cell is drawable (Σ 1/π over
    the cell's sample equals the cell's size), one π per stratum, and every stratum present in a
    cell is named in its sample (alone or merged)."""
    rng = np.random.default_rng(seed)
    units = [f"u{c}" for c, (size, _) in enumerate(cells) for _ in range(size)]
    rates = np.concatenate([np.full(size, rate) for size, rate in cells])
    marked = np.flatnonzero(rng.random(len(units)) < rates)
    points = rng.choice([0.5, 1.0, 9.0], len(marked)).tolist()
    episodes = _episodes(units, ["p"] * len(units))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        sample = review_sample(episodes, _findings(marked, points), fraction=fraction, seed=seed)
    sizes = _cell_sizes(episodes, ["unit", "period"])
    totals = _weights_per_cell(sample, ["unit", "period"])
    assert set(totals) == set(sizes)
    for key, size in sizes.items():
        assert totals[key] == pytest.approx(size)
    probabilities: dict[tuple, set] = {}
    named: dict[str, set] = {}
    for record in sample.to_pylist():
        probabilities.setdefault((record["unit"], record["stratum"]), set()).add(record["inclusion_probability"])
        named.setdefault(record["unit"], set()).update(record["stratum"].split(" + "))
    assert all(len(values) == 1 for values in probabilities.values())
    everyone = review_sample(episodes, _findings(marked, points), fraction=1.0, seed=seed)
    present = zip(everyone.column("unit").to_pylist(), everyone.column("stratum").to_pylist(), strict=True)
    for unit, stratum in set(present):
        assert stratum in named[unit]


def _dated(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 365, n)
    dates = [datetime.date(2017, 1, 1) + datetime.timedelta(days=int(d)) for d in days]
    units = [f"unit-{u}" for u in rng.integers(1, 3, n)]
    return _episodes(units, [d.isoformat() for d in dates], admission_date=dates)


def test_a_date_cut_into_months_keeps_the_fraction():
    """4 000 episodes over 2017 in two units, 5 % by unit × month: about 5 %, not the 37 % a
    unit × day split gives, and no warning; the periods are the twelve months."""
    episodes = _dated(4000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SampleSizeWarning)
        sample = review_sample(
            episodes, _findings([]), fraction=0.05, seed=1, period_column="admission_date", period="month"
        )
    assert abs(len(sample) / len(episodes) - 0.05) < 0.005
    assert sorted(set(sample.column("admission_date").to_pylist())) == [f"2017-{m:02d}" for m in range(1, 13)]


@pytest.mark.parametrize(
    ("period", "first"), [("week", "2016-W52"), ("quarter", "2017-Q1"), ("year", "2017"), ("month", "2017-01")]
)
def test_periods_from_a_date_text_column(period, first):
    """ISO date texts (as a CSV holds them) are cut the same way; 1 January 2017 is ISO week 52 of 2016."""
    episodes = _episodes(["a"] * 3, ["x"] * 3, admission_date=["2017-01-01", "2017-06-30", ""])
    sample = review_sample(episodes, _findings([]), fraction=1.0, period_column="admission_date", period=period)
    assert sample.column("admission_date").to_pylist()[0] == first
    assert sample.column("admission_date").to_pylist()[2] == "(none)"


def test_a_bad_date_names_column_and_row():
    episodes = _episodes(["a"] * 3, ["x"] * 3, admission_date=["2017-01-01", "1/2/2017", "2017-01-03"])
    with pytest.raises(ValueError, match=r"column 'admission_date', row 2: '1/2/2017' is not a date"):
        review_sample(episodes, _findings([]), fraction=0.5, period_column="admission_date", period="week")


def test_cells_too_small_for_the_fraction_warn():
    """Per unit × day, 5 % cannot be kept (every day draws one): the sample is larger and a warning says why."""
    episodes = _dated(4000)
    with pytest.warns(SampleSizeWarning, match=r"not the 5\.0% asked: .* longer periods"):
        sample = review_sample(episodes, _findings([]), fraction=0.05, seed=1, period_column="period")
    assert len(sample) / len(episodes) > 0.15
