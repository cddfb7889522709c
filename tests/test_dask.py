"""nordgroup.dask on a local cluster of two worker processes: the same rows as one process."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nordgroup import Grouper, load_tables
from nordgroup.episodes.synth import synthesize
from tests.conftest import DEMO_TABLES

pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
ngdask = pytest.importorskip("nordgroup.dask")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize("given", ["path", "tables"])
def test_dask_grouping_equals_single_process_grouping(client, given):
    tables = load_tables(DEMO_TABLES, cache=True)
    episodes = synthesize(tables, 20_000, seed=21)
    expected = Grouper(tables).group(episodes).to_pandas()
    frame = episodes.to_pandas(types_mapper=pd.ArrowDtype)
    frame.index = frame.index * 3 + 7  # an index of the caller's must come back as it was
    ddf = dd.from_pandas(frame, npartitions=8, sort=False)
    result = ngdask.group(ddf, DEMO_TABLES if given == "path" else tables)
    assert list(result.columns) == list(expected.columns)
    computed = result.compute()
    assert computed.index.tolist() == frame.index.tolist()
    computed = computed.reset_index(drop=True)
    for column in ("episode_id", "drg", "rtc", "rule", "mdc", "cc_level", "principal_mdc", "flags"):
        assert computed[column].tolist() == expected[column].tolist(), column
    # each worker built its grouper once, not once per partition (8 partitions on 2 workers)
    built = client.run(_built)
    assert sorted(built.values()) != [0, 0], built
    assert all(count <= 2 for count in built.values()), built  # at most one per test: path, then tables


def _built() -> int:
    import nordgroup.dask

    return nordgroup.dask.groupers_built


def test_results_stay_arrow_and_can_be_read_by_dask_as_parquet(tmp_path, client):
    tables = load_tables(DEMO_TABLES, cache=True)
    episodes = synthesize(tables, 5_000, seed=22)
    frame = dd.from_pandas(episodes.to_pandas(types_mapper=pd.ArrowDtype), npartitions=3)
    ngdask.group(frame, DEMO_TABLES).to_parquet(tmp_path / "out")
    written = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "out").glob("*.parquet"))])
    assert written.column("drg").to_pylist() == Grouper(tables).group(episodes).column("drg").to_pylist()
