"""Grouping on a Dask cluster against grouping in one process, on the same Parquet episodes.

Run: `python benchmarks/bench_dask.py [--n 10000000] [--workers 2]` from the repository root,
with `../shared` beside it. Synthetic episodes (official 2017 Norwegian tables) are written once
to a directory of Parquet files; then, in this run, one process groups them batch by batch
(`Grouper.group_batches`, both cores for the kernel) and a `distributed.LocalCluster` of
`--workers` single-threaded processes groups them with `nordgroup.dask.group`. Both reduce the
result to DRG counts, so that neither pays for moving 10 M result rows, and the counts must agree.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import distributed
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import nordgroup as ng
import nordgroup.dask
from nordgroup.episodes.synth import synthesize

TABLES = Path(__file__).resolve().parents[1].parent / "shared/norddrg/nor/DefinitionData_NOR_2017_PR1aN.zip"
_FILE_ROWS = 1_000_000


def write_episodes(tables, n: int, directory: Path) -> None:
    for part, start in enumerate(range(0, n, _FILE_ROWS)):
        batch = synthesize(tables, min(_FILE_ROWS, n - start), seed=part)
        batch = batch.set_column(0, "episode_id", pc.binary_join_element_wise(f"p{part}-", batch["episode_id"], ""))
        pq.write_table(batch, directory / f"part-{part:03}.parquet", row_group_size=250_000)


def single_process(directory: Path) -> dict[str, int]:
    grouper = ng.Grouper(ng.load_tables(TABLES, cache=True))
    counts: dict[str, int] = {}
    for result in grouper.group_batches(ds.dataset(directory).to_batches(batch_size=250_000)):
        for item in pc.value_counts(result["drg"]).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def on_cluster(directory: Path) -> dict[str, int]:
    episodes = dd.read_parquet(str(directory), dtype_backend="pyarrow", split_row_groups=True)
    counts = nordgroup.dask.group(episodes, TABLES)["drg"].value_counts().compute()
    return {str(drg): int(count) for drg, count in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.n:,} episodes")
    tables = ng.load_tables(TABLES, cache=True)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        write_episodes(tables, args.n, directory)
        started = time.perf_counter()
        alone = single_process(directory)
        single = time.perf_counter() - started
        print(f"one process, group_batches over the Parquet files: {single:6.1f} s ({args.n / single:,.0f} episodes/s)")
        with (
            distributed.LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):
            started = time.perf_counter()
            spread = on_cluster(directory)
            cluster_seconds = time.perf_counter() - started
        print(
            f"LocalCluster, {args.workers} worker processes:            {cluster_seconds:6.1f} s "
            f"({args.n / cluster_seconds:,.0f} episodes/s, ×{single / cluster_seconds:.2f} one process; "
            "tables loaded once per worker included)"
        )
        assert spread == alone, "the cluster's DRG counts differ from one process'"
        print("DRG counts: identical")


if __name__ == "__main__":
    main()
