"""Episode files of any size: every text layout streams, one row per line, bad lines kept and named.

The fuzz test writes the same episodes in every text layout, spoils some lines (a line break
inside a field, a stray quote, binary junk, short and overlong lines, 300-character values) and
reads them back whole and in small batches from small blocks, so that lines straddle blocks.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
import threading

import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

import nordgroup as ng
from nordgroup.cli.group import _ahead
from nordgroup.engine.encode import FLAG_UNREADABLE_LINE
from nordgroup.episodes import _text
from nordgroup.episodes.layouts import PROBLEM_COLUMN, ResultWriter, iter_episodes, to_canonical
from nordgroup.exceptions import EpisodeFileError
from tests.conftest import DEMO_TABLES

LAYOUTS = ("canonical", "wide", "nor-string", "nor-string-csv")
_WIDE = 5  # dg1..dg5, proc1..proc5


@pytest.fixture(scope="module")
def demo_grouper():
    return ng.Grouper(ng.load_tables(DEMO_TABLES), cache=False)


# --------------------------------------------------------------------------------------------
# Writing episodes in each text layout

code = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=7) | st.just("Q" * 300)
episode = st.fixed_dictionaries(
    {
        "episode_id": st.text("abcdefghijk0123456789", min_size=1, max_size=8),
        "sex": st.sampled_from(["1", "2"]),
        "age_days": st.integers(0, 40_000).map(str),
        "duration_days": st.integers(0, 400).map(str),
        "discharge": st.sampled_from(["E", "N", "R"]),
        "diagnoses": st.lists(code, min_size=1, max_size=_WIDE),
        "procedures": st.lists(code, max_size=_WIDE),
    }
)


def _nor_string(e: dict) -> str:
    pairs = [field for dx in e["diagnoses"] for field in (dx, "")] + [""] * (60 - 2 * len(e["diagnoses"]))
    procedures = e["procedures"] + [""] * (100 - len(e["procedures"]))
    return ",".join([e["sex"], e["age_days"], e["discharge"], e["duration_days"], "", *pairs, *procedures])


def _line(layout: str, e: dict) -> str:
    if layout == "nor-string":
        return _nor_string(e)
    if layout == "nor-string-csv":
        return f"{e['episode_id']};{_nor_string(e)};x"
    scalars = [e["episode_id"], e["sex"], e["age_days"], e["duration_days"], e["discharge"]]
    if layout == "canonical":
        values = [*scalars, "|".join(e["diagnoses"]), "|".join(e["procedures"])]
    else:
        values = [*scalars, *(e["diagnoses"] + [""] * _WIDE)[:_WIDE], *(e["procedures"] + [""] * _WIDE)[:_WIDE]]
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL if layout == "canonical" else csv.QUOTE_MINIMAL).writerow(values)
    return out.getvalue().rstrip("\r\n")


def _header(layout: str) -> str | None:
    return {
        "canonical": "episode_id,sex,age_days,duration_days,discharge,diagnoses,procedures",
        "wide": "pasient,sex,age_days,duration_days,discharge,"
        + ",".join([f"dg{i}" for i in range(1, _WIDE + 1)] + [f"proc{i}" for i in range(1, _WIDE + 1)]),
        "nor-string": None,
        "nor-string-csv": "RegelNr;DRGGrupperingsstreng;note",
    }[layout]


def _spoil(line: str, how: str, at: int) -> list[bytes]:
    """One good line made bad: the lines it becomes."""
    cut = 1 + at % max(len(line) - 1, 1)
    if how == "line break":  # a raw line break inside a field: two lines
        return [line[:cut].encode(), line[cut:].encode()]
    if how == "stray quote":
        return [(line[:cut] + '"' + line[cut:]).encode()]
    if how == "short":
        return [line[:cut].encode()]
    if how == "overlong":
        return [(line + ",EXTRA1,EXTRA2").encode()]
    return [line[:cut].encode() + b"\xff\x00\xfe" + line[cut:].encode()]  # binary junk


def _read(path, layout: str, **options) -> pa.Table:
    reader_layout = "nor-string" if layout.startswith("nor-string") else layout
    id_column = "pasient" if layout == "wide" else None
    result = ng.read_episodes(path, layout=reader_layout, id_column=id_column, **options)
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    episodes=st.lists(episode, min_size=1, max_size=25),
    spoiled=st.lists(
        st.tuples(
            st.integers(0, 24),
            st.sampled_from(["line break", "stray quote", "short", "overlong", "binary"]),
            st.integers(0, 10_000),
        ),
        max_size=4,
    ),
    batch_size=st.integers(1, 9),
    block_bytes=st.integers(1, 700),
    crlf=st.booleans(),
)
def test_every_line_is_one_row_in_order_and_chunked_equals_whole(
    tmp_path, monkeypatch, layout, episodes, spoiled, batch_size, block_bytes, crlf
):
    bad = {index % len(episodes): how_at for index, *how_at in spoiled}
    lines: list[bytes] = []
    expected: list[dict | None] = []  # the episode a line holds when it was left good
    # the last episode stays good: a file of nothing but junk is not an episode file (tested below)
    for index, e in enumerate([*episodes, {**episodes[0], "episode_id": "last"}]):
        line = _line(layout, e)
        if index in bad:
            pieces = _spoil(line, *bad[index])
            lines += pieces
            expected += [None] * len(pieces)
        else:
            lines.append(line.encode())
            expected.append(e)
    header = _header(layout)
    ending = b"\r\n" if crlf else b"\n"
    path = tmp_path / ("episodes.txt" if layout == "nor-string" else "episodes.csv")
    path.write_bytes(b"".join(x + ending for x in ([header.encode()] if header else []) + lines))
    kept = [(line, e) for line, e in zip(lines, expected, strict=True) if line.strip(b" \t\r\x0b\x0c")]

    whole = _read(path, layout)
    monkeypatch.setattr(_text, "MIN_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(_text, "BYTES_PER_ROW", 1)
    chunked = _read(path, layout, batch_size=batch_size)

    assert len(whole) == len(kept)  # one row per non-blank line, none lost, none made up
    assert chunked.equals(whole)
    ids = whole["episode_id"].to_pylist()
    problems = whole[PROBLEM_COLUMN].to_pylist()
    for row, (line, e) in enumerate(kept):
        if layout == "nor-string":
            assert ids[row] == str(row + 1)
        if e is not None:  # a good line reads back exactly, with its id
            assert problems[row] is None
            if layout != "nor-string":
                assert ids[row] == e["episode_id"]
            assert whole["diagnoses"][row].as_py() == e["diagnoses"]
            assert whole["procedures"][row].as_py() == e["procedures"]
            assert whole["age_days"][row].as_py() == int(e["age_days"])
        elif b"\xff" in line:  # binary junk is named on its row
            assert "not UTF-8" in problems[row]
    for problem in problems:  # a problem names its line
        assert problem is None or problem.startswith("line ")


# The scalars of a string: any text, commas and line breaks aside; mostly printable ASCII, which
# the split reads itself, and now and then what it leaves to `to_canonical` (Unicode spaces,
# control bytes, letters beyond a-z)
scalar_text = st.text(st.sampled_from([*"0123456789-+mMfFkKhHeEnNrRx ", "\t", "\x1c", "\u00a0", "ß", "ǆ"]), max_size=4)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(scalar_text, scalar_text, scalar_text, scalar_text), min_size=1, max_size=12))
def test_sex_age_discharge_duration_read_from_strings_as_to_canonical_reads_their_text(rows):
    strings = [",".join([*row, "", "I219"]).encode() for row in rows]
    ends = np.cumsum([len(string) + 1 for string in strings]) - 1
    starts = ends - [len(string) for string in strings]
    columns, _ = _text.split_episode_strings(np.frombuffer(b"\n".join(strings), np.uint8), starts, ends)
    ids = pa.array([str(i) for i in range(len(rows))])
    names = ("sex", "age_days", "discharge", "duration_days")
    read = to_canonical(pa.table({"episode_id": ids, **columns}))
    as_text = {name: pa.array([row[k] for row in rows]) for k, name in enumerate(names)}
    reference = to_canonical(pa.table({"episode_id": ids, "diagnoses": columns["diagnoses"], **as_text}))
    assert read.select(names).equals(reference.select(names))


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.none() | st.text(" \tEeNnRrHhxß\u00a0", max_size=3), max_size=8), min_size=1, max_size=3
    )
)
def test_discharge_cleaned_per_distinct_value_as_value_by_value(chunks):
    from nordgroup.episodes.layouts import _clean_discharge

    column = pa.chunked_array([pa.array(chunk, pa.string()) for chunk in chunks], pa.string())
    text = pc.replace_substring_regex(pc.utf8_upper(pc.utf8_trim_whitespace(column)), "^H$", "N")
    expected = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    cleaned = _clean_discharge(column)
    assert cleaned.type == pa.string()
    assert cleaned.to_pylist() == expected.to_pylist()


# --------------------------------------------------------------------------------------------
# Reading, grouping and writing in threads of their own (`nordgroup group`)


def _ahead_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "nordgroup-ahead"]


@pytest.mark.parametrize("depth", [1, 2])
def test_items_made_ahead_come_in_order_every_one(depth):
    assert list(_ahead(iter(range(1000)), depth)) == list(range(1000))
    assert list(_ahead(_ahead(iter(range(100))), depth)) == list(range(100))  # as `nordgroup group` nests them
    assert list(_ahead(iter([]), depth)) == []
    assert _ahead_threads() == []


def test_an_error_where_items_are_made_is_raised_where_they_are_used():
    def reader():
        yield from range(3)
        raise EpisodeFileError("unreadable (a field Arrow cannot parse)", path="cases.csv", line=7)

    received = []
    with pytest.raises(EpisodeFileError, match=r"cases\.csv, line 7: unreadable"):
        for item in _ahead(_ahead(reader())):
            received.append(item)
    assert received == [0, 1, 2]
    assert _ahead_threads() == []


def test_a_consumer_that_stops_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            yield from iter(int, 1)
        finally:
            closed.set()

    items = _ahead(_ahead(endless()))
    assert [next(items) for _ in range(5)] == [0] * 5
    items.close()  # what an error or Ctrl-C in the writing loop does
    assert closed.is_set()
    assert _ahead_threads() == []


def test_group_command_in_threads_writes_what_grouping_the_whole_gives(tmp_path, monkeypatch, demo_grouper):
    from nordgroup import cli

    lines = [
        _nor_string({**_plain(), "sex": str(i % 2 + 1), "diagnoses": [dx]})
        for i, dx in enumerate(["I219", "J189", "E119", "S7210"] * 300)
    ]
    lines[17] = "\xff junk"
    source = tmp_path / "cases.txt"
    source.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    output = tmp_path / "groups.parquet"
    monkeypatch.setattr("nordgroup.cli.group._CHUNK", 50)  # 24 batches through the threads
    assert cli.main(["group", "--tables", str(DEMO_TABLES), str(source), str(output), "--quiet"]) == 0
    whole = demo_grouper.group(ng.read_episodes(source, layout="nor-string"))
    written = pq.read_table(output)
    assert written["episode_id"].to_pylist() == [str(row) for row in range(1, len(lines) + 1)]
    assert written.select(whole.column_names).to_pylist() == whole.to_pylist()  # `notes` dictionaries differ
    assert [p.name for p in tmp_path.iterdir()] == sorted(["cases.txt", "groups.parquet"])
    assert _ahead_threads() == []


def test_group_command_reader_failing_midway_says_why_and_writes_nothing(tmp_path, monkeypatch, synthetic, capsys):
    from nordgroup import cli, episodes

    source = tmp_path / "episodes.parquet"
    ng.write_table(synthetic, source)
    output = tmp_path / "groups.parquet"

    def failing(*args, **options):
        reader = episodes.iter_episodes(*args, **options)

        def batches():
            for index, batch in enumerate(reader):
                if index == 2:
                    raise EpisodeFileError("unreadable (disk error)", path=str(source), line=2001)
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    monkeypatch.setattr("nordgroup.cli.group._CHUNK", 1000)
    monkeypatch.setattr("nordgroup.cli.group.iter_episodes", failing)
    assert cli.main(["group", "--tables", str(DEMO_TABLES), str(source), str(output), "--quiet"]) == 2
    assert "line 2001: unreadable (disk error)" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["episodes.parquet"]
    assert _ahead_threads() == []


# --------------------------------------------------------------------------------------------
# The crashes of issue 17, each on a small file


def test_multi_chunk_case_file_reads_every_row(tmp_path):
    """Arrow's CSV reader returns several chunks for a file over a megabyte (a TypeError before)."""
    e = {"sex": "1", "age_days": "20000", "discharge": "H", "duration_days": "3", "procedures": ["FNG05"]}
    lines = [f"{i};{_nor_string({**e, 'diagnoses': [f'I{i % 97:03d}', 'E119']})};0" for i in range(6000)]
    path = tmp_path / "cases.csv"
    path.write_text("RegelNr;DRGGrupperingsstreng;Returkode\n" + "\n".join(lines) + "\n")
    assert path.stat().st_size > 1 << 20
    table = ng.read_episodes(path, layout="nor-string")
    assert table["episode_id"].to_pylist() == [str(i) for i in range(6000)]
    assert table["diagnoses"][5999].as_py() == [f"I{5999 % 97:03d}", "E119"]


