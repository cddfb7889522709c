"""Sensitivity speed: which codes carry the DRG, for 1 000 000 synthetic episodes on the Norwegian
2017 tables (target: under 30 s).

Prints episodes per second of plain grouping (the baseline, measured in the same run), of
`sensitivity` (every removal of a secondary diagnosis or procedure and every principal/secondary
swap, grouped in bulk, priced with synthetic DEMO weights: the 2017 release ships none), the
variants grouped per second, and the ratio to plain grouping.

    PYTHONPATH=src python benchmarks/bench_sensitivity.py [N]
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from nordgroup import Grouper, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.money.weights import DrgWeight, WeightTable
from nordgroup.review.code_sensitivity import sensitivity

TABLES = Path(__file__).resolve().parents[2] / "shared" / "norddrg" / "nor" / "DefinitionData_NOR_2017_PR1aN.zip"


def main(n: int = 1_000_000) -> None:
    grouper = Grouper(load_tables(TABLES))
    episodes = synthesize(grouper.tables, n, seed=2017)
    weights = WeightTable(
        tuple(DrgWeight(drg, 0.3 + (zlib.crc32(drg.encode()) % 400) / 100) for drg in grouper.tables.drgs),
        source="demo",
        demo=True,
    )
    sensitivity(episodes.slice(0, 1000), grouper, weights=weights)  # warm the JIT

    started = time.perf_counter()
    grouper.group(episodes)
    grouping = time.perf_counter() - started

    started = time.perf_counter()
    changes = sensitivity(episodes, grouper, weights=weights)
    elapsed = time.perf_counter() - started

    diagnoses = pc.list_value_length(episodes.column("diagnoses")).to_numpy()
    procedures = pc.list_value_length(episodes.column("procedures")).to_numpy()
    variants = int(n + 2 * np.maximum(diagnoses - 1, 0).sum() + procedures.sum())
    removals = pc.sum(pc.not_equal(changes.column("change"), "swap_principal")).as_py()
    print(f"{n:,} episodes, {variants:,} variants grouped (NOR 2017 tables, DEMO weights)")
    print(f"{removals:,} codes whose removal changes the DRG, {len(changes) - removals:,} swaps that do")
    print(f"plain grouping (baseline): {grouping:6.2f} s  {n / grouping:>12,.0f} episodes/s")
    print(f"sensitivity:               {elapsed:6.2f} s  {n / elapsed:>12,.0f} episodes/s  (target: under 30 s)")
    print(f"  variants:                          {variants / elapsed:>12,.0f} variants/s")
    print(f"ratio sensitivity / plain grouping: {elapsed / grouping:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
