"""The handlers of `nordgroup audit` (findings, indicators, review sample, worklist and HTML report
from files) and `nordgroup corrections` (a filled worklist back to a corrections table).

`grammar.py` holds the grammar and calls `audit_command` or `corrections_command` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.cli.group import guess_layout
from nordgroup.cli.tables import tables_of
from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import iter_episodes, read_episodes, write_table
from nordgroup.money.financing import load_financing
from nordgroup.money.weights import load_weights, parse_weight_columns
from nordgroup.review._columns import unit_columns
from nordgroup.review.blocklist import layered_block_list
from nordgroup.review.findings import audit, drg_points
from nordgroup.review.report import audit_report
from nordgroup.review.sample import SampleSizeWarning, review_sample
from nordgroup.review.unit_indicators import indicators

__all__ = ["audit_command", "corrections_command"]


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
    grouper = Grouper(tables_of(args))
    episodes, grouped = _read_and_group(args.input, guess_layout(args.input, args.layout), grouper)
    units = [name for name in unit_columns(args.unit_column) if name in episodes.column_names]
    unit = units or None
    period = args.period_column if args.period_column in episodes.column_names else None
    for name in [*unit_columns(args.unit_column), args.period_column]:
        if name not in episodes.column_names:
            print(f"nordgroup audit: no column {name!r}; results are not split by it", file=sys.stderr)
    if args.worklist and not args.sample:
        raise ValueError("--worklist writes the review sample: give --sample too")
    columns = parse_weight_columns(args.weights_columns) if args.weights_columns else None
    weights = load_weights(args.weights, columns=columns) if args.weights else None
    financing = load_financing(args.financing) if args.financing else None
    given = args.block_list or []
    block_list = layered_block_list(
        [tuple(item.split("=", 1)) if "=" in item else item for item in given if item != "none"],
        default="none" not in given,
    )
    findings = audit(
        episodes,
        grouper,
        weights=weights,
        financing=financing,
        block_list=block_list,
        reported_drg_column=args.reported_drg_column,
        invoiced_amount_column=args.invoiced_amount_column,
        grouped=grouped,
        date_column=period if args.period else None,
    )
    _write(findings, args.out)
    split: dict[str, Any] = {"unit_column": unit, "period_column": period, "period": args.period if period else None}
    if args.indicators_out:
        _write(indicators(episodes, grouped, findings, **split), args.indicators_out)
    risk = None
    if args.sensitivity:
        from nordgroup.review.code_sensitivity import carried_by_one_code, sensitivity

        changes = sensitivity(episodes, grouper, weights=weights, progress=True)
        write_table(changes, args.sensitivity)
        risk = carried_by_one_code(changes, len(episodes))
        print(f"sensitivity: {int(risk.sum()):,} episodes whose DRG hangs on one code -> {args.sensitivity}")
    sample = None
    if args.sample:
        points = drg_points(grouped, weights, episodes=episodes) if weights is not None else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SampleSizeWarning)
            sample = review_sample(
                episodes, findings, fraction=args.sample, seed=args.seed, points=points, risk=risk, **split
            )
        for warning in caught:
            print(f"nordgroup audit: warning: {warning.message}", file=sys.stderr)
        _write(sample, args.sample_out)
        if args.worklist:
            from nordgroup.review.worklist import write_worklist

            demo = bool(weights is not None and weights.demo)
            write_worklist(
                args.worklist, episodes, grouped, findings, sample, unit_column=unit, points=points, demo_points=demo
            )
    if args.report:
        demo = bool(weights is not None and weights.demo)
        release = grouper.tables.release
        audit_report(
            args.report, episodes, grouped, findings, sample=sample, demo_weights=demo, release=release, **split
        )
    counts = pc.value_counts(findings.column("kind")).to_pylist() if len(findings) else []
    print(
        f"{len(episodes):,} episodes, {len(findings):,} findings in {time.perf_counter() - started:.1f} s -> {args.out}"
    )
    for item in sorted(counts, key=lambda item: -item["counts"]):
        print(f"  {item['values']:<24} {item['counts']:>10,}")
    shares = indicators(episodes, grouped, findings, unit_column=None, period_column=None, care_type=False)
    error_share, rtc_share = (
        shares.column(name)[0].as_py() or 0.0 for name in ("error_drg_share", "return_code_share")
    )
    print(f"  error DRGs (470 series): {error_share:.2%} of episodes; return code other than 0/A: {rtc_share:.2%}")
    if sample is not None:
        print(f"review sample: {len(sample):,} episodes -> {args.sample_out}")
        merged = pc.sum(pc.match_substring(sample.column("stratum"), " + ")).as_py() or 0
        if merged:
            print(
                f"  {merged:,} sampled episodes stand for merged strata (too few draws for each stratum of their cell)"
            )
    if args.worklist:
        print(f"worklist -> {args.worklist}")
    if args.report:
        print(f"report -> {args.report}")
    return 0


def corrections_command(args: argparse.Namespace) -> int:
    """`nordgroup corrections`: a filled worklist back to a corrections table and the reviewed sample."""
    from nordgroup.review.worklist import read_worklist

    review = read_worklist(args.worklist)
    _write(review.corrections, args.out)
    print(
        f"{len(review.reviewed):,} reviewed episodes, {len(review.corrections):,} corrections -> {args.out}"
        + (
            f"; {len(review.not_reviewed):,} not reviewed (blank or unclear verdict), left out"
            if review.not_reviewed
            else ""
        )
    )
    if args.sample_out and not args.episodes:
        raise ValueError("--sample-out needs --episodes: the audited episodes the worklist was drawn from")
    if args.episodes:
        episodes = read_episodes(args.episodes, layout=guess_layout(args.episodes, args.layout))
        ids = pc.cast(episodes.column("episode_id"), pa.string())
        position = pc.index_in(review.reviewed.column("episode_id"), value_set=ids)
        if position.null_count:
            unknown = review.reviewed.filter(pc.is_null(position)).slice(0, 1).to_pylist()[0]
            raise ValueError(
                f"{args.worklist}: sheet {unknown['sheet']!r}, row {unknown['row']}: episode "
                f"{unknown['episode_id']} is not in {args.episodes} ({position.null_count} such)"
            )
        reviewed = episodes.take(position)
        for name in ("stratum", "inclusion_probability", "verdict"):
            if name in reviewed.column_names:
                reviewed = reviewed.drop_columns([name])
            reviewed = reviewed.append_column(name, review.reviewed.column(name))
        out = args.sample_out or str(Path(args.out).with_name("reviewed_sample.parquet"))
        _write(reviewed, out)
        print(f"reviewed episodes -> {out} (simulate it with --sample-probability inclusion_probability)")
    return 0


def _write(table: pa.Table, path: str) -> None:
    """A result table by suffix; `.xlsx` through the worklist's writer (needs [excel])."""
    if Path(path).suffix.lower() == ".xlsx":
        from nordgroup.review.worklist import write_xlsx

        write_xlsx(table, path)
    else:
        write_table(table, path)
