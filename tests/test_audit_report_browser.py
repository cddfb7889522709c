"""The audit report rendered in a real headless browser: the page is not blank, the SVG charts are
drawn, no two texts of a chart overlap, no legend lies over the plotted area, and wide tables
scroll inside the page. Skips without chromium, except on CI (env CI set), where chromium must be
installed (`apt-get install -y chromium`)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from nordgroup.episodes.synth import synthesize
from nordgroup.money.weights import load_weights
from nordgroup.review.findings import audit
from nordgroup.review.report import audit_report
from nordgroup.review.sample import review_sample
from nordgroup.tables.load import load_tables

from .conftest import DEMO_TABLES

# matplotlib's first two series colours: the inpatient and outpatient bars, the first lines
_CHART_COLOURS = {"blue": (0x1F, 0x77, 0xB4), "orange": (0xFF, 0x7F, 0x0E)}


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: install it with apt-get install -y chromium")
        pytest.skip("chromium not installed")
    return found


def _screenshot(browser: str, html_path, png_path) -> None:
    profile = tempfile.mkdtemp()
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={png_path}", "--window-size=1200,3000",
            html_path.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_with_charts(nor_grouper, tmp_path):
    """Chromium draws the report: many distinct pixels, and the chart colours are on screen."""
    browser = _chromium()
    grouper = nor_grouper(2017)
    episodes = synthesize(grouper.tables, 3000, seed=7, units=4)
    grouped = grouper.group(episodes)
    findings = audit(episodes, grouper, grouped=grouped)
    sample = review_sample(episodes, findings, fraction=0.25, seed=1)
    page = audit_report(tmp_path / "audit.html", episodes, grouped, findings, sample=sample)
    png = tmp_path / "audit.png"
    _screenshot(browser, page, png)

    import matplotlib.image

    pixels = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(np.int16)
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 10, "the screenshot is blank"
    for name, colour in _CHART_COLOURS.items():
        close = (np.abs(pixels - np.array(colour)).max(axis=-1) <= 12).sum()
        assert close > 500, f"no {name} chart marks on screen: the SVG charts were not drawn"


# Runs in the page after the charts are laid out; the result goes into the DOM that --dump-dom prints.
_LAYOUT_CHECK = """<script>
(() => {
  const box = (element) => element.getBoundingClientRect();
  const meets = (a, b) =>
    a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const said = (group) => [...group.childNodes].filter((n) => n.nodeType === 8).map((n) => n.data.trim()).join(" ");
  const out = {charts: 0, overlaps: [], covered: [], tables: [],
    page: [document.documentElement.scrollWidth, window.innerWidth]};
  document.querySelectorAll("svg").forEach((svg, chart) => {
    out.charts += 1;
    const texts = [...svg.querySelectorAll('g[id^="text_"]')].map((g) => ({text: said(g), box: box(g)}))
      .filter((t) => t.box.width > 0 && t.box.height > 0);
    texts.forEach((a, i) => texts.slice(i + 1).forEach((b) => {
      if (meets(a.box, b.box)) out.overlaps.push([chart, a.text, b.text]);
    }));
    const plotted = [...svg.querySelectorAll('g[id^="axes_"]')]
      .map((axes) => axes.querySelector(':scope > g[id^="patch_"]')).filter((patch) => patch).map(box);
    svg.querySelectorAll('g[id^="legend_"]').forEach((legend) => plotted.forEach((area) => {
      if (meets(box(legend), area)) out.covered.push([chart, said(legend)]);
    }));
  });
  document.querySelectorAll("table").forEach((table) => {
    const holder = table.parentElement;
    out.tables.push({columns: table.rows[0].cells.length, width: table.scrollWidth, shown: holder.clientWidth,
      overflow: getComputedStyle(holder).overflowX, right: box(holder).right});
  });
  const result = document.createElement("pre");
  result.id = "layout";
  result.textContent = JSON.stringify(out);
  document.body.append(result);
})();
</script>"""


def _layout(browser: str, page, width: int = 1400) -> dict:
    checked = page.with_name("checked.html")
    checked.write_text(page.read_text(encoding="utf-8").replace("</body>", _LAYOUT_CHECK + "</body>"), encoding="utf-8")
    profile = tempfile.mkdtemp()
    done = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
            f"--window-size={width},3000", "--dump-dom", checked.resolve().as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    shutil.rmtree(profile, ignore_errors=True)
    found = re.search(r'<pre id="layout">(.*?)</pre>', done.stdout, re.S)
    assert found, "the layout check did not run in the page"
    return json.loads(html.unescape(found.group(1)))


def test_report_layout_no_overlap_and_wide_tables_scroll(tmp_path):
    """A year of weekly periods (52 x labels), four units, DEMO weights: in every chart no two texts
    overlap and no legend lies over a plotted area; every table's box stays inside the page and the
    27-column indicator table scrolls sideways inside it."""
    browser = _chromium()
    from nordgroup.engine.grouper import Grouper

    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables)
    episodes = synthesize(tables, 3000, seed=7, units=4)
    grouped = grouper.group(episodes)
    weights = load_weights(DEMO_TABLES / "weights_demo.csv")
    findings = audit(episodes, grouper, grouped=grouped, weights=weights.to_arrow())
    sample = review_sample(episodes, findings, fraction=0.25, seed=1, period_column=None)
    page = audit_report(
        tmp_path / "audit.html", episodes, grouped, findings, sample=sample, demo_weights=weights.demo,
        release=tables.release,
    )  # fmt: skip
    assert len(set(episodes.column("period").to_pylist())) >= 50
    layout = _layout(browser, page)
    assert layout["charts"] >= 3  # findings per unit, over time, per unit over time
    assert layout["overlaps"] == [], f"overlapping chart texts: {layout['overlaps'][:5]}"
    assert layout["covered"] == [], f"legends over the plotted area: {layout['covered']}"
    assert layout["page"][0] <= layout["page"][1], "something runs off the page's right edge"
    wide = [table for table in layout["tables"] if table["width"] > table["shown"]]
    assert any(table["columns"] >= 27 for table in wide), layout["tables"]
    for table in layout["tables"]:
        assert table["right"] <= layout["page"][1]
        if table["width"] > table["shown"]:
            assert table["overflow"] in ("auto", "scroll"), table