def test_a_line_break_inside_a_field_costs_two_flagged_rows_not_the_file(tmp_path, demo_grouper):
    """A raw line break in a case file failed the whole read with a raw ArrowInvalid before."""
    path = tmp_path / "cases.csv"
    path.write_text(
        "RegelNr;DRGGrupperingsstreng;Returkode\n1;1,100,H,2,,I219,,E119;0\n2;1,100,H,2,,I2\n19;0\n3;2,5,H,1,,J189;0\n"
    )
    table = ng.read_episodes(path, layout="nor-string")
    assert table["episode_id"].to_pylist() == ["1", None, None, "3"]
    assert table[PROBLEM_COLUMN].to_pylist() == [
        None,
        "line 3: 2 fields, the header has 3",
        "line 4: 2 fields, the header has 3",
        None,
    ]
    result = demo_grouper.group(table)
    flagged = [bool(flags & FLAG_UNREADABLE_LINE) for flags in result["flags"].to_pylist()]
    assert flagged == [False, True, True, False]
    assert "input line not fully read" in result["notes"][1].as_py()


def test_a_300_character_value_is_read_into_its_row(tmp_path):
    path = tmp_path / "strings.txt"
    path.write_text("1,100,H,2,,I219\n1,100,H,2,,Z" + "9" * 299 + ",,E119\n")
    table = ng.read_episodes(path, layout="nor-string")
    assert table["diagnoses"].to_pylist() == [["I219"], ["Z" + "9" * 299, "E119"]]


