"""The comparison report rendered in a real headless browser: the page is not blank and the SVG
charts (agreement per unit, DRGs that change most, codes missed or added) are drawn. Skips without
chromium, except on CI, where chromium must be installed."""

from __future__ import annotations

import numpy as np

from nordgroup import Grouper, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.money.weights import load_weights
from nordgroup.review.comparison import compare
from tests.conftest import DEMO_TABLES
from tests.test_audit_report_browser import _chromium, _screenshot
from tests.test_compare import _ai_coding

# matplotlib's first four series colours: the four agreement bars per unit (the last two only there)
_CHART_COLOURS = {
    "blue": (0x1F, 0x77, 0xB4),
    "orange": (0xFF, 0x7F, 0x0E),
    "green": (0x2C, 0xA0, 0x2C),
    "red": (0xD6, 0x27, 0x28),
}


def test_compare_report_renders_with_charts(tmp_path):
    browser = _chromium()
    tables = load_tables(DEMO_TABLES)
    a = synthesize(tables, 3000, seed=7, units=4)
    b, *_ = _ai_coding(a, drop=0.2, add=0.1, seed=3)
    result = compare(a, b.slice(3), Grouper(tables), weights=load_weights(DEMO_TABLES / "weights_demo.csv"))
    page = result.report(tmp_path / "compare.html")
    text = page.read_text()
    for heading in ("Agreement per unit", "DRGs that change most", "Codes most often missed or added"):
        assert f'<h2>{heading}</h2><div class="chart"><svg' in text, heading
    png = tmp_path / "compare.png"
    _screenshot(browser, page, png)

    import matplotlib.image

    pixels = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(np.int16)
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 10, "the screenshot is blank"
    for name, colour in _CHART_COLOURS.items():
        close = (np.abs(pixels - np.array(colour)).max(axis=-1) <= 12).sum()
        assert close > 500, f"no {name} chart marks on screen: the SVG charts were not drawn"
