"""The `nordgroup` command line: its whole grammar, and the one place exit codes are made.

Every subcommand and argument is declared here; the work is done by handlers in the `nordgroup.cli.*`
modules (grouping, explaining, auditing, money), imported only when their subcommand runs, so a
quick question such as `nordgroup tables code` does not pay for Arrow, Numba or matplotlib.
Library code raises exceptions; `main` turns them into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from nordgroup.codes import ROLES
from nordgroup.exceptions import NordgroupError

__all__ = ["entrypoint", "main", "main_parser", "question_parser"]

LAYOUTS = ("canonical", "wide", "nor-string")


def _handler(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The handler `name` of `nordgroup.<module>`, imported when it is called."""
    return functools.partial(_run_handler, module, name)


def _run_handler(module: str, name: str, args: argparse.Namespace) -> int:
    return getattr(importlib.import_module(f"nordgroup.{module}"), name)(args)


def _layout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout", choices=LAYOUTS, default=None,
        help="input layout (default: nor-string for .txt and ;-separated case files, else canonical)",
    )  # fmt: skip


def _reading_arguments(parser: argparse.ArgumentParser) -> None:
    """How the tables are read: which national version's rows, which code columns."""
    parser.add_argument(
        "--national-version", metavar="VERSION",
        help="keep only the rows of this national version (nat_ver: swe, fin, nor, ...); a Combined release needs it",
    )  # fmt: skip
    parser.add_argument(
        "--codes", choices=("national", "plus"), default=None,
        help="code columns of an NDMS release: national (code_nat) or plus (code_plus, ICD-10+/NCSP+); "
        "default: national where the release has them",
    )  # fmt: skip


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nordgroup", description="NordDRG grouping on Arrow batches.")
    parser.set_defaults(ends_at_once=False)
    commands = parser.add_subparsers(dest="command", required=True)

    group = commands.add_parser("group", help="group episodes: INPUT → OUTPUT (.parquet, .csv, .arrow)")
    group.add_argument("--tables", required=True, help="definition tables (JSON/zip, NDMS CSV folder, Excel)")
    _reading_arguments(group)
    group.add_argument("input")
    group.add_argument("output")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    _layout_argument(group)
    group.set_defaults(handler=_handler("cli.group", "group_command"))

    synth = commands.add_parser("synth", help="write N synthetic episodes drawn from a table set")
    synth.add_argument("n", type=int)
    synth.add_argument("--tables", required=True)
    _reading_arguments(synth)
    synth.add_argument("output")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=_handler("cli.group", "synth_command"))

    demo = commands.add_parser("demo", help="group synthetic episodes on the embedded demo tables")
    demo.add_argument("--n", type=int, default=40_000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--output", default="out/demo_groups.parquet")
    demo.set_defaults(handler=_handler("cli.group", "demo_command"))

    tables = commands.add_parser("tables", help="inspect definition tables")
    tables_commands = tables.add_subparsers(dest="tables_command", required=True)
    info = tables_commands.add_parser("info", help="release, counts and findings")
    info.add_argument("path")
    _reading_arguments(info)
    info.add_argument("--findings", type=int, default=20, help="how many findings to list")
    info.set_defaults(handler=_handler("cli.group", "tables_info_command"))
    _table_question_commands(tables_commands)
    export = tables_commands.add_parser("export", help="write a release as NDMS CSV files or as one Excel workbook")
    export.add_argument("tables", metavar="TABLES", help="definition tables (zip, JSON, NDMS folder or workbook)")
    export.add_argument("out", metavar="OUT", help="a folder (ndms) or an .xlsx file (excel)")
    export.add_argument("--format", choices=("ndms", "excel"), help="default: excel for OUT ending in .xlsx, else ndms")
    _reading_arguments(export)
    export.set_defaults(handler=_handler("cli.tables", "run_export"))

    _explain_commands(commands)
    _audit_command(commands)
    _compare_command(commands)
    _money_commands(commands)
    return parser


def _explain_commands(subparsers: argparse._SubParsersAction) -> None:
    """`explain`: how one episode is grouped."""
    parser = subparsers.add_parser("explain", help="explain how one episode is grouped")
    parser.add_argument("--tables", required=True, help="definition tables (zip, JSON, NDMS folder or workbook)")
    _reading_arguments(parser)
    parser.add_argument("--dx", nargs="+", default=[], help="diagnoses, principal first; a pair as 'E830 F028'")
    parser.add_argument("--proc", nargs="+", default=[], help="procedures, the first is 'the first procedure'")
    parser.add_argument("--sex", type=int, choices=(1, 2), help="1 male, 2 female")
    parser.add_argument("--age-days", type=int)
    parser.add_argument("--duration", type=int, help="hospital days (0 for outpatient contacts)")
    parser.add_argument("--discharge", help="E died, N alive (H read as N), R transferred")
    parser.add_argument("--nor-string", help="one Norwegian episode string (sex,age,discharge,duration,,dx...)")
    parser.add_argument("--file", help="a file of episodes; the first row is explained (see --layout, --row)")
    parser.add_argument("--layout", default="canonical", choices=LAYOUTS)
    parser.add_argument("--row", type=int, default=0, help="which row of --file to explain (0-based)")
    parser.add_argument("--json", action="store_true", help="print JSON for other tools")
    parser.set_defaults(handler=_handler("cli.explain", "run_explain"))


def _table_question_commands(tables_subparsers: argparse._SubParsersAction) -> None:
    """`tables code`, `tables drg`, `tables diff`, `tables shell`: questions to the tables."""
    code = _code_question(tables_subparsers)
    code.add_argument("--tables", required=True)
    _reading_arguments(code)
    code.set_defaults(handler=_handler("cli.tables", "run_code"), ends_at_once=True)

    drg = _drg_question(tables_subparsers)
    drg.add_argument("--tables", required=True)
    _reading_arguments(drg)
    drg.set_defaults(handler=_handler("cli.tables", "run_drg"), ends_at_once=True)

    diff = tables_subparsers.add_parser("diff", help="what changed between two releases")
    diff.add_argument("a")
    diff.add_argument("b")
    _reading_arguments(diff)
    diff.add_argument("--output", help="write the change table (.csv, .parquet or .arrow)")
    diff.set_defaults(handler=_handler("cli.tables", "run_diff"))

    shell = tables_subparsers.add_parser(
        "shell", help="ask `code ...` and `drg ...` questions one per line, with the tables loaded once"
    )
    shell.add_argument("--tables", required=True)
    _reading_arguments(shell)
    shell.set_defaults(handler=_handler("cli.tables", "run_shell"), ends_at_once=True)


def _code_question(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    code = subparsers.add_parser("code", help="every property of a code, and the DRGs it can lead to")
    code.add_argument("code")
    code.add_argument("--role", choices=ROLES, help="also list the DRGs the code can lead to in this role")
    code.add_argument("--json", action="store_true")
    return code


def _drg_question(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    drg = subparsers.add_parser("drg", help="the rules leading to a DRG and the codes that satisfy them")
    drg.add_argument("drg")
    drg.add_argument("--json", action="store_true")
    return drg


def question_parser() -> argparse.ArgumentParser:
    """The grammar of one line of `nordgroup tables shell`: `code ...` or `drg ...` without --tables."""
    parser = argparse.ArgumentParser(prog="nordgroup tables shell", add_help=False)
    questions = parser.add_subparsers(dest="question", required=True)
    _code_question(questions)
    _drg_question(questions)
    return parser


def _audit_command(subparsers: argparse._SubParsersAction) -> None:
    """`audit`: wrong DRG outcomes and coding findings."""
    parser = subparsers.add_parser(
        "audit",
        help="spot wrong DRG outcomes: findings, indicators per unit, review sample, HTML report",
        description="Group INPUT, list findings (error DRGs, return codes, unknown codes, block-list "
        "violations, symptom/unspecified principal diagnoses, reported-vs-regrouped DRG, duplicates, "
        "implausible age/sex), and optionally draw a review sample and write an HTML report.",
    )
    parser.add_argument("input", metavar="INPUT", help="episodes: canonical .parquet, .arrow or .csv (see --layout)")
    parser.add_argument("--tables", required=True, metavar="PATH", help="definition tables (zip, folder or workbook)")
    _reading_arguments(parser)
    parser.add_argument("--layout", choices=LAYOUTS, default=None, help="input layout (default: by suffix)")
    parser.add_argument("--weights", metavar="CSV", help="weight table or published weight list (CSV or Excel)")
    _weights_columns_argument(parser)
    parser.add_argument("--financing", metavar="TOML", help="financing: the money at stake besides the points")
    parser.add_argument(
        "--block-list",
        action="append",
        metavar="[LAYER=]FILE",
        help="a block-list layer (.csv or .toml), repeatable (regional=vgr.toml --block-list unit=ward7.csv); "
        "layers add to the shipped default; 'none' leaves the default out",
    )
    parser.add_argument(
        "--unit-column",
        default="unit",
        help="column naming the unit, or several comma-separated (administration,coder) (default: unit)",
    )
    parser.add_argument(
        "--period-column", default="period", help="column naming the period, e.g. ISO week (default: period)"
    )
    parser.add_argument(
        "--period",
        choices=("week", "month", "quarter", "year"),
        help="cut a date period column (date or YYYY-MM-DD) into ISO weeks, months, quarters or years",
    )
    parser.add_argument("--reported-drg-column", help="column with the DRG that was reported or invoiced")
    parser.add_argument(
        "--invoiced-amount-column", help="column with the invoiced amount, compared with the regrouped price"
    )
    parser.add_argument(
        "--sample", type=parse_fraction, metavar="SHARE", help="draw a review sample, e.g. 25%% or 0.25"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the review sample (default: 0)")
    parser.add_argument("--sample-out", default="review_sample.csv", metavar="PATH", help="where the sample goes")
    parser.add_argument("--report", metavar="HTML", help="write a self-contained HTML report")
    parser.add_argument(
        "--out", default="findings.parquet", metavar="PATH", help="findings (.parquet, .arrow, .csv, .xlsx)"
    )
    parser.add_argument("--indicators-out", metavar="PATH", help="indicator table (.parquet, .arrow, .csv, .xlsx)")
    parser.add_argument(
        "--worklist", metavar="XLSX", help="with --sample: the reviewers' workbook, one sheet per unit (needs [excel])"
    )
    parser.add_argument(
        "--sensitivity", metavar="PATH",
        help="write the codes whose removal or swap changes the DRG to PATH; "
        "with --sample, an episode whose DRG hangs on one code is sampled as one with a finding",
    )  # fmt: skip
    parser.set_defaults(handler=_handler("cli.audit", "audit_command"))

    corrections = subparsers.add_parser(
        "corrections",
        help="read a filled review worklist back as a corrections table for simulate",
        description="Read the workbook `audit --worklist` wrote, after review: the corrections (with each "
        "episode's stratum and inclusion probability) and, with --episodes, the reviewed episodes for "
        "`simulate --sample-probability inclusion_probability`. Unreadable cells are named by sheet, row, column.",
    )
    corrections.add_argument("worklist", metavar="XLSX", help="the filled worklist")
    corrections.add_argument("--out", default="corrections.csv", metavar="PATH", help="corrections table")
    corrections.add_argument("--episodes", metavar="PATH", help="the audited episodes, to write the reviewed ones")
    corrections.add_argument("--layout", choices=LAYOUTS, default=None, help="layout of --episodes")
    corrections.add_argument(
        "--sample-out", metavar="PATH", help="with --episodes: the reviewed episodes with inclusion_probability"
    )
    corrections.set_defaults(handler=_handler("cli.audit", "corrections_command"))


def _compare_command(subparsers: argparse._SubParsersAction) -> None:
    """`compare`: two codings of the same episodes."""
    parser = subparsers.add_parser(
        "compare",
        help="compare two codings of the same episodes (coder vs AI, before vs after review)",
        description="Join A and B on episode_id, group both and report per-episode differences, agreement "
        "(principal diagnosis, precision/recall/F1 of B against A, DRG/MDC/CC level, points) with bootstrap "
        "intervals, the DRG confusion table and the episodes found in one coding only.",
    )
    parser.add_argument("a", metavar="A", help="the reference coding (.parquet, .arrow, .csv or .txt)")
    parser.add_argument("b", metavar="B", help="the coding judged against A")
    parser.add_argument("--tables", required=True, metavar="PATH", help="definition tables (zip, folder or workbook)")
    _layout_argument(parser)
    parser.add_argument("--weights", metavar="CSV", help="weight table: points of both codings (money's pricing)")
    parser.add_argument(
        "--by", action="append", metavar="COLUMN", help="split agreement by COLUMN of A (repeatable; "
        "default: unit, care_type, period where present)",
    )  # fmt: skip
    parser.add_argument("--replicates", type=int, default=400, help="bootstrap replicates (default: 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    parser.add_argument("--out", default="comparison.parquet", metavar="PATH", help="per-episode differences")
    parser.add_argument("--agreement-out", metavar="PATH", help="agreement table (.parquet, .arrow, .csv)")
    parser.add_argument("--confusion-out", metavar="PATH", help="DRG confusion table A -> B")
    parser.add_argument("--unmatched-out", metavar="PATH", help="episodes found in one coding only")
    parser.add_argument("--report", metavar="HTML", help="write a self-contained HTML report")
    parser.set_defaults(handler=_handler("cli.compare", "compare_command"))


def parse_fraction(text: str) -> float:
    """`25%` or `0.25` → 0.25."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share such as 25% or 0.25") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be above 0 and at most 100%")
    return value


def _money_commands(subparsers: argparse._SubParsersAction) -> None:
    """`price` and `simulate`: money and what-if."""
    price = subparsers.add_parser(
        "price",
        help="group and price episodes: DRG points, long-stay supplement, reimbursement",
        description="Group episodes, price them with a weight table and financing, write the table.",
    )
    _priced_input(price)
    price.add_argument("--output", "-o", required=True, help="result table (.parquet, .arrow or .csv)")
    price.add_argument(
        "--by", action="append", default=[], metavar="COLUMN", help="print a casemix summary by COLUMN (repeatable)"
    )
    price.set_defaults(handler=_handler("cli.money", "run_price"))

    simulate = subparsers.add_parser(
        "simulate",
        help="regroup and reprice under scenarios (corrections, recoding, tables, weights, prices)",
        description="Compare episodes under the baseline and under each scenario; write tables and an HTML report.",
    )
    _priced_input(simulate)
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
    simulate.add_argument(
        "--sample-stratum",
        action="append",
        metavar="COLUMN",
        help="a column of the sample's design strata, bootstrapped within (repeatable: the strata are their "
        "combinations; default: the review sample's `stratum` column when the input has one)",
    )
    simulate.set_defaults(handler=_handler("cli.money", "run_simulate"))


def _weights_columns_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights-columns",
        metavar="MAP",
        help="the weight list's headers for our columns, e.g. drg=DRG,weight=Vekt,trim_days=Trimpunkt "
        "(names: drg, name, weight, trim_days, per_day_weight, weight_outpatient, weight_day_surgery)",
    )


def _priced_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="episodes (.parquet, .arrow, .csv or .txt)")
    parser.add_argument("--tables", required=True, help="definition tables of the baseline (zip, JSON, folder, Excel)")
    _reading_arguments(parser)
    parser.add_argument("--weights", required=True, help="weight table or published weight list (CSV or Excel)")
    _weights_columns_argument(parser)
    parser.add_argument("--financing", required=True, help="financing TOML (price_per_point, activity_share, year)")
    parser.add_argument("--layout", default="canonical", choices=LAYOUTS)
    parser.add_argument("--id-column", help="the column to use as episode_id")


def main(cli_args: Sequence[str], prog: str | None = None) -> int:
    parser = main_parser()
    if prog:
        parser.prog = prog
    return _run(parser.parse_args(cli_args))


def _run(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except (NordgroupError, FileNotFoundError, ValueError, ImportError) as error:
        print(f"nordgroup: error: {error}", file=sys.stderr)
        return 2


def entrypoint() -> None:
    args = main_parser().parse_args(sys.argv[1:])
    try:
        code = _run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`nordgroup tables drg 121 | head`): not an error, and Python
        # must not complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    if args.ends_at_once:
        # Table questions write only to stdout and import nothing that registers exit handlers
        # (a test asserts both). Freeing their tables and SAT formula object by object at exit
        # took 0.1 s of a 0.5 s answer; the operating system takes the memory back at once.
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    entrypoint()
