"""The handlers of `group`, `synth`, `demo` and `tables info`: grouping on the command line.

`grammar.py` holds the grammar and calls these with the parsed arguments; each returns an exit code.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.cli.tables import tables_of
from nordgroup.engine.encode import FLAG_NAMES
from nordgroup.engine.grouper import Grouper
from nordgroup.engine.kernel import KernelPreparation
from nordgroup.episodes.layouts import DEFAULT_BATCH_SIZE, ResultWriter, iter_episodes, write_table
from nordgroup.episodes.synth import synthesize
from nordgroup.review.kinds import error_drgs
from nordgroup.tables.load import load_tables
from nordgroup.tables.model import DrgTables

DEMO_TABLES = Path(__file__).resolve().parents[3] / "grouper_tables"
_CHUNK = DEFAULT_BATCH_SIZE  # rows per kernel call on the command line: bounded memory, a moving progress bar
OK_RETURN_CODES = ("0", "A")  # the guide: "0 or the letter A means that the input data are correct"


def _tables(path: str) -> DrgTables:
    return load_tables(path, cache=True)


def guess_layout(path: str, layout: str | None) -> str:
    if layout:
        return layout
    if path.endswith((".txt", ".txt.gz")):
        return "nor-string"
    head = b""
    if Path(path).suffix == ".csv":
        with Path(path).open("rb") as stream:
            head = stream.read(2048)  # a header line, never the whole file
    return "nor-string" if b"DRGGrupperingsstreng" in head or b"case_string" in head else "canonical"


def group_command(args: argparse.Namespace) -> int:
    """Stream the input batch by batch into the output: memory is about one batch whatever the
    file's size, and the output appears under its name only once it is complete."""
    started = time.perf_counter()
    grouper = Grouper(tables_of(args))
    preparation = grouper.prepare()
    episodes = iter_episodes(args.input, layout=guess_layout(args.input, args.layout), batch_size=_CHUNK)
    # reading, grouping and writing overlap, each a batch apart: the text passes, the kernel and
    # Arrow's compute functions release the GIL; writing stays here, where the with block is
    with closing(_ahead(grouper.group_batches(_ahead(_progress(episodes, args.quiet))))) as results:
        first = next(results, None)
        if first is None:  # an empty input still gets an empty output with the result columns
            first = grouper.group(episodes.schema.empty_table())
        tally = _Tally(pa.array(sorted(error_drgs(grouper.tables))))  # counts, whatever the number of episodes
        with ResultWriter(args.output, first.schema) as writer:
            for result in itertools.chain([first], results):
                writer.write(result)
                tally.add(result)
    print(tally.summary(grouper.tables, time.perf_counter() - started, args.output, preparation))
    return 0


