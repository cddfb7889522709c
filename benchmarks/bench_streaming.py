"""Streaming at scale: peak memory and time to read and group N episodes end to end.

    python benchmarks/bench_streaming.py [--n 10000000] [--baseline-src ../main/src]

Builds a file of N Norwegian episode strings (the 2017 oracle strings repeated) and, from it, a
directory of Parquet files in the canonical layout; then, each in a fresh process, times and
measures the peak RSS (`ru_maxrss`) of: reading the strings alone, `nordgroup group` on the
strings, `nordgroup group` on the Parquet directory. The baseline, measured in the same run, is
the reader before streaming (`--baseline-src`, a checkout's `src`) on a slice of the same file:
it holds every field of every line in one grid, so it is run on few lines and its memory per
line is what it would need for N. One repetition each: the machine is shared, expect noise.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "norddrg" / "nor"
TABLES = SHARED / "DefinitionData_NOR_2017_PR1aN.zip"
SRC = Path(__file__).resolve().parents[1] / "src"


def _strings(path: Path, n: int) -> None:
    with gzip.open(SHARED / "oracle_random_2017.csv.gz", "rt") as source:
        lines = [line.split(";")[0] for line in source.read().splitlines()[1:]]
    with path.open("w") as out:
        for start in range(0, n, len(lines)):
            out.write("\n".join(itertools.islice(itertools.cycle(lines), min(len(lines), n - start))) + "\n")


def _measured(code: str, src: Path = SRC) -> tuple[float, int, str]:
    """Run `code` in a fresh interpreter: wall seconds, peak RSS in MB, what it printed."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import resource
        print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)}
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    out = done.stdout.strip().splitlines()
    return seconds, int(out[-1].split()[1]), "\n".join(out[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--baseline-src", type=Path, default=Path(__file__).resolve().parents[2] / "main" / "src")
    parser.add_argument("--baseline-n", type=int, default=100_000)
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
    _measured(warm)
    rows = []
    small = work / f"strings_{args.baseline_n}.txt"
    with strings.open() as source, small.open("w") as out:
        out.writelines(itertools.islice(source, args.baseline_n))
    if (args.baseline_src / "nordgroup").exists():
        seconds, peak, _ = _measured(
            f"""
            from nordgroup import read_episodes
            read_episodes({str(small)!r}, layout="nor-string")
            """,
            src=args.baseline_src,
        )
        rows.append(("grid reader before streaming (baseline)", args.baseline_n, seconds, peak))
    read_code = """
        from nordgroup.episodes import iter_episodes
        n = sum(len(batch) for batch in iter_episodes({path!r}, "nor-string"))
        """
    seconds, peak, _ = _measured(read_code.format(path=str(small)))
    rows.append(("streaming reader", args.baseline_n, seconds, peak))
    seconds, peak, _ = _measured(read_code.format(path=str(strings)))
    rows.append(("streaming reader", args.n, seconds, peak))
    group_code = """
        from nordgroup import cli
        cli.main(["group", "--tables", {tables!r}, {path!r}, {out!r}, "--quiet"])
        """
    runs = (("nordgroup group, strings → Parquet", strings), ("nordgroup group, Parquet dir → Parquet", parquet))
    for label, path in runs:
        out = work / "groups.parquet"
        seconds, peak, _ = _measured(group_code.format(tables=str(TABLES), path=str(path), out=str(out)))
        rows.append((label, args.n, seconds, peak))
        out.unlink()
    print(f"\n{'what':<42} {'episodes':>12} {'wall s':>8} {'episodes/s':>12} {'peak RSS MB':>12} {'KB/episode':>11}")
    for label, n, seconds, peak in rows:
        print(f"{label:<42} {n:>12,} {seconds:>8.1f} {n / seconds:>12,.0f} {peak:>12,} {peak * 1024 / n:>11.2f}")
    print("(wall time includes starting Python and loading the cached tables; one run each, shared machine)")


if __name__ == "__main__":
    main()