def test_values_after_the_165_fields_are_flagged_not_dropped_silently(tmp_path):
    path = tmp_path / "strings.txt"
    path.write_text(_nor_string({**_plain(), "diagnoses": ["I219"]}) + ",,,LOST1,LOST2\n")
    problem = ng.read_episodes(path, layout="nor-string")[PROBLEM_COLUMN][0].as_py()
    assert problem == "line 1: 2 values after the 165 fields of an episode string, not read"


def _plain() -> dict:
    return {"sex": "1", "age_days": "100", "discharge": "H", "duration_days": "2", "procedures": []}


@pytest.mark.parametrize(
    ("name", "content", "layout", "match"),
    [
        ("cases.csv", b"PAR1\x00\x15\x04\xff\xfe" * 50, "canonical", r"cases\.csv, line 1: not UTF-8"),
        ("cases.csv", b"episode_id;sex;diagnoses\n1;1;I219\n", "canonical", r"line 1, column 1: .*';'"),
        ("cases.txt", b"1;100;H;2;;I219\n2;100;H;2;;J189\n", "nor-string", r"line 1, column 1: no line of the first"),
        ("cases.txt", b"\xff\xfe\x00\x01\n\x00\x00\n", "nor-string", r"line 1: not UTF-8 text, as every line"),
    ],
)
def test_a_file_that_cannot_be_read_at_all_names_file_line_and_column(tmp_path, name, content, layout, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EpisodeFileError, match=match):
        ng.read_episodes(path, layout=layout)


