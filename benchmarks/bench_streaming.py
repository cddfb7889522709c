"""Streaming at scale: peak memory and time to read and group N episodes end to end.

    python benchmarks/bench_streaming.py [--n 10000000] [--baseline-src ../main/src] [--compare-src ../main/src]

Builds a file of N Norwegian episode strings (the 2017 oracle strings repeated) and, from it, a
directory of Parquet files in the canonical layout; then, each in a fresh process, times and
measures the peak RSS (`ru_maxrss`) of: reading the strings alone, `nordgroup group` on the
strings, `nordgroup group` on the Parquet directory. The baseline, measured in the same run, is
the reader before streaming (`--baseline-src`, a checkout's `src`) on a slice of the same file:
it holds every field of every line in one grid, so it is run on few lines and its memory per
line is what it would need for N. With `--compare-src`, another tree's reading and grouping of
the N episodes are measured too, each step right after this tree's, so that both see the same
load. Every row says the CPU seconds (user + system) the process used and the load average when
it started: on a shared machine the wall time follows the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from attrs import frozen

SHARED = Path(__file__).resolve().parents[2] / "shared" / "norddrg" / "nor"
TABLES = SHARED / "DefinitionData_NOR_2017_PR1aN.zip"
SRC = Path(__file__).resolve().parents[1] / "src"


def _strings(path: Path, n: int) -> None:
    with gzip.open(SHARED / "oracle_random_2017.csv.gz", "rt") as source:
        lines = [line.split(";")[0] for line in source.read().splitlines()[1:]]
    with path.open("w") as out:
        for start in range(0, n, len(lines)):
            out.write("\n".join(itertools.islice(itertools.cycle(lines), min(len(lines), n - start))) + "\n")


@frozen
class Measured:
    seconds: float  # wall
    peak_mb: int
    cpu_seconds: float  # user + system, all threads
    load: float  # the 1-minute load average when it started


def _measured(code: str, src: Path = SRC) -> Measured:
    """Run `code` in a fresh interpreter: wall and CPU seconds, peak RSS, the load before."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import resource
        print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """
    )
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)}
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Measured(seconds, int(done.stdout.strip().splitlines()[-1].split()[1]), cpu, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--baseline-src", type=Path, default=Path(__file__).resolve().parents[2] / "main" / "src")
    parser.add_argument("--baseline-n", type=int, default=100_000)
    parser.add_argument("--compare-src", type=Path, default=None, help="another tree (`src`) to measure the N runs of")
    parser.add_argument("--workdir", type=Path, default=None, help="where the generated files go (default: a temp dir)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nordgroup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    strings = work / f"strings_{args.n}.txt"
    if not strings.exists():
        started = time.perf_counter()
        _strings(strings, args.n)
        print(f"wrote {strings} ({strings.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    parquet = work / f"parquet_{args.n}"
    if not parquet.exists():
        _measured(
            f"""
            from pathlib import Path
            from nordgroup.episodes import ResultWriter, iter_episodes
            Path({str(parquet)!r}).mkdir()
            for part, batch in enumerate(iter_episodes({str(strings)!r}, "nor-string", batch_size=1_000_000)):
                with ResultWriter(Path({str(parquet)!r}) / f"part{{part:03d}}.parquet", batch.schema) as writer:
                    writer.write(batch)
            """
        )
    warm = f"""
        from nordgroup import Grouper, load_tables
        Grouper(load_tables({str(TABLES)!r}, cache=True))  # compiled code and tables cached before timing
        """
    trees = [("", SRC)] + ([(f" ({args.compare_src})", args.compare_src)] if args.compare_src else [])
    for _, src in trees:
        _measured(warm, src)
    rows: list[tuple[str, int, Measured]] = []
    small = work / f"strings_{args.baseline_n}.txt"
    with strings.open() as source, small.open("w") as out:
        out.writelines(itertools.islice(source, args.baseline_n))
    if (args.baseline_src / "nordgroup").exists():
        measured = _measured(
            f"""
            from nordgroup import read_episodes
            read_episodes({str(small)!r}, layout="nor-string")
            """,
            src=args.baseline_src,
        )
        rows.append(("grid reader before streaming (baseline)", args.baseline_n, measured))
    read_code = """
        from nordgroup.episodes import iter_episodes
        n = sum(len(batch) for batch in iter_episodes({path!r}, "nor-string"))
        """
    rows.append(("streaming reader", args.baseline_n, _measured(read_code.format(path=str(small)))))
    group_code = """
        from nordgroup import cli
        cli.main(["group", "--tables", {tables!r}, {path!r}, {out!r}, "--quiet"])
        """
    out = work / "groups.parquet"
    steps = (
        ("streaming reader", read_code.format(path=str(strings))),
        ("nordgroup group, strings → Parquet", group_code.format(tables=str(TABLES), path=str(strings), out=str(out))),
        (
            "nordgroup group, Parquet dir → Parquet",
            group_code.format(tables=str(TABLES), path=str(parquet), out=str(out)),
        ),
    )
    for label, code in steps:
        for tree, src in trees:
            rows.append((label + tree, args.n, _measured(code, src)))
            out.unlink(missing_ok=True)
    print(
        f"\n{'what':<60} {'episodes':>11} {'wall s':>7} {'episodes/s':>11} {'CPU s':>6} {'peak MB':>8} "
        f"{'KB/episode':>10} {'load':>5}"
    )
    for label, n, m in rows:
        print(
            f"{label:<60} {n:>11,} {m.seconds:>7.1f} {n / m.seconds:>11,.0f} {m.cpu_seconds:>6.1f} {m.peak_mb:>8,} "
            f"{m.peak_mb * 1024 / n:>10.2f} {m.load:>5.2f}"
        )
    print("(wall time includes starting Python and loading the cached tables; one run each, shared machine)")


if __name__ == "__main__":
    main()
