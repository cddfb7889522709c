"""The `nordgroup` command line: a thin edge over the library.

Library code raises exceptions; `main` turns them into one line on stderr and an exit code, so
exit codes exist only here. Every subcommand is a function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.episodes import read_episodes, write_table
from nordgroup.exceptions import NordgroupError
from nordgroup.tables.load import load_tables
from nordgroup.tables.model import DrgTables

__all__ = ["entrypoint", "main", "main_parser"]

DEMO_TABLES = Path(__file__).resolve().parents[2] / "grouper_tables"
_CHUNK = 200_000  # rows per kernel call on the command line: bounded memory, a moving progress bar
OK_RETURN_CODES = ("0", "A")  # the guide: "0 or the letter A means that the input data are correct"


def _tables(path: str) -> DrgTables:
    return load_tables(path, cache=True)


def _layout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout", choices=("canonical", "wide", "nor-string"), default=None,
        help="input layout (default: nor-string for .txt and ;-separated case files, else canonical)",
    )  # fmt: skip


def _guess_layout(path: str, layout: str | None) -> str:
    if layout:
        return layout
    if path.endswith((".txt", ".txt.gz")):
        return "nor-string"
    head = Path(path).read_bytes()[:2048] if Path(path).suffix == ".csv" else b""
    return "nor-string" if b"DRGGrupperingsstreng" in head or b"case_string" in head else "canonical"


def group_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from nordgroup.grouper import Grouper  # here, not at the top: only grouping commands load Numba

    grouper = Grouper(_tables(args.tables))
    episodes = read_episodes(args.input, layout=_guess_layout(args.input, args.layout))
    results = [grouper.group(chunk) for chunk in _progress(episodes, args.quiet)]
    result = pa.concat_tables(results) if results else grouper.group(episodes)
    write_table(result, args.output)
    print(summary(result, grouper.tables, time.perf_counter() - started, args.output))
    return 0


def _progress(table: pa.Table, quiet: bool):
    if len(table) <= _CHUNK or quiet:
        yield table
        return
    from tqdm import tqdm

    with tqdm(total=len(table), unit=" episodes", unit_scale=True, file=sys.stderr) as bar:
        for start in range(0, len(table), _CHUNK):
            chunk = table.slice(start, _CHUNK)
            yield chunk
            bar.update(len(chunk))


def summary(result: pa.Table, tables: DrgTables, seconds: float, output: str | None = None) -> str:
    """One screen: episodes, DRGs, error DRGs, unknown codes, time."""
    n = len(result)
    errors = pc.sum(pc.invert(pc.is_in(pc.fill_null(result["rtc"], ""), pa.array(OK_RETURN_CODES)))).as_py() or 0
    flags = result["flags"].to_numpy()
    from nordgroup.encode import FLAG_NAMES

    lines = [
        f"tables      {tables.release.label} ({len(tables.rules)} rules)",
        f"episodes    {n:,}",
        f"DRGs        {len(pc.unique(result['drg'])):,} distinct",
        f"error DRGs  {errors:,} with a return code other than 0/A ({100 * errors / max(n, 1):.2f} %)",
    ]
    for bit, name in FLAG_NAMES.items():
        count = int(((flags & bit) != 0).sum())
        if count:
            lines.append(f"            {count:,} rows: {name}")
    top = pc.value_counts(result["drg"]).to_pylist()
    top.sort(key=lambda item: -item["counts"])
    lines.append("top DRGs    " + ", ".join(f"{item['values']} ({item['counts']:,})" for item in top[:5]))
    lines.append(f"time        {seconds:.2f} s ({n / max(seconds, 1e-9):,.0f} episodes/s, table loading included)")
    if output:
        lines.append(f"written     {output}")
    return "\n".join(lines)


def synth_command(args: argparse.Namespace) -> int:
    from nordgroup.synth import synthesize

    table = synthesize(_tables(args.tables), args.n, seed=args.seed)
    write_table(table, args.output)
    print(f"{len(table):,} synthetic episodes written to {args.output}")
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """The main job on the embedded demo tables: synthesize, group, summarise."""
    from nordgroup.grouper import Grouper
    from nordgroup.synth import synthesize

    started = time.perf_counter()
    tables = _tables(str(DEMO_TABLES))
    episodes = synthesize(tables, args.n, seed=args.seed)
    result = Grouper(tables).group(episodes)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_table(result, output)
    print(summary(result, tables, time.perf_counter() - started, str(output)))
    print("(demo tables: illustrative, not an official NordDRG release; see grouper_tables/README.md)")
    return 0


def tables_info_command(args: argparse.Namespace) -> int:
    tables = _tables(args.path)
    release = tables.release
    print(f"release     {release.label} ({release.layout})")
    print(f"source      {', '.join(release.source_files)}")
    print(f"sha256      {release.source_hash}")
    print(
        f"contents    {len(tables.rules):,} rules, {len(tables.diagnoses):,} diagnoses, "
        f"{len(tables.procedures):,} procedures, {len(tables.drgs):,} DRGs, "
        f"{len(tables.complication_categories):,} complication categories"
    )
    print(f"findings    {len(tables.findings):,}")
    for finding in tables.findings[: args.findings]:
        row = f" row {finding.row}" if finding.row is not None else ""
        print(f"  [{finding.table}{row}] {finding.kind}: {finding.message}")
    if len(tables.findings) > args.findings:
        print(f"  ... {len(tables.findings) - args.findings} more (--findings N shows more)")
    return 0


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nordgroup", description="NordDRG grouping on Arrow batches.")
    commands = parser.add_subparsers(dest="command", required=True)

    group = commands.add_parser("group", help="group episodes: INPUT → OUTPUT (.parquet, .csv, .arrow)")
    group.add_argument("--tables", required=True, help="definition tables (JSON/zip, NDMS CSV folder, Excel)")
    group.add_argument("input")
    group.add_argument("output")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    _layout_argument(group)
    group.set_defaults(handler=group_command)

    synth = commands.add_parser("synth", help="write N synthetic episodes drawn from a table set")
    synth.add_argument("n", type=int)
    synth.add_argument("--tables", required=True)
    synth.add_argument("output")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=synth_command)

    demo = commands.add_parser("demo", help="group synthetic episodes on the embedded demo tables")
    demo.add_argument("--n", type=int, default=40_000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--output", default="out/demo_groups.parquet")
    demo.set_defaults(handler=demo_command)

    tables = commands.add_parser("tables", help="inspect definition tables")
    tables_commands = tables.add_subparsers(dest="tables_command", required=True)
    info = tables_commands.add_parser("info", help="release, counts and findings")
    info.add_argument("path")
    info.add_argument("--findings", type=int, default=20, help="how many findings to list")
    info.set_defaults(handler=tables_info_command)

    # Subcommands of the explain, audit and money layers live beside their modules, imported here
    # so that `nordgroup group` does not pay for matplotlib and the rest at start-up.
    from nordgroup import _cli_audit, _cli_explain, _cli_money

    for module in (_cli_explain, _cli_audit, _cli_money):
        module.register(commands)
        if hasattr(module, "register_tables"):
            module.register_tables(tables_commands)
    return parser


def main(cli_args: Sequence[str], prog: str | None = None) -> int:
    parser = main_parser()
    if prog:
        parser.prog = prog
    args = parser.parse_args(cli_args)
    try:
        return args.handler(args)
    except (NordgroupError, FileNotFoundError, ValueError, ImportError) as error:
        print(f"nordgroup: error: {error}", file=sys.stderr)
        return 2


def entrypoint() -> None:
    raise SystemExit(main(sys.argv[1:]))


if __name__ == "__main__":
    entrypoint()