# --------------------------------------------------------------------------------------------
# Streaming every format, and writing that never leaves half a file


@pytest.fixture(scope="module")
def synthetic(demo_grouper):
    from nordgroup.episodes.synth import synthesize

    return synthesize(demo_grouper.tables, 2_500, seed=3)


@pytest.mark.parametrize("suffix", [".parquet", "dir", ".arrow", ".csv"])
def test_every_format_streams_in_batches_and_groups_as_the_whole(tmp_path, demo_grouper, synthetic, suffix):
    if suffix == "dir":
        path = tmp_path / "episodes"
        path.mkdir()
        for part in range(3):
            pq.write_table(synthetic.slice(part * 1000, 1000), path / f"part{part}.parquet")
    else:
        path = tmp_path / f"episodes{suffix}"
        ng.write_table(synthetic, path)
    reader = iter_episodes(path, batch_size=300)
    assert isinstance(reader, pa.RecordBatchReader)
    batches = list(reader)
    assert max(len(batch) for batch in batches) <= 300
    assert sum(len(batch) for batch in batches) == len(synthetic)
    streamed = pa.concat_tables(demo_grouper.group_batches(batches))
    whole = demo_grouper.group(synthetic)
    assert streamed["episode_id"].to_pylist() == whole["episode_id"].to_pylist()
    assert streamed["drg"].to_pylist() == whole["drg"].to_pylist()


