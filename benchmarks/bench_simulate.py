"""Benchmark: a 1 000 000-episode year, the baseline plus two scenarios, on the Norwegian tables.

Baseline: the 2016 logic. Scenario A: the 2017 logic on the same activity plus 20 000 review
corrections. Scenario B: the 2017 logic plus rule-based recoding (symptom principal replaced by
the first specific secondary, a block list of secondaries removed) and a higher price. Weights
are generated DEMO weights (no official weight table ships with the definition tables). Prints
episodes/s, the total time of the simulation, and its ratio to grouping the same episodes once
with the 2017 tables, measured in the same run.

    PYTHONPATH=src python benchmarks/bench_simulate.py [--episodes N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from nordgroup import Grouper, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.money.financing import Financing
from nordgroup.money.scenario import PromoteSpecificSecondary, RemoveCodes, Scenario
from nordgroup.money.simulation import Baseline, simulate
from nordgroup.money.weights import DrgWeight, WeightTable

NOR = Path(__file__).resolve().parents[2] / "shared" / "norddrg" / "nor"


def demo_weights(tables, seed: int = 0) -> WeightTable:
    """Invented weights for every DRG of `tables` (labelled DEMO)."""
    rng = np.random.default_rng(seed)
    rows = tuple(
        DrgWeight(drg, float(rng.lognormal(0, 0.8)), int(rng.integers(5, 60)), 0.1, None) for drg in sorted(tables.drgs)
    )
    return WeightTable(rows, source="benchmark_demo_weights", demo=True)


def corrections(episodes: pa.Table, n: int, seed: int = 1) -> pa.Table:
    """`n` review corrections on random episodes: principal replaced by one of its secondaries, or a
    secondary removed."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(episodes), n, replace=False)
    picked = episodes.select(["episode_id", "diagnoses"]).take(pa.array(rows)).to_pylist()
    out = {"episode_id": [], "action": [], "role": [], "code": [], "old_code": []}
    for record in picked:
        diagnoses = record["diagnoses"]
        if len(diagnoses) > 1:
            replace = bool(rng.random() < 0.5)
            out["action"].append("replace" if replace else "remove")
            out["role"].append("principal" if replace else "secondary")
            out["code"].append(diagnoses[1])
        else:
            out["action"].append("add")
            out["role"].append("secondary")
            out["code"].append("E119")
        out["episode_id"].append(record["episode_id"])
        out["old_code"].append("")
    return pa.table(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    args = parser.parse_args()

    started = time.perf_counter()
    tables_2016 = load_tables(NOR / "DefinitionData_NOR_2016_PR1cN.zip")
    tables_2017 = load_tables(NOR / "DefinitionData_NOR_2017_PR1aN.zip")
    grouper_2016, grouper_2017 = Grouper(tables_2016), Grouper(tables_2017)
    print(f"tables loaded and compiled: {time.perf_counter() - started:.1f} s (not counted below)")

    episodes = synthesize(tables_2017, args.episodes, seed=7)
    weights = demo_weights(tables_2017)
    financing = Financing(price_per_point=45000, activity_share=0.5, year=2017, currency="NOK", demo=True)
    baseline = Baseline(grouper_2016, weights, financing)
    review = corrections(episodes, 20_000)
    scenario_a = Scenario(name="2017 logic + review corrections", corrections=review, tables=tables_2017)
    scenario_b = Scenario(
        name="2017 logic + recoding + price",
        recodings=(PromoteSpecificSecondary(), RemoveCodes(["R69", "Z755", "Z930", "R53"])),
        tables=tables_2017,
        financing_changes={"price_per_point": 46500},
    )
    grouper_2017.group(episodes.slice(0, 1000))  # JIT warm-up, as any long-running process has
    grouper_2016.group(episodes.slice(0, 1000))

    started = time.perf_counter()
    grouper_2017.group(episodes)
    grouping = time.perf_counter() - started

    started = time.perf_counter()
    before = baseline.price(episodes)
    results = [simulate(episodes, baseline, s, baseline_priced=before) for s in (scenario_a, scenario_b)]
    total = time.perf_counter() - started

    n = len(episodes)
    for result in results:
        totals = result.totals.to_pylist()[0]
        print(
            f"  {result.scenario.name}: {totals['drg_changed']:,} episodes changed DRG, "
            f"points {totals['points_change']:+,.1f}, money {totals['reimbursement_change']:+,.0f} (DEMO)"
        )
    print(f"grouping {n:,} episodes once (2017): {grouping:.1f} s, {n / grouping:,.0f} episodes/s")
    print(f"baseline + 2 scenarios: {total:.1f} s, {3 * n / total:,.0f} episodes/s (3 groupings' worth)")
    print(f"ratio to grouping alone: {total / grouping:.2f}x")


if __name__ == "__main__":
    main()
