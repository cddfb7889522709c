"""The handler of `nordgroup audit`: findings, indicators, review sample and HTML report from files.

`cli.py` holds the grammar and calls `audit_command` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup._cli_group import guess_layout
from nordgroup.audit import audit, audit_report, drg_points, indicators, review_sample
from nordgroup.blocklist import BlockList, load_block_list
from nordgroup.episodes import iter_episodes, write_table
from nordgroup.grouper import Grouper
from nordgroup.money import load_weights
from nordgroup.tables.load import load_tables

__all__ = ["audit_command"]


def _read_and_group(path: str, layout: str, grouper: Grouper) -> tuple[pa.Table, pa.Table]:
    """The episodes and their grouping, read and grouped batch by batch: the audit weighs every
    episode against all others (duplicates, indicators, samples), so both are kept whole, but no
    reader grid or whole-file grouping ever holds more than a batch besides."""
    reader = iter_episodes(path, layout)
    episodes, grouped = [], []
    for batch in reader:
        episodes.append(batch)
        grouped.append(grouper.group(batch))
    if not episodes:
        return reader.schema.empty_table(), grouper.group(reader.schema.empty_table())
    return pa.Table.from_batches(episodes, reader.schema), pa.concat_tables(grouped)


def audit_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    grouper = Grouper(load_tables(args.tables, cache=True))
    episodes, grouped = _read_and_group(args.input, guess_layout(args.input, args.layout), grouper)
    unit = args.unit_column if args.unit_column in episodes.column_names else None
    period = args.period_column if args.period_column in episodes.column_names else None
    for name, given in ((args.unit_column, unit), (args.period_column, period)):
        if given is None:
            print(f"nordgroup audit: no column {name!r}; results are not split by it", file=sys.stderr)
    weights = load_weights(args.weights).to_arrow() if args.weights else None
    block_list: BlockList | None
    if args.block_list == "none":
        block_list = BlockList((), "none")
    else:
        block_list = load_block_list(args.block_list) if args.block_list else None
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
