"""The `price` and `simulate` subcommands: money and what-if on the command line.

`cli.py` holds the grammar; each handler returns an exit code (0 done, 2 bad input) and prints
errors as one line naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nordgroup import Grouper, read_episodes
from nordgroup._cli_tables import tables_of
from nordgroup.episodes import write_table
from nordgroup.exceptions import NordgroupError
from nordgroup.money import casemix, load_financing, load_weights
from nordgroup.report import write_report
from nordgroup.simulate import Baseline, extrapolate_sample, load_scenario, simulate

__all__ = ["run_price", "run_simulate"]


def _baseline(args: argparse.Namespace):
    episodes = read_episodes(args.input, args.layout, id_column=args.id_column)
    baseline = Baseline(Grouper(tables_of(args)), load_weights(args.weights), load_financing(args.financing))
    return episodes, baseline


def run_price(args: argparse.Namespace) -> int:
    """`nordgroup price`: the grouped table with the price columns."""
    try:
        episodes, baseline = _baseline(args)
        priced = baseline.price(episodes)
        write_table(priced, args.output)
        for by in [(), *args.by]:
            _print_summary(casemix(priced, by))
    except (NordgroupError, FileNotFoundError, ValueError) as error:
        print(f"nordgroup price: {error}", file=sys.stderr)
        return 2
    print(f"{len(priced):,} episodes priced with {baseline.weights.label}, {baseline.financing.label} → {args.output}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """`nordgroup simulate`: tables per scenario in OUT_DIR and one HTML report."""
    try:
        episodes, baseline = _baseline(args)
        scenarios = [load_scenario(path) for path in args.scenario]
        before = baseline.price(episodes)
        out_dir = Path(args.out_dir)
        sections = []
        for scenario in scenarios:
            result = simulate(episodes, baseline, scenario, baseline_priced=before)
            result.write_tables(out_dir)
            sections += result.report_sections()
            totals = result.totals.to_pylist()[0]
            print(
                f"{scenario.name}: {totals['drg_changed']:,} of {totals['episodes']:,} episodes changed DRG; points "
                f"{totals['points_change']:+,.2f}; reimbursement {totals['reimbursement_change']:+,.0f}"
            )
            if args.sample_probability:
                estimate = extrapolate_sample(result, inclusion_probability=args.sample_probability)
                sections.append((f"{scenario.name}: extrapolation to the population", estimate.html()))
                print(f"  {estimate.verdict}")
        report = Path(args.report) if args.report else out_dir / "report.html"
        demo = (
            baseline.weights.demo
            or baseline.financing.demo
            or any(
                (s.weights is not None and s.weights.demo) or (s.financing is not None and s.financing.demo)
                for s in scenarios
            )
        )
        intro = (
            "DEMO values: weights or prices here are invented for illustration, not official figures." if demo else ""
        )
        write_report(report, "Simulation: " + ", ".join(s.name for s in scenarios), sections, intro=intro)
    except (NordgroupError, FileNotFoundError, ValueError) as error:
        print(f"nordgroup simulate: {error}", file=sys.stderr)
        return 2
    print(f"tables in {out_dir}, report {report}")
    return 0


def _print_summary(table) -> None:
    print("\t".join(table.column_names))
    for record in table.to_pylist():
        print("\t".join(f"{v:,.4f}" if isinstance(v, float) else str(v) for v in record.values()))
