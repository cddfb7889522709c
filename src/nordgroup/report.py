"""Self-contained HTML reports: tables and charts in one file that opens offline.

Charts are drawn by matplotlib into inline SVG, so the file needs no network, no JavaScript and
no companion files. The audit and the simulation reports are both built from these pieces.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

__all__ = ["bar_chart", "html_table", "line_chart", "write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.chart svg{max-width:100%;height:auto}
.note{color:#555;font-size:.85rem}
"""


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return f'<div class="chart">{text[text.index("<svg") :]}</div>'


def _figure(title: str, width: float = 8.0, height: float = 3.5):
    import matplotlib

    matplotlib.use("Agg")  # no screen: draw to memory
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height))
    axes.set_title(title)
    return figure, axes


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *, ylabel: str = "") -> str:
    """Grouped bars: one group per label, one bar per series. Returns inline SVG."""
    figure, axes = _figure(title)
    width = 0.8 / max(1, len(series))
    positions = range(len(labels))
    for offset, (name, values) in enumerate(series.items()):
        axes.bar([p + offset * width for p in positions], list(values), width=width, label=name)
    axes.set_xticks([p + width * (len(series) - 1) / 2 for p in positions], list(labels), rotation=45, ha="right")
    axes.set_ylabel(ylabel)
    if len(series) > 1:
        axes.legend()
    return _svg(figure)


def line_chart(title: str, x: Sequence[str], series: dict[str, Sequence[float]], *, ylabel: str = "") -> str:
    """One line per series over the same x values. Returns inline SVG."""
    figure, axes = _figure(title)
    for name, values in series.items():
        axes.plot(list(x), list(values), marker="o", label=name)
    axes.set_ylabel(ylabel)
    axes.tick_params(axis="x", rotation=45)
    if len(series) > 1:
        axes.legend()
    return _svg(figure)


def html_table(table: pa.Table, *, max_rows: int = 50, digits: int = 3) -> str:
    """An Arrow table as an HTML table (the first `max_rows` rows)."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.column_names)
    rows = []
    for record in table.slice(0, max_rows).to_pylist():
        cells = []
        for value in record.values():
            text = f"{value:,.{digits}f}" if isinstance(value, float) else "" if value is None else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    more = f'<p class="note">{len(table) - max_rows} more rows not shown.</p>' if len(table) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def write_report(
    path: str | os.PathLike[str], title: str, sections: Sequence[tuple[str, str]], *, intro: str = ""
) -> Path:
    """Write one HTML file: a title, an introduction and (heading, HTML body) sections."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">{html.escape(intro)}</p>{body}</body></html>'
    )
    path = Path(path)
    path.write_text(document, encoding="utf-8")
    return path
