"""Audit speed: 1 000 000 synthetic episodes on the Norwegian 2017 tables.

Prints episodes per second of grouping alone (the baseline, measured in the same run), of the
audit over the grouped result, of both together, and the ratio of the total to grouping alone.
Weights are synthetic (labelled DEMO): the 2017 release ships none.

    PYTHONPATH=src python benchmarks/bench_audit.py [N]
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

from nordgroup import Grouper, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.review.findings import audit, drg_points
from nordgroup.review.sample import review_sample
from nordgroup.review.unit_indicators import indicators

TABLES = Path(__file__).resolve().parents[2] / "shared" / "norddrg" / "nor" / "DefinitionData_NOR_2017_PR1aN.zip"


def main(n: int = 1_000_000) -> None:
    grouper = Grouper(load_tables(TABLES))
    episodes = synthesize(grouper.tables, n, seed=2017)
    demo_weights = {drg: 0.3 + (zlib.crc32(drg.encode()) % 400) / 100 for drg in grouper.tables.drgs}
    grouper.group(episodes.slice(0, 1000))  # warm the JIT

    started = time.perf_counter()
    grouped = grouper.group(episodes)
    grouping = time.perf_counter() - started

    started = time.perf_counter()
    findings = audit(episodes, grouper, weights=demo_weights, grouped=grouped)
    auditing = time.perf_counter() - started

    started = time.perf_counter()
    indicators(episodes, grouped, findings)
    review_sample(
        episodes, findings, fraction=0.25, seed=1, points=drg_points(grouped, demo_weights, episodes=episodes)
    )
    extras = time.perf_counter() - started

    total = grouping + auditing
    print(f"{n:,} episodes, {len(findings):,} findings (NOR 2017 tables, DEMO weights)")
    print(f"grouping alone (baseline): {grouping:6.2f} s  {n / grouping:>12,.0f} episodes/s")
    print(f"audit of the grouped result: {auditing:4.2f} s  {n / auditing:>12,.0f} episodes/s")
    print(f"group + audit:             {total:6.2f} s  {n / total:>12,.0f} episodes/s  (target: under 10 s)")
    print(f"ratio (group + audit) / grouping alone: {total / grouping:.2f}x")
    print(f"indicators + 25 % review sample: {extras:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
