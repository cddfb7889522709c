"""The handler of `nordgroup compare`: two codings of the same episodes from files, compared.

`grammar.py` holds the grammar and calls `compare_command` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys

from nordgroup.cli.group import guess_layout
from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import read_episodes, write_table
from nordgroup.review.comparison import compare
from nordgroup.tables.load import load_tables

__all__ = ["compare_command"]


def compare_command(args: argparse.Namespace) -> int:
    grouper = Grouper(load_tables(args.tables, cache=True))
    a = read_episodes(args.a, layout=guess_layout(args.a, args.layout))
    b = read_episodes(args.b, layout=guess_layout(args.b, args.layout))
    result = compare(
        a, b, grouper, weights=args.weights, by=args.by or None, replicates=args.replicates, seed=args.seed
    )
    written = [(result.episodes, args.out), (result.agreement, args.agreement_out)]
    written += [(result.confusion, args.confusion_out), (result.unmatched, args.unmatched_out)]
    for table, path in written:
        if path:
            write_table(table, path)
    if args.report:
        result.report(args.report)
    print(result.summary())
    for reason, count in _reasons(result.unmatched):
        print(f"  unmatched: {count:,} {reason}", file=sys.stderr)
    print("written: " + ", ".join(path for _, path in [*written, (None, args.report)] if path))
    return 0


def _reasons(unmatched) -> list[tuple[str, int]]:
    counts = unmatched.group_by("reason").aggregate([([], "count_all")]).to_pylist()
    return [(row["reason"], row["count_all"]) for row in counts]
