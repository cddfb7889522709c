"""The `price` and `simulate` subcommands: money and what-if on the command line.

`register(subparsers)` adds both to the main `nordgroup` parser; each handler returns an exit code
(0 done, 2 bad input) and prints errors as one line naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nordgroup.exceptions import NordgroupError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `price` and `simulate` to the `nordgroup` command; handlers are in `handler` defaults."""
    price = subparsers.add_parser(
        "price",
        help="group and price episodes: DRG points, long-stay supplement, reimbursement",
        description="Group episodes, price them with a weight table and financing, write the table.",
    )
    _common(price)
    price.add_argument("--output", "-o", required=True, help="result table (.parquet, .arrow or .csv)")
    price.add_argument(
        "--by", action="append", default=[], metavar="COLUMN", help="print a casemix summary by COLUMN (repeatable)"
    )
    price.set_defaults(handler=run_price)

    simulate = subparsers.add_parser(
        "simulate",
        help="regroup and reprice under scenarios (corrections, recoding, tables, weights, prices)",
        description="Compare episodes under the baseline and under each scenario; write tables and an HTML report.",
    )
    _common(simulate)
    simulate.add_argument(
        "--scenario", action="append", required=True, metavar="FILE", help="scenario TOML file (repeatable)"
    )
    simulate.add_argument("--out-dir", default="simulation", help="folder for the result tables (default: simulation)")
    simulate.add_argument("--report", help="HTML report path (default: OUT_DIR/report.html)")
    simulate.add_argument(
        "--sample-probability",
        metavar="COLUMN",
        help="the input is a reviewed sample with this inclusion-probability column: extrapolate to the population",
    )
    simulate.set_defaults(handler=run_simulate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="episodes (.parquet, .arrow, .csv or .txt)")
    parser.add_argument("--tables", required=True, help="definition tables of the baseline (zip, JSON, folder, Excel)")
    parser.add_argument("--weights", required=True, help="weight table (CSV or Excel)")
    parser.add_argument("--financing", required=True, help="financing TOML (price_per_point, activity_share, year)")
    parser.add_argument("--layout", default="canonical", choices=("canonical", "wide", "nor-string"))
    parser.add_argument("--id-column", help="the column to use as episode_id")


def _baseline(args: argparse.Namespace):
    from nordgroup import Grouper, load_tables, read_episodes
    from nordgroup.money import load_financing, load_weights
    from nordgroup.simulate import Baseline

    episodes = read_episodes(args.input, args.layout, id_column=args.id_column)
    baseline = Baseline(
        Grouper(load_tables(args.tables, cache=True)), load_weights(args.weights), load_financing(args.financing)
    )
    return episodes, baseline


def run_price(args: argparse.Namespace) -> int:
    """`nordgroup price`: the grouped table with the price columns."""
    from nordgroup.episodes import write_table
    from nordgroup.money import casemix

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
    from nordgroup.report import write_report
    from nordgroup.simulate import extrapolate_sample, load_scenario, simulate

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
