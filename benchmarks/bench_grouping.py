"""Grouping speed on the official 2017 Norwegian tables: episodes per second and ratios.

Run: `python benchmarks/bench_grouping.py [--sizes 40000 1000000]` from the repository root,
with `../shared` beside it. Every number is measured in this run; the baseline for the ratios is
the readable reference grouper (pure Python) measured on a sample of the same episodes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numba

import nordgroup as ng
from nordgroup import _kernel
from nordgroup.encode import encode_episodes
from nordgroup.episodes import to_canonical
from nordgroup.explain import episode_from_row
from nordgroup.reference import group_episode
from nordgroup.synth import synthesize

TABLES = Path(__file__).resolve().parents[1].parent / "shared/norddrg/nor/DefinitionData_NOR_2017_PR1aN.zip"


def best(function, repeat: int = 3) -> float:
    return timings(function, repeat, warm_up=0)[0]


def timings(function, repeat: int = 5, warm_up: float = 0.3) -> tuple[float, float]:
    """Best and median seconds over at least `repeat` timed runs and at least one second: the best
    shows the code, the median the machine. The function first runs untimed for `warm_up` seconds:
    on this VM the second core needs some 50 ms of steady work before it runs at full speed, so
    the first few parallel runs of a 40 000-episode batch measured 4.4 M/s against 6.7 M/s after."""
    deadline = time.perf_counter() + warm_up
    while time.perf_counter() < deadline:
        function()
    times: list[float] = []
    while len(times) < repeat or sum(times) < 1.0:
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[40_000, 1_000_000])
    parser.add_argument("--reference-sample", type=int, default=2_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, numba {numba.__version__}, {numba.get_num_threads()} threads")

    with tempfile.TemporaryDirectory() as cache:
        cold = best(lambda: ng.load_tables(TABLES), repeat=1)
        ng.load_tables(TABLES, cache=cache)
        cached = best(lambda: ng.load_tables(TABLES, cache=cache))
    print(f"table load: raw official JSON {cold:.2f} s, cached {cached:.3f} s")

    tables = ng.load_tables(TABLES, cache=True)
    grouper = ng.Grouper(tables)
    grouper.group(synthesize(tables, 5_000, seed=1))  # warm the JIT

    sample = synthesize(tables, args.reference_sample, seed=2)
    episodes = [episode_from_row(row) for row in to_canonical(sample).to_pylist()]
    reference_seconds = best(lambda: [group_episode(tables, e) for e in episodes], repeat=1)
    reference_rate = len(episodes) / reference_seconds
    print(f"reference grouper (pure Python): {reference_rate:,.0f} episodes/s (baseline)")

    for n in args.sizes:
        measure(grouper, n, reference_rate)


def measure(grouper: ng.Grouper, n: int, reference_rate: float) -> None:
    """Kernel, encoding and end-to-end rates for `n` synthetic episodes."""
    batch = synthesize(grouper.tables, n, seed=3)
    canonical = to_canonical(batch)
    encoded = encode_episodes(canonical, grouper.compiled)
    arrays = encoded.kernel_arrays()
    serial = timings(lambda: _kernel.group_encoded(arrays, grouper.compiled, n, parallel=False))
    parallel = timings(lambda: _kernel.group_encoded(arrays, grouper.compiled, n, parallel=True))
    encode = timings(lambda: encode_episodes(canonical, grouper.compiled))
    end_to_end_serial = timings(lambda: grouper.group(batch, parallel=False))
    end_to_end = timings(lambda: grouper.group(batch))
    print(f"\n{n:,} episodes (best of ≥ 5 runs and ≥ 1 s after 0.3 s warm-up, median in brackets)")
    for label, (fastest, median) in [
        ("kernel on encoded data, 1 thread", serial),
        (f"kernel on encoded data, {numba.get_num_threads()} threads", parallel),
        ("encoding codes (Arrow → arrays)", encode),
        ("end to end Arrow in → Arrow out, 1 kernel thread", end_to_end_serial),
        (f"end to end Arrow in → Arrow out, {numba.get_num_threads()} kernel threads", end_to_end),
    ]:
        rate = n / fastest
        print(
            f"  {label:<58} {fastest:7.3f} s {rate:>13,.0f} episodes/s ({n / median:>11,.0f})"
            f"  ×{rate / reference_rate:,.0f} reference"
        )


if __name__ == "__main__":
    main()
