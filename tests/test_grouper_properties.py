"""Invariants of the compiled grouper, proved on random episodes built from the real tables."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nordgroup.engine.reference import group_episode
from tests import strategies
from tests.helpers import reference_episodes

YEAR = 2017
_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_compiled_kernel_equals_the_reference_grouper(nor_grouper, nor_tables):
    """DRG, rtc, rule and CC level of the Numba kernel equal the readable reference, episode by episode."""
    tables = nor_tables(YEAR)
    grouper = nor_grouper(YEAR)

    @_settings
    @given(strategies.episodes(tables))
    def check(batch: pa.Table) -> None:
        result = grouper.group(batch).to_pylist()
        for row, episode in zip(result, reference_episodes(batch), strict=True):
            expected = group_episode(tables, episode)
            assert (row["drg"], row["rtc"], row["rule"]) == (
                expected.drg,
                expected.rtc,
                expected.rule.id if expected.rule else None,
            ), episode
            assert row["cc_level"] == expected.features.cc_level, episode

    check()


def test_one_row_out_per_row_in_with_ids_order_and_extra_columns_kept(nor_grouper, nor_tables):
    tables = nor_tables(YEAR)
    grouper = nor_grouper(YEAR)

    @_settings
    @given(strategies.episodes(tables))
    def check(batch: pa.Table) -> None:
        result = grouper.group(batch)
        assert len(result) == len(batch)
        assert result.column_names[0] == "episode_id"
        assert result["episode_id"].to_pylist() == batch["episode_id"].to_pylist()
        assert result["ward"].to_pylist() == batch["ward"].to_pylist()

    check()


def test_grouping_in_chunks_equals_grouping_at_once(nor_grouper, nor_tables):
    tables = nor_tables(YEAR)
    grouper = nor_grouper(YEAR)

    @_settings
    @given(strategies.episodes(tables, max_size=60), st.integers(1, 17))
    def check(batch: pa.Table, chunk: int) -> None:
        whole = grouper.group(batch)
        parts = pa.concat_tables(grouper.group(batch.slice(start, chunk)) for start in range(0, len(batch), chunk))
        assert parts.equals(whole.cast(parts.schema)) or parts.to_pylist() == whole.to_pylist()

    check()


def test_parallel_and_serial_kernels_agree_on_a_large_batch(nor_grouper, nor_tables):
    """Above the parallel threshold the kernel runs in threads; results must not depend on it."""
    from nordgroup.episodes.synth import synthesize

    tables = nor_tables(YEAR)
    batch = synthesize(tables, 30_000, seed=7)
    grouper = nor_grouper(YEAR)
    parallel = grouper.group(batch, parallel=True)
    serial = grouper.group(batch, parallel=False)
    assert parallel.to_pylist() == serial.to_pylist()
