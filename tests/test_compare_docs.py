"""The walk-through of docs/compare.md runs as written, prints what the page shows, and recovers
the rates the synthetic "AI" coding was built with inside the printed intervals."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _walk_through() -> tuple[str, str]:
    """The first python block after the walk-through heading, and the text block after it."""
    page = (ROOT / "docs" / "compare.md").read_text(encoding="utf-8")
    section = page[page.index("## Walk-through") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, shown


def test_walk_through_recovers_the_known_rates_within_the_printed_intervals(monkeypatch):
    code, shown = _walk_through()
    monkeypatch.chdir(ROOT)  # the page's paths are from the repository root
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/compare.md", "exec"), namespace)
    assert printed.getvalue() == shown
    lines = {line.split()[0]: line for line in printed.getvalue().splitlines()[1:]}
    rates = {
        "secondary_recall": 1 - 0.15,
        "secondary_precision": (1 - 0.15) / (1 - 0.15 + 0.05),
        "procedure_recall": 1 - 0.10,
        "procedure_precision": 1.0,
    }
    for metric, rate in rates.items():
        low, high = map(float, re.search(r"\[([-\d.]+), ([-\d.]+)\]", lines[metric]).groups())
        assert low <= round(rate, 3) <= high, (metric, rate, lines[metric])
        row = namespace["result"].metric(metric)
        assert row["low"] <= rate <= row["high"], (metric, rate, row)
