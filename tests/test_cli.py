"""The command line: the main job, grouping a file, table info, and errors as exit codes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from nordgroup.cli.grammar import main
from nordgroup.explore.reachability import drgs_for_code
from nordgroup.tables import load_tables
from tests.conftest import DEMO_TABLES, RELEASES, shared_path


def test_demo_groups_synthetic_episodes_on_the_embedded_tables(tmp_path, capsys):
    output = tmp_path / "demo.parquet"
    assert main(["demo", "--n", "3000", "--output", str(output)]) == 0
    result = pq.read_table(output)
    assert len(result) == 3000
    assert result.column_names[0] == "episode_id"
    assert "episodes    3,000" in capsys.readouterr().out


def test_group_reads_episode_strings_and_writes_every_row(tmp_path, capsys):
    cases = shared_path("norddrg", "nor", "cases_nor_small.csv")
    output = tmp_path / "groups.csv"
    assert main(["group", "--tables", str(shared_path("norddrg", "nor", RELEASES[2015])), str(cases), str(output)]) == 0
    lines = output.read_text().splitlines()
    assert len(lines) == 1 + 67
    assert "error DRGs" in capsys.readouterr().out


def test_tables_info_prints_release_and_counts(capsys):
    assert main(["tables", "info", str(DEMO_TABLES)]) == 0
    out = capsys.readouterr().out
    assert "80 rules" in out and "findings    0" in out


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["tables", "info", str(tmp_path / "missing.zip")]) == 2
    assert "nordgroup: error:" in capsys.readouterr().err


def test_tables_code_json_lists_drgs_and_the_proof_for_each_unreachable_rule(capsys):
    tables = load_tables(DEMO_TABLES)
    code = next(key[0] for key, props in tables.diagnoses.items() if props.mdc == "05" and not key[1])
    assert main(["tables", "code", code, "--tables", str(DEMO_TABLES), "--role", "principal", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    answer = drgs_for_code(tables, code, "principal")
    assert set(payload["drgs"]) == set(answer.drgs) != set()
    assert set(payload["unreachable_rules"]) == set(answer.unreachable)
    assert all(entry["reason"] for entry in payload["unreachable_rules"].values())
    assert "unconfirmed_rules" not in payload


def test_reading_the_tables_does_not_load_numba():
    """`import nordgroup` is lazy: commands that only read tables start without the kernel."""
    import subprocess
    import sys

    code = (
        "import sys, nordgroup, nordgroup.cli, nordgroup.explore; nordgroup.load_tables; "
        "assert 'numba' not in sys.modules, 'numba imported'; "
        "assert all(getattr(nordgroup, name) is not None for name in nordgroup.__all__); "
        "assert 'numba' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_table_questions_load_neither_arrow_nor_numba():
    """`nordgroup tables code/drg` answer interactively: they import no Arrow, Numba or numpy, and
    nothing that registers an exit handler (their process ends without running any)."""
    import subprocess
    import sys

    code = (
        "import atexit, sys; from nordgroup.cli import main; "
        f"assert main(['tables', 'code', 'I210', '--role', 'principal', '--tables', {str(DEMO_TABLES)!r}]) == 0; "
        f"assert main(['tables', 'drg', '121', '--tables', {str(DEMO_TABLES)!r}]) == 0; "
        "loaded = {'pyarrow', 'numba', 'numpy'} & set(sys.modules); assert not loaded, loaded; "
        "assert atexit._ncallbacks() == 0, atexit._ncallbacks()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("question", [["code", "I630", "--role", "secondary"], ["drg", "121"], ["code", "X999"]])
def test_table_question_commands_end_at_once_with_their_whole_answer(capsys, question):
    """The command ends its process without tearing it down: its answer, written to a pipe (which
    Python buffers), must still arrive whole, with the exit code main gives."""
    import os
    import subprocess
    import sys

    argv = ["tables", *question, "--tables", str(DEMO_TABLES)]
    code = main(argv)
    expected = capsys.readouterr().out
    script = f"import sys; sys.argv = ['nordgroup', *{argv!r}]; from nordgroup.cli import entrypoint; entrypoint()"
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    assert (ended.returncode, ended.stdout) == (code, expected)
    assert len(expected) > 200 or code == 1


def test_every_subcommand_names_a_handler_that_exists():
    """Handlers are imported only when their subcommand runs: a misspelt one must fail here."""
    import argparse
    import importlib

    from nordgroup.cli.grammar import main_parser

    def handlers(parser: argparse.ArgumentParser):
        for action in parser._subparsers._group_actions if parser._subparsers else ():
            for sub in action.choices.values():
                if sub.get_default("handler") is not None:
                    yield sub.get_default("handler")
                yield from handlers(sub)

    found = list(handlers(main_parser()))
    # group synth demo, tables info/code/drg/diff/shell/export, explain, audit, corrections, compare, price, simulate
    assert len(found) == 15
    for handler in found:
        module, name = handler.args
        assert callable(getattr(importlib.import_module(f"nordgroup.{module}"), name))


def test_tables_shell_answers_each_line_as_the_one_shot_command_does(monkeypatch, capsys):
    """Questions, a blank line, a comment and two bad lines: every good question answered exactly
    as `nordgroup tables code/drg` answers it, the bad ones reported, the shell going on to the end."""
    import io

    questions = ["code I630 --role principal", "drg 121 --json", "code 99999", "code I630 --role secondary --json"]
    expected = []
    for question in questions:
        word, rest = question.split(" ", 1)
        main(["tables", word, *rest.split(), "--tables", str(DEMO_TABLES)])
        expected.append(capsys.readouterr().out)
    lines = [questions[0], "", "# a comment", "bogus I630", "code I630 --role nowhere", *questions[1:]]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["tables", "shell", "--tables", str(DEMO_TABLES)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "".join(expected)
    assert "invalid choice: 'bogus'" in captured.err and "invalid choice: 'nowhere'" in captured.err


def test_group_summary_names_error_drgs_and_return_codes_apart(nor_grouper):
    """The "error DRGs" line is the audit's error_drg figure (the 470 series); episodes whose return code is
    not 0/A are another, larger figure with its own label (issue 18, defect 7)."""
    import re

    import pyarrow.compute as pc

    from nordgroup.cli.group import summary
    from nordgroup.episodes.synth import synthesize
    from nordgroup.review.findings import audit
    from nordgroup.review.kinds import error_drgs

    grouper = nor_grouper(2017)
    episodes = synthesize(grouper.tables, 3000, seed=3)
    result = grouper.group(episodes)
    in_error_drg = sum(drg in error_drgs(grouper.tables) for drg in result.column("drg").to_pylist())
    not_ok = sum(rtc not in ("0", "A") for rtc in result.column("rtc").to_pylist())
    findings = audit(episodes, grouper, grouped=result)
    assert in_error_drg == len(pc.unique(findings.filter(pc.equal(findings["kind"], "error_drg"))["row"]))
    assert in_error_drg < not_ok  # the two figures differ on this data, so a mix-up shows
    lines = summary(result, grouper.tables, 1.0).splitlines()
    error_line = next(line for line in lines if line.startswith("error DRGs"))
    rtc_line = next(line for line in lines if "return code other than 0/A" in line)
    assert error_line != rtc_line
    assert re.search(rf"\b{in_error_drg:,}\b", error_line) and f"{100 * in_error_drg / 3000:.2f} %" in error_line
    assert re.search(rf"\b{not_ok:,}\b", rtc_line) and f"{100 * not_ok / 3000:.2f} %" in rtc_line


def test_tables_diff_writes_its_file_when_the_reader_stops_early(tmp_path):
    """`nordgroup tables diff A B --output d.csv | head`: the file is written whatever happens to
    standard output, and the command still ends with 0 (issue 18, defect 8). The reader here has
    closed the pipe before the first line, so every write to standard output fails."""
    import os
    import subprocess
    import sys

    a, b = (str(shared_path("norddrg", "nor", RELEASES[year])) for year in (2016, 2017))
    output = tmp_path / "d.csv"
    script = (
        "import sys; from nordgroup.cli import entrypoint; "
        f"sys.argv = ['nordgroup', 'tables', 'diff', {a!r}, {b!r}, '--output', {str(output)!r}]; entrypoint()"
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        ended = subprocess.run([sys.executable, "-c", script], stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert ended.returncode == 0, ended.stderr
    assert "Traceback" not in ended.stderr
    lines = output.read_text().splitlines()
    assert len(lines) > 100 and lines[0].startswith('"')  # a header and the changes, as write_table writes them


def test_price_reads_a_weight_list_through_weights_columns(tmp_path, capsys):
    """`price --weights-columns` reads a list with other headers exactly as the list it renames;
    `--by drg` prints each DRG's name."""
    import pyarrow.csv as pacsv

    from nordgroup.episodes.layouts import write_table
    from nordgroup.episodes.synth import synthesize

    write_table(synthesize(load_tables(DEMO_TABLES), 300, seed=8), tmp_path / "e.parquet")
    text = (DEMO_TABLES / "weights_demo.csv").read_text().splitlines()
    renamed = ["Kod;Poäng;Gräns;Dagvikt;Öppen", *(line.replace(",", ";").replace(".", ",") for line in text[1:])]
    (tmp_path / "renamed_demo.csv").write_text("\n".join(renamed) + "\n", encoding="utf-8")
    common = ["price", str(tmp_path / "e.parquet"), "--tables", str(DEMO_TABLES)]
    common += ["--financing", str(DEMO_TABLES / "financing_demo.toml")]
    assert main([*common, "--weights", str(DEMO_TABLES / "weights_demo.csv"), "-o", str(tmp_path / "a.csv")]) == 0
    mapping = "drg=Kod,weight=Poäng,trim_days=Gräns,per_day_weight=Dagvikt,weight_outpatient=Öppen"
    arguments = ["--weights", str(tmp_path / "renamed_demo.csv"), "--weights-columns", mapping]
    capsys.readouterr()
    assert main([*common, *arguments, "-o", str(tmp_path / "b.csv"), "--by", "drg"]) == 0
    printed = capsys.readouterr().out
    assert pacsv.read_csv(tmp_path / "a.csv")["points"].equals(pacsv.read_csv(tmp_path / "b.csv")["points"])
    assert "drg_name" in printed and "Specific cerebrovascular disorders w/o CC" in printed
