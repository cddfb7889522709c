"""The first run as a new user meets it: fresh processes, an empty Numba cache, then a warm one.

Run: `python benchmarks/bench_first_run.py [--repeat 2] [--baseline SRC]` from the repository
root. Each figure is the wall time of a new `python` process (so Python's start, imports and
Numba's cache loading count), with NUMBA_CACHE_DIR and NORDGROUP_CACHE pointing at directories
that are empty for the first run only. `--baseline SRC` measures the same for another checkout's `src` (its demo tables
beside it) in the same run. Best run from a fresh venv, where no pandas is installed for pyarrow
to import. Each tree is copied to a temporary directory and its bytecode compiled first, as `pip
install` does, so that the processes keep bytecode as users' do even where PYTHONDONTWRITEBYTECODE
is set (it recompiles every module of every process) and nothing is written into the trees.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU: list[float] = []  # CPU seconds of each process run: on a busy machine, closer to a quiet wall time
IMPORT_AND_LOAD = "import nordgroup; nordgroup.load_tables({tables!r}, cache=True)"


def wall(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one process (and its output); its CPU seconds are added to `CPU`."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=tempfile.gettempdir())
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return time.perf_counter() - started, done.stdout


def figures(tree: Path, label: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        src = Path(out) / "src"
        shutil.copytree(tree, src, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(tree.parent / "grouper_tables", Path(out) / "grouper_tables")
        # both caches empty: the first demo also parses and compiles the demo tables, as a new user's does
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "NORDGROUP_CACHE": f"{cache}/tables", "PYTHONPATH": str(src)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], env=env, check=True)
        demo = [sys.executable, "-m", "nordgroup.cli", "demo", "--output", f"{out}/demo.parquet"]
        first, stdout = wall(demo, env)
        first_cpu = CPU[-1]
        compiling = next((line for line in stdout.splitlines() if line.startswith("compiling")), "")
        again = min(wall(demo, env)[0] for _ in range(repeat))
        again_cpu = min(CPU[-repeat:])
        load = [sys.executable, "-c", IMPORT_AND_LOAD.format(tables=str(Path(out) / "grouper_tables"))]
        wall(load, env)  # the table cache written once
        loaded = min(wall(load, env)[0] for _ in range(repeat))
        loaded_cpu = min(CPU[-repeat:])
    print(f"{label}:", flush=True)
    print(f"  first demo, empty Numba cache       {first:6.2f} s wall, {first_cpu:6.2f} s CPU   {compiling}")
    print(f"  repeated demo                       {again:6.2f} s wall, {again_cpu:6.2f} s CPU (best of {repeat})")
    print(f"  import nordgroup + cached tables    {loaded:6.2f} s wall, {loaded_cpu:6.2f} s CPU (best of {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="the src directory of the code to compare with")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}")
    figures(ROOT / "src", "this tree", args.repeat)
    if args.baseline:
        figures(args.baseline, f"baseline {args.baseline}", args.repeat)


if __name__ == "__main__":
    main()
