"""Every Python and shell example of README.md and docs/*.md runs, and prints what the page shows.

How a page's fenced blocks are read:

- ```python: run in page order in one namespace per page, so a block may use the names of the
  blocks above it. A block with `>>>` prompts runs as a doctest (ELLIPSIS, NORMALIZE_WHITESPACE);
  any other block runs as a script, and a ```text block right after it (nothing but blank lines
  between) is what it prints, compared the same loose way.
- ```console, ```bash, ```sh, ```shell: a block with `$ ` prompts is a session. Each command
  (with its `\\`-continued lines and its here-document) runs in bash, and the lines up to the
  next `$ ` are its output (stdout and stderr), compared loosely: whitespace normalised, `...`
  matches anything, also whole lines; nothing shown means nothing printed. A command must exit 0,
  unless what it shows is an error (`error:`). A block without prompts is a list of commands,
  each checked by its exit code only.
- Any other language (text, toml, csv, json) shows a format or an output and is not run; a fence
  without a language is refused, as is a session labelled as text.

A block opts out only with a comment the reader of the page sees on the lines right above its
fence, and the reason: `<!-- not-run: needs a Dask cluster -->`. They are counted and listed
(`test_opted_out_examples_stay_few`). `<!-- slow -->` marks a long example (run under `-m slow`);
the page's blocks after it are slow too, since they may use what it made. `<!-- file: fill.py -->`
marks a block that is a file the page's commands use: it is written to the working directory
before the page runs, and a command of the page must name it.

Where the examples run: every page gets its own temporary directory shaped like a checkout with
the shared material beside it, `TMP/checkout` (the working directory) holding a link to the
repository's `grouper_tables/`, and `TMP/shared` a link to `../shared`. So `grouper_tables/...`
and `../shared/...` resolve as the pages say, and everything an example writes (`out/`,
`stays.parquet`, reports) lands in the temporary directory, never in the repository. A page whose
examples up to a block name `../shared` needs it there: skipped without it, except on CI.

Commands find `python` and `nordgroup` of the interpreter running the tests first on PATH, and
import the same nordgroup (PYTHONPATH); progress bars are off (TQDM_DISABLE).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import nordgroup

from .conftest import SHARED, shared_path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python"}
SHELL = {"console", "bash", "sh", "shell"}
#: How many examples may opt out of running (pytest -ra lists them, with their reasons): raise it
#: only for an example that cannot run here, and say why on the page.
MAX_OPTED_OUT = 3
LOOSE = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(not-run|slow|file)\s*(?::\s*(.*?))?\s*-->$")
COMMAND_TIMEOUT = 600


@dataclass
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, counted from 1
    language: str
    text: str
    not_run: str | None = None
    slow: bool = False
    file: str | None = None
    output: str | None = None  # the ```text block right after a python script: what it prints

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_code(self) -> bool:
        return self.language in PYTHON | SHELL


def read_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").split("\n")
    page = path.relative_to(ROOT).as_posix()
    blocks: list[Block] = []
    gap_after: dict[int, bool] = {}  # block index -> only blank lines between it and the next fence
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
        block = Block(page, number + 1, opening.group(1), "\n".join(lines[number + 1 : end]) + "\n")
        above = number - 1
        while above >= 0 and (marker := MARKER.match(lines[above].strip())):
            kind, value = marker.groups()
            if kind == "not-run":
                block.not_run = value or ""
            elif kind == "slow":
                block.slow = True
            else:
                block.file = value
            above -= 1
        if blocks:
            previous_end = blocks[-1].line + blocks[-1].text.count("\n")
            gap_after[len(blocks) - 1] = all(not lines[i].strip() for i in range(previous_end + 1, number))
        blocks.append(block)
        number = end + 1
    for index, block in enumerate(blocks[:-1]):
        following = blocks[index + 1]
        if block.language in PYTHON and ">>>" not in block.text and following.language == "text" and gap_after[index]:
            block.output = following.text
    slow = False
    for block in blocks:
        slow = slow or (block.slow and block.is_code)
        block.slow = slow
    return blocks


BLOCKS = [block for page in PAGES for block in read_blocks(page)]
EXAMPLES = [block for block in BLOCKS if block.is_code]


def _loosely_equal(shown: str, printed: str) -> bool:
    if not shown.strip():
        return not printed.strip()
    return doctest.OutputChecker().check_output(shown, printed, LOOSE)


def _difference(shown: str, printed: str) -> str:
    example = doctest.Example("", shown)
    return doctest.OutputChecker().output_difference(example, printed, LOOSE)


@dataclass
class Session:
    """One command of a shell block: its text, the output shown after it, its line on the page."""

    command: str
    shown: str | None  # None: a command of a block without prompts, judged by its exit code only
    line: int


def sessions(block: Block) -> list[Session]:
    lines = block.text.rstrip("\n").split("\n")
    if not any(line.startswith("$ ") for line in lines):
        commands = []
        pending = ""
        for offset, line in enumerate(lines):
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if not line.endswith("\\"):
                commands.append(Session(pending, None, block.line + 1 + offset))
                pending = ""
        return commands
    found: list[Session] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            raise AssertionError(f"{block.page}:{block.line + 1 + index}: output before the first `$ ` command")
        start = index
        command = line[2:]
        while command.endswith("\\"):
            index += 1
            command += "\n" + lines[index]
        if heredoc := re.search(r"<<-?\s*'?(\w+)'?", command):
            while lines[index] != heredoc.group(1):
                index += 1
                command += "\n" + lines[index]
        index += 1
        shown = []
        while index < len(lines) and not lines[index].startswith("$ "):
            shown.append(lines[index])
            index += 1
        found.append(Session(command + "\n", "\n".join(shown) + ("\n" if shown else ""), block.line + 1 + start))
    return found


@dataclass
class Page:
    """The state one page's examples share: working directory, namespace, what has run."""

    path: Path
    blocks: list[Block]
    checkout: Path
    env: dict[str, str]
    namespace: dict = field(default_factory=dict)
    done: set[int] = field(default_factory=set)

    def run_through(self, block: Block) -> None:
        """Runs the page's examples above `block` not yet run (their own cases judge them), then `block`."""
        for earlier in self.blocks:
            if earlier.line >= block.line:
                break
            if earlier.is_code and not earlier.not_run and earlier.line not in self.done:
                with contextlib.suppress(Exception, pytest.fail.Exception):
                    self.run(earlier)
        self.run(block)

    def run(self, block: Block) -> None:
        self.done.add(block.line)
        if block.file:
            return
        before = os.getcwd()
        os.chdir(self.checkout)
        try:
            if block.language in SHELL:
                self._run_shell(block)
            elif ">>>" in block.text:
                self._run_doctest(block)
            else:
                self._run_script(block)
        finally:
            os.chdir(before)

    def _run_script(self, block: Block) -> None:
        code = compile("\n" * block.line + block.text, str(self.path), "exec")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                exec(code, self.namespace)
            except ModuleNotFoundError as error:
                _missing_module(block, error.name)
            except Exception:
                pytest.fail(f"{block.id} raised:\n{traceback.format_exc()}", pytrace=False)
        if block.output is not None and not _loosely_equal(block.output, printed.getvalue()):
            pytest.fail(
                f"{block.id} printed other than the page shows:\n" + _difference(block.output, printed.getvalue())
            )

    def _run_doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(block.text, self.namespace, block.id, str(self.path), block.line)
        test.globs = self.namespace  # get_doctest copies them; later blocks use the names
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=LOOSE)
        runner.run(test, out=report.write, clear_globs=False)
        if missing := re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", report.getvalue()):
            _missing_module(block, missing.group(1))
        if runner.failures:
            pytest.fail(f"{block.id}: {runner.failures} of {runner.tries} examples differ:\n{report.getvalue()}")

    def _run_shell(self, block: Block) -> None:
        for session in sessions(block):
            done = subprocess.run(
                ["bash", "-c", session.command],
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            where = f"{block.page}:{session.line}: $ {session.command.strip()}"
            if missing := re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", done.stdout):
                _missing_module(block, missing.group(1))
            shows_error = "error:" in (session.shown or "")
            if shows_error and done.returncode == 0:
                pytest.fail(f"{where}\nexited 0, the page shows an error:\n{done.stdout}", pytrace=False)
            if not shows_error and done.returncode != 0:
                pytest.fail(f"{where}\nexited {done.returncode}:\n{done.stdout}", pytrace=False)
            if session.shown is not None and not _loosely_equal(session.shown, done.stdout):
                pytest.fail(
                    f"{where}\nprinted other than the page shows:\n" + _difference(session.shown, done.stdout),
                    pytrace=False,
                )


def _missing_module(block: Block, name: str | None) -> None:
    """An example needing an optional package (an extra) skips without it, except on CI."""
    message = f"{block.id} needs {name}, which is not installed (pip install -e '.[test]')"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _environment(bin_dir: Path) -> dict[str, str]:
    interpreter_bin = Path(sys.executable).parent
    if not (interpreter_bin / "nordgroup").exists():
        # No console script beside the interpreter (nordgroup not installed, only on the path).
        shim = bin_dir / "nordgroup"
        shim.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -c '
            '\'import sys; from nordgroup.cli import entrypoint; sys.argv[0] = "nordgroup"; entrypoint()\' "$@"\n'
        )
        shim.chmod(0o755)
    # A script, not a link: a link to a venv's interpreter starts outside the venv (Python finds
    # `pyvenv.cfg` beside the path it was started by), without the packages installed there.
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    source = str(Path(nordgroup.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(interpreter_bin), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env["TQDM_DISABLE"] = "1"
    return env


_pages: dict[str, Page] = {}


def _page(block: Block, tmp_path_factory: pytest.TempPathFactory) -> Page:
    if block.page not in _pages:
        root = tmp_path_factory.mktemp(block.page.replace("/", "-"))
        checkout = root / "checkout"
        checkout.mkdir()
        (checkout / "grouper_tables").symlink_to(ROOT / "grouper_tables")
        if SHARED.exists():
            (root / "shared").symlink_to(SHARED)
        (root / "bin").mkdir()
        blocks = [other for other in BLOCKS if other.page == block.page]
        for written in blocks:
            if written.file:
                (checkout / written.file).write_text(written.text, encoding="utf-8")
        _pages[block.page] = Page(ROOT / block.page, blocks, checkout, _environment(root / "bin"))
    return _pages[block.page]


def _needs_shared(block: Block) -> bool:
    page = [other for other in EXAMPLES if other.page == block.page]
    return any("../shared" in other.text for other in page[: page.index(block) + 1])


@pytest.mark.parametrize(
    "block",
    [pytest.param(block, id=block.id, marks=[pytest.mark.slow] if block.slow else []) for block in EXAMPLES],
)
def test_example(block: Block, tmp_path_factory):
    if block.not_run is not None:
        pytest.skip(f"not-run: {block.not_run}")
    if _needs_shared(block):
        shared_path("norddrg")
    _page(block, tmp_path_factory).run_through(block)


def test_every_file_block_is_used():
    unused = [
        f"{block.id} ({block.file})"
        for block in BLOCKS
        if block.file
        and not any(block.file in other.text for other in EXAMPLES if other.page == block.page and other is not block)
    ]
    assert not unused, f"file blocks that no example of their page names: {unused}"


def test_opted_out_examples_stay_few():
    opted_out = [f"{block.id}: {block.not_run}" for block in EXAMPLES if block.not_run is not None]
    assert all(reason.split(": ", 1)[1] for reason in opted_out), "an opted-out example must say why"
    assert len(opted_out) <= MAX_OPTED_OUT, "\n".join(["more examples opt out than allowed:", *opted_out])


def test_every_fence_names_its_language():
    bare = [block.id for block in BLOCKS if not block.language]
    assert not bare, f"fences without a language (python, console, text, toml, ...): {bare}"


def test_no_example_hides_in_a_block_that_is_not_run():
    hidden = [block.id for block in BLOCKS if not block.is_code and re.match(r"\s*(\$ |>>> )", block.text)]
    assert not hidden, f"sessions or doctests labelled as a format, so never run: {hidden}"
