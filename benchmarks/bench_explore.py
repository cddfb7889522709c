"""Table questions on the official 2017 Norwegian tables: seconds per answer, in process and one-shot.

Run: `python benchmarks/bench_explore.py` from the repository root, with `../shared` beside it
and the project installed (the one-shot figures start the `nordgroup` command). The baseline for
the ratios is the same search with every witness found by the SAT solver (no witness built from
the rule's columns), measured in this run; the answers of both are checked equal.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from unittest import mock

import nordgroup as ng
from nordgroup import explore

TABLES = Path(__file__).resolve().parents[1].parent / "shared/norddrg/nor/DefinitionData_NOR_2017_PR1aN.zip"
QUESTIONS = [
    ("I210", "principal"),
    ("J189", "principal"),
    ("I210", "secondary"),
    ("E119", "secondary"),
    ("FNG02", "procedure"),
    ("JAH00", "procedure"),
]


def seconds(function, repeat: int = 5) -> tuple[float, float]:
    """Best and median of `repeat` runs: the best shows the code, the median the (noisy) machine."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    print(f"machine: {os.cpu_count()} cores; best of 5 runs, median in brackets")
    command = shutil.which("nordgroup")
    if command is None:
        raise SystemExit("the one-shot figures need the project installed (`nordgroup` on PATH)")
    # as users run it: with compiled bytecode kept beside the modules (the project machine sets
    # PYTHONDONTWRITEBYTECODE, which recompiles every module of each process: some 60 ms more)
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    print("\none-shot commands (a new process each: interpreter, imports, cached tables and formula):")
    for arguments in [["I210"], *([code, "--role", role] for code, role in QUESTIONS)]:
        argv = [command, "tables", "code", "--tables", str(TABLES), *arguments]
        subprocess.run(argv, check=True, capture_output=True, env=environment)  # the caches on disk are written
        best, median = seconds(lambda argv=argv: subprocess.run(argv, check=True, capture_output=True, env=environment))
        print(f"  nordgroup tables code {' '.join(arguments):<26} {best:6.3f} s ({median:.3f})")
    argv = [command, "tables", "drg", "--tables", str(TABLES), "14A"]
    best, median = seconds(lambda: subprocess.run(argv, check=True, capture_output=True, env=environment))
    print(f"  nordgroup tables drg 14A {'':<23} {best:6.3f} s ({median:.3f})")

    # in process after the one-shot commands: forking this process once it holds the tables and
    # formula made each of them some 0.2 s slower
    tables = ng.load_tables(TABLES, cache=True)
    explore.drgs_for_code(tables, "I210")  # the formula and indexes, read once per process
    print("\nin process (tables and formula loaded):")
    for code, role in QUESTIONS:
        answer = explore.drgs_for_code(tables, code, role)
        built = seconds(lambda code=code, role=role: explore.drgs_for_code(tables, code, role))
        with mock.patch.object(explore._Search, "_guess", lambda *_: None):
            searched = explore.drgs_for_code(tables, code, role)
            solver_only = seconds(lambda code=code, role=role: explore.drgs_for_code(tables, code, role))
        if (searched.drgs, searched.unreachable.keys()) != (answer.drgs, answer.unreachable.keys()):
            raise SystemExit(f"{code} as {role}: the two searches disagree")
        print(
            f"  {code:<6} as {role:<10} {len(answer.drgs):>4} DRGs  {built[0]:6.3f} s ({built[1]:.3f})"
            f"   solver only {solver_only[0]:6.3f} s ({solver_only[1]:.3f})   ×{solver_only[0] / built[0]:.1f}"
        )


if __name__ == "__main__":
    main()