def _ahead(items: Iterable, depth: int = 1) -> Generator:
    """`items` in order, produced by a thread of their own up to `depth` ahead of the consumer, so
    that memory stays a few batches. An exception there is raised here, as it was raised; closing
    this generator (the consumer's error, Ctrl-C) stops the thread before it returns."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def hand_over(item: tuple) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                hand_over((True, item))
                if stop.is_set():
                    break
            else:
                hand_over((False, None))
        except BaseException as error:  # every one, Ctrl-C's too, is the consumer's
            hand_over((False, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # an inner `_ahead` stops its own thread in turn

    thread = threading.Thread(target=produce, name="nordgroup-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ready.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _progress(batches: pa.RecordBatchReader, quiet: bool) -> Iterator[pa.RecordBatch]:
    if quiet:
        yield from batches
        return
    from tqdm import tqdm

    with tqdm(unit=" episodes", unit_scale=True, file=sys.stderr, delay=1.0) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


class _Tally:
    """What the summary reports, counted batch by batch: memory is the distinct DRGs, not the episodes."""

    def __init__(self, error_drg_codes: pa.Array):
        self.error_drg_codes = set(error_drg_codes.to_pylist())
        self.episodes = self.errors = self.in_error = 0
        self.flags = dict.fromkeys(FLAG_NAMES, 0)
        self.drgs: Counter = Counter()  # in order of first appearance, which breaks ties in the top DRGs

    def add(self, result: pa.Table | pa.RecordBatch) -> None:
        # one pass over the batch per column, counting its distinct values, and the rest on those
        self.episodes += len(result)
        for rtc, count in _counts(result["rtc"]):
            if rtc not in OK_RETURN_CODES:  # a missing one (null) too
                self.errors += count
        flags = result["flags"].to_numpy()
        for bit in self.flags:
            self.flags[bit] += int(((flags & bit) != 0).sum())
        for drg, count in _counts(result["drg"]):
            self.drgs[drg] += count
            if drg in self.error_drg_codes:
                self.in_error += count

    def summary(
        self,
        tables: DrgTables,
        seconds: float,
        output: str | None = None,
        preparation: KernelPreparation | None = None,
    ) -> str:
        """One screen: episodes, DRGs, error DRGs (the 470 series), return codes other than 0/A,
        unknown codes, time. The kernel's one-time compilation, when `preparation` says it happened
        now, is shown apart: the rate printed is the grouping's."""
        n = self.episodes
        lines = [
            f"tables      {tables.release.label} ({len(tables.rules)} rules)",
            f"episodes    {n:,}",
            f"DRGs        {len(self.drgs):,} distinct",
            f"error DRGs  {self.in_error:,} in the error DRGs, the audit's error_drg "
            f"({100 * self.in_error / max(n, 1):.2f} %)",
            f"return code {self.errors:,} with a return code other than 0/A ({100 * self.errors / max(n, 1):.2f} %)",
        ]
        lines += [f"            {count:,} rows: {FLAG_NAMES[bit]}" for bit, count in self.flags.items() if count]
        top = sorted(self.drgs.items(), key=lambda item: -item[1])[:5]
        lines.append("top DRGs    " + ", ".join(f"{drg} ({count:,})" for drg, count in top))
        if preparation is not None:
            seconds -= preparation.seconds
            if preparation.compiled:
                lines.append(
                    f"compiling   {preparation.seconds:.2f} s, once: the kernel is now cached and later runs skip this"
                )
        lines.append(f"time        {seconds:.2f} s ({n / max(seconds, 1e-9):,.0f} episodes/s, table loading included)")
        if output:
            lines.append(f"written     {output}")
        return "\n".join(lines)


def _counts(column: pa.ChunkedArray | pa.Array) -> Iterator[tuple]:
    """Each distinct value (null too) and how often it occurs, in order of first appearance."""
    counted = pc.value_counts(column)
    return zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)


def summary(
    result: pa.Table,
    tables: DrgTables,
    seconds: float,
    output: str | None = None,
    preparation: KernelPreparation | None = None,
) -> str:
    """The summary of one result table."""
    tally = _Tally(pa.array(sorted(error_drgs(tables))))
    tally.add(result)
    return tally.summary(tables, seconds, output, preparation)


def synth_command(args: argparse.Namespace) -> int:
    table = synthesize(tables_of(args), args.n, seed=args.seed)
    write_table(table, args.output)
    print(f"{len(table):,} synthetic episodes written to {args.output}")
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """The main job on the embedded demo tables: synthesize, group, summarise."""
    started = time.perf_counter()
    tables = _tables(str(DEMO_TABLES))
    grouper = Grouper(tables)
    preparation = grouper.prepare()
    episodes = synthesize(tables, args.n, seed=args.seed)
    result = grouper.group(episodes)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_table(result, output)
    print(summary(result, tables, time.perf_counter() - started, str(output), preparation))
    print("(demo tables: illustrative, not an official NordDRG release; see grouper_tables/README.md)")
    return 0


def tables_info_command(args: argparse.Namespace) -> int:
    tables = tables_of(args, args.path)
    release = tables.release
    print(f"release     {release.label}")
    print(f"layout      {release.layout}")
    version = release.national_version
    print(
        f"national    {f'{version} (the rows whose nat_ver names it)' if version else 'every row (a national release)'}"
    )
    print(f"codes       {release.codes} ({'code_plus: ICD-10+/NCSP+' if release.codes == 'plus' else 'code_nat'})")
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
