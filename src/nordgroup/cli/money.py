"""The `price` and `simulate` subcommands: money and what-if on the command line.

`grammar.py` holds the grammar; each handler returns an exit code (0 done, 2 bad input) and prints
errors as one line naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nordgroup import Grouper, read_episodes
from nordgroup.cli.tables import tables_of
from nordgroup.episodes.layouts import write_table
from nordgroup.exceptions import NordgroupError
from nordgroup.money.extrapolate import extrapolate_sample
from nordgroup.money.financing import load_financing
from nordgroup.money.pricing import casemix, with_drg_names
from nordgroup.money.scenario import load_scenario
from nordgroup.money.simulation import Baseline, simulate
from nordgroup.money.weights import load_weights, name_drgs, parse_weight_columns
from nordgroup.report import write_report

__all__ = ["run_price", "run_simulate"]


def _baseline(args: argparse.Namespace):
    episodes = read_episodes(args.input, args.layout, id_column=args.id_column)
    columns = parse_weight_columns(args.weights_columns) if args.weights_columns else None
    weights = load_weights(args.weights, columns=columns)
    baseline = Baseline(Grouper(name_drgs(tables_of(args), weights)), weights, load_financing(args.financing))
    return episodes, baseline


def run_price(args: argparse.Namespace) -> int:
    """`nordgroup price`: the grouped table with the price columns."""
    try:
        episodes, baseline = _baseline(args)
        priced = baseline.price(episodes)
        write_table(priced, args.output)
        summaries = [casemix(priced, by) for by in [(), *args.by]]
        tables = baseline.grouper.tables
        summaries = [with_drg_names(t, tables) if "drg" in t.column_names else t for t in summaries]
    except (NordgroupError, FileNotFoundError, ValueError) as error:
        print(f"nordgroup price: {error}", file=sys.stderr)
        return 2
    for table in summaries:
        _print_summary(table)
    print(f"{len(priced):,} episodes priced with {baseline.weights.label}, {baseline.financing.label} → {args.output}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """`nordgroup simulate`: tables per scenario in OUT_DIR and one HTML report, written before
    anything is printed (a reader that stops early, `| head`, loses no file)."""
    lines = []
    try:
        episodes, baseline = _baseline(args)
        scenarios = [load_scenario(path) for path in args.scenario]
        strata = _sample_strata(args, episodes.column_names)
        before = baseline.price(episodes)
        out_dir = Path(args.out_dir)
        sections = []
        for scenario in scenarios:
            result = simulate(episodes, baseline, scenario, baseline_priced=before)
            result.write_tables(out_dir)
            sections += result.report_sections()
            totals = result.totals.to_pylist()[0]
            lines.append(
                f"{scenario.name}: {totals['drg_changed']:,} of {totals['episodes']:,} episodes changed DRG; points "
                f"{totals['points_change']:+,.2f}; reimbursement {totals['reimbursement_change']:+,.0f}"
            )
            if args.sample_probability:
                estimate = extrapolate_sample(result, inclusion_probability=args.sample_probability, stratum=strata)
                sections.append((f"{scenario.name}: extrapolation to the population", estimate.html()))
                lines.append(f"  {estimate.verdict}")
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
    if args.sample_probability:
        lines.insert(0, f"extrapolation within strata: {', '.join(strata)}" if strata else "extrapolation: no strata")
    print("\n".join([*lines, f"tables in {out_dir}, report {report}"]))
    return 0


def _sample_strata(args: argparse.Namespace, columns: list[str]) -> list[str]:
    """The design strata of a reviewed sample: the columns named, else the review sample's `stratum`."""
    if not args.sample_probability:
        return []
    named = args.sample_stratum or (["stratum"] if "stratum" in columns else [])
    missing = [name for name in named if name not in columns]
    if missing:
        raise NordgroupError(f"--sample-stratum: no column {', '.join(missing)} in the input")
    return named


def _print_summary(table) -> None:
    print("\t".join(table.column_names))
    for record in table.to_pylist():
        print("\t".join(f"{v:,.4f}" if isinstance(v, float) else str(v) for v in record.values()))
