"""The audit report rendered in a real headless browser: the page is not blank and the SVG charts
are drawn. Skips without chromium, except on CI (env CI set), where chromium must be installed
(`apt-get install -y chromium`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from nordgroup.audit import audit, audit_report, review_sample
from nordgroup.synth import synthesize

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
