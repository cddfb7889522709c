"""Self-contained HTML reports: tables and charts in one file that opens offline.

Charts are drawn by matplotlib into inline SVG, so the file needs no network, no JavaScript and
no companion files. The audit and the simulation reports are both built from these pieces.
Legends sit outside the plotted area, x labels are thinned so that they never overlap, and wide
tables scroll sideways inside the page (tests/test_audit_report_browser.py checks all three).
"""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

__all__ = ["bar_chart", "html_table", "line_chart", "small_multiples", "write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.chart svg{max-width:100%;height:auto}
.wide{overflow-x:auto;max-width:100%}.wide table{white-space:nowrap}
.note{color:#555;font-size:.85rem}
"""
_LABEL_POINTS = 14.0  # room one x label needs across the axis, in points, when written upright
_MAX_PANELS = 24


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
    _x_labels(axes, [p + width * (len(series) - 1) / 2 for p in positions], list(labels), 8.0)
    axes.set_ylabel(ylabel)
    _legend(axes, len(series))
    return _svg(figure)


def line_chart(title: str, x: Sequence[str], series: dict[str, Sequence[float]], *, ylabel: str = "") -> str:
    """One line per series over the same x values. Returns inline SVG."""
    figure, axes = _figure(title)
    _lines(axes, x, series)
    axes.set_ylabel(ylabel)
    _legend(axes, len(series))
    return _svg(figure)


def small_multiples(
    title: str, panels: Mapping[str, tuple[Sequence[str], Mapping[str, Sequence[float]]]], *, ylabel: str = ""
) -> str:
    """One small line chart per panel (e.g. per unit), same series, same y scale, one legend.
    At most 24 panels are drawn; a note says how many were left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(panels.items())[:_MAX_PANELS]
    columns = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure, grid = plt.subplots(
        rows, columns, figsize=(10.0, 2.6 * rows + 0.8), sharey=True, squeeze=False, layout="constrained"
    )
    figure.suptitle(title)
    names: list[str] = []
    for axes, (panel, (x, series)) in zip(grid.flat, shown, strict=False):
        axes.set_title(panel, fontsize=9)
        _lines(axes, x, series, width_inches=10.0 / columns)
        names = list(series)
    for axes in list(grid.flat)[len(shown) :]:
        axes.set_visible(False)
    for axes in grid[:, 0]:
        axes.set_ylabel(ylabel)
    if len(names) > 1:
        handles, labels = grid.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(names), 3), frameon=False)
    left_out = len(panels) - len(shown)
    note = f'<p class="note">{left_out} more panels not drawn.</p>' if left_out > 0 else ""
    return _svg(figure) + note


def _lines(axes, x: Sequence[str], series: Mapping[str, Sequence[float]], *, width_inches: float = 8.0) -> None:
    positions = list(range(len(x)))
    for name, values in series.items():
        axes.plot(positions, list(values), marker="o", markersize=3, label=name)
    _x_labels(axes, positions, [str(value) for value in x], width_inches)


def _x_labels(axes, positions: Sequence[float], labels: Sequence[str], width_inches: float) -> None:
    """Every label when they fit at 45°, else upright and only every k-th, so that none overlap."""
    longest = max((len(label) for label in labels), default=1)
    room = width_inches * 72 * 0.8 / max(1, len(labels))  # points per label along the axis
    slanted = (longest * 6.0 + 10) * 0.71  # width a 45° label takes, 10 pt font
    if room >= slanted:
        axes.set_xticks(list(positions), list(labels), rotation=45, ha="right", rotation_mode="anchor")
        return
    step = max(1, math.ceil(_LABEL_POINTS / room))
    axes.set_xticks(list(positions)[::step], list(labels)[::step], rotation=90)


def _legend(axes, entries: int) -> None:
    """The legend right of the plotted area, never over bars or lines."""
    if entries > 1:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


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
    # a wide table scrolls inside the page instead of running off its right edge
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


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
