"""The `nordgroup audit` subcommand: findings, indicators, review sample and HTML report from files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["audit_command", "parse_fraction", "read_weights", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `audit` to the `nordgroup` command line."""
    parser = subparsers.add_parser(
        "audit",
        help="spot wrong DRG outcomes: findings, indicators per unit, review sample, HTML report",
        description="Group INPUT, list findings (error DRGs, return codes, unknown codes, block-list "
        "violations, symptom/unspecified principal diagnoses, reported-vs-regrouped DRG, duplicates, "
        "implausible age/sex), and optionally draw a review sample and write an HTML report.",
    )
    parser.add_argument("input", metavar="INPUT", help="episodes: canonical .parquet, .arrow or .csv (see --layout)")
    parser.add_argument("--tables", required=True, metavar="PATH", help="definition tables (zip, folder or workbook)")
    parser.add_argument(
        "--layout", choices=("canonical", "wide", "nor-string"), default=None, help="input layout (default: by suffix)"
    )
    parser.add_argument("--weights", metavar="CSV", help="weight table with columns drg, weight (points)")
    parser.add_argument(
        "--block-list", metavar="FILE", help="block list (.csv or .toml); default: the shipped list; 'none' for no list"
    )
    parser.add_argument("--unit-column", default="unit", help="column naming the unit (default: unit)")
    parser.add_argument(
        "--period-column", default="period", help="column naming the period, e.g. ISO week (default: period)"
    )
    parser.add_argument("--reported-drg-column", help="column with the DRG that was reported or invoiced")
    parser.add_argument(
        "--sample", type=parse_fraction, metavar="SHARE", help="draw a review sample, e.g. 25%% or 0.25"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the review sample (default: 0)")
    parser.add_argument("--sample-out", default="review_sample.csv", metavar="PATH", help="where the sample goes")
    parser.add_argument("--report", metavar="HTML", help="write a self-contained HTML report")
    parser.add_argument("--out", default="findings.parquet", metavar="PATH", help="findings (.parquet, .arrow, .csv)")
    parser.add_argument("--indicators-out", metavar="PATH", help="indicator table (.parquet, .arrow, .csv)")
    parser.set_defaults(handler=audit_command)


def parse_fraction(text: str) -> float:
    """`25%` or `0.25` → 0.25."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share such as 25% or 0.25") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be above 0 and at most 100%")
    return value


def read_weights(path: str | Path) -> pa.Table:
    """A weight CSV (columns drg, weight; others ignored) with DRG codes kept as text."""
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"drg": pa.string()}))
    missing = [name for name in ("drg", "weight") if name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: weight table lacks column(s) {', '.join(missing)}")
    return table.select(["drg", "weight"])


def audit_command(args: argparse.Namespace) -> int:
    from nordgroup.audit import audit, audit_report, drg_points, indicators, review_sample
    from nordgroup.blocklist import BlockList, load_block_list
    from nordgroup.cli import _guess_layout
    from nordgroup.episodes import read_episodes, write_table
    from nordgroup.grouper import Grouper
    from nordgroup.tables.load import load_tables

    started = time.perf_counter()
    grouper = Grouper(load_tables(args.tables, cache=True))
    episodes = read_episodes(args.input, layout=_guess_layout(args.input, args.layout))
    unit = args.unit_column if args.unit_column in episodes.column_names else None
    period = args.period_column if args.period_column in episodes.column_names else None
    for name, given in ((args.unit_column, unit), (args.period_column, period)):
        if given is None:
            print(f"nordgroup audit: no column {name!r}; results are not split by it", file=sys.stderr)
    weights = read_weights(args.weights) if args.weights else None
    if args.block_list == "none":
        block_list = BlockList((), "none")
    else:
        block_list = load_block_list(args.block_list) if args.block_list else None
    grouped = grouper.group(episodes)
    findings = audit(
        episodes,
        grouper,
        weights=weights,
        block_list=block_list,
        reported_drg_column=args.reported_drg_column,
        grouped=grouped,
    )
    write_table(findings, args.out)
    if args.indicators_out:
        write_table(
            indicators(episodes, grouped, findings, unit_column=unit, period_column=period), args.indicators_out
        )
    sample = None
    if args.sample:
        points = drg_points(grouped, weights) if weights is not None else None
        sample = review_sample(
            episodes,
            findings,
            fraction=args.sample,
            seed=args.seed,
            points=points,
            unit_column=unit,
            period_column=period,
        )
        write_table(sample, args.sample_out)
    if args.report:
        audit_report(args.report, episodes, grouped, findings, unit_column=unit, period_column=period, sample=sample)
    counts = pc.value_counts(findings.column("kind")).to_pylist() if len(findings) else []
    print(
        f"{len(episodes):,} episodes, {len(findings):,} findings in {time.perf_counter() - started:.1f} s -> {args.out}"
    )
    for item in sorted(counts, key=lambda item: -item["counts"]):
        print(f"  {item['values']:<24} {item['counts']:>10,}")
    if sample is not None:
        print(f"review sample: {len(sample):,} episodes -> {args.sample_out}")
    if args.report:
        print(f"report -> {args.report}")
    return 0
