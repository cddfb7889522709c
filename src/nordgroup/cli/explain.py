"""The handler of `nordgroup explain`: one episode from arguments or a file, explained.

`grammar.py` holds the grammar and calls `run_explain` with the parsed arguments; it returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from nordgroup.cli.tables import tables_of
from nordgroup.engine.explain import episode_from_row, explain_episode
from nordgroup.engine.reference import Episode
from nordgroup.episodes.layouts import read_episodes

__all__ = ["run_explain"]


def run_explain(args: argparse.Namespace) -> int:
    tables = tables_of(args)
    episode = _episode(args)
    if episode is None:
        print("explain: give --dx, --nor-string or --file", file=sys.stderr)
        return 2
    explanation = explain_episode(tables, episode)
    print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False) if args.json else explanation)
    return 0


def _episode(args: argparse.Namespace) -> Episode | dict | None:
    if args.file:
        table = read_episodes(args.file, args.layout)
        return episode_from_row(table.slice(args.row, 1).to_pylist()[0])
    if args.nor_string:
        return _from_nor_string(args.nor_string)
    if not args.dx:
        return None
    return episode_from_row(
        {
            "diagnoses": args.dx,
            "procedures": args.proc,
            "sex": args.sex,
            "age_days": args.age_days,
            "duration_days": args.duration,
            "discharge": args.discharge,
        }
    )


def _from_nor_string(text: str) -> Episode:
    """One Norwegian episode string, read by the same reader as files of them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "episode.txt"
        path.write_text(text + "\n", encoding="utf-8")
        table = read_episodes(path, "nor-string")
    return episode_from_row(table.to_pylist()[0])