def test_an_interrupted_write_leaves_nothing_under_the_final_name(tmp_path, synthetic):
    path = tmp_path / "groups.parquet"
    with pytest.raises(KeyboardInterrupt), ResultWriter(path, synthetic.schema) as writer:
        writer.write(synthetic.slice(0, 10))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with ResultWriter(path, synthetic.schema) as writer:
        writer.write(synthetic.slice(0, 10))
        assert not path.exists()  # complete only when the block ends
    assert pq.read_table(path).num_rows == 10
    assert [p.name for p in tmp_path.iterdir()] == ["groups.parquet"]


def test_group_command_interrupted_midway_keeps_the_old_output(tmp_path, monkeypatch, synthetic):
    from nordgroup.cli import grammar as cli
    from nordgroup.engine.grouper import Grouper

    source = tmp_path / "episodes.parquet"
    ng.write_table(synthetic, source)
    output = tmp_path / "groups.parquet"
    output.write_bytes(b"the previous run's output")

    def interrupted(self, batches):
        for index, batch in enumerate(batches):
            if index == 1:
                raise KeyboardInterrupt
            yield self.group(batch)

    monkeypatch.setattr("nordgroup.cli.group._CHUNK", 1000)
    monkeypatch.setattr(Grouper, "group_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["group", "--tables", str(DEMO_TABLES), str(source), str(output), "--quiet"])
    assert output.read_bytes() == b"the previous run's output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.parquet", "groups.parquet"]


def test_group_command_streams_a_string_file_with_a_bad_line(tmp_path, capsys):
    from nordgroup.cli import grammar as cli

    source = tmp_path / "cases.txt"
    source.write_text("1,100,H,2,,I219\n\xff\n2,100,H,2,,J189\n", encoding="latin-1")
    output = tmp_path / "groups.csv"
    assert cli.main(["group", "--tables", str(DEMO_TABLES), str(source), str(output), "--quiet"]) == 0
    result = pa.csv.read_csv(output)
    assert result["episode_id"].to_pylist() == [1, 2, 3]
    assert result[PROBLEM_COLUMN].to_pylist()[1] == "line 2: not UTF-8 text"
    assert "1 rows: input line not fully read" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Memory


@pytest.mark.slow
def test_two_million_strings_read_within_a_memory_bound(tmp_path):
    """2 M episode strings (~500 MB, one 300-character code) read batch by batch in a fresh
    process stay under 1 GB peak RSS (the grid reader needed ~16 KB per line: some 30 GB)."""
    path = tmp_path / "strings.txt"
    base = _nor_string({**_plain(), "diagnoses": ["I219", "E119", "J189"], "procedures": ["FNG05", "ZXA10"]})
    with path.open("w") as out:
        for start in range(0, 2_000_000, 100_000):
            out.write("".join(f"{i % 2 + 1}{base[1:]}\n" for i in range(start, start + 100_000)))
        out.write(base.replace("I219", "I" + "9" * 299) + "\n")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from nordgroup.episodes import iter_episodes
        rows = 0
        for batch in iter_episodes({str(path)!r}, "nor-string"):
            rows += len(batch)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent, so under a
        # full pytest run (over 1 GB by then) the child reported the parent's peak
        status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
        print(rows, int(status.split()[0]) // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    rows, peak_mb = int(out[0]), int(out[1])
    assert rows == 2_000_001
    assert peak_mb < 1000, f"peak RSS {peak_mb} MB"
