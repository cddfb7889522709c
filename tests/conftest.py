"""Shared fixtures: the official material in ../shared, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NOR = SHARED / "norddrg" / "nor"
DEMO_TABLES = Path(__file__).resolve().parents[1] / "grouper_tables"
RELEASES = {
    2015: "DefinitionData_NOR_2015_Pr1cN.zip",
    2016: "DefinitionData_NOR_2016_PR1cN.zip",
    2017: "DefinitionData_NOR_2017_PR1aN.zip",
}
#: The table year the official reference episodes were grouped with (proved in test_official_cases.py).
REFERENCE_YEAR = 2015


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips the test when it is absent, except on CI where that fails."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing on CI: the official material must be beside the checkout")
        pytest.skip(f"{path} not present (the official tables live in ../shared)")
    return path


_tables_cache: dict[int, object] = {}


@pytest.fixture(scope="session")
def nor_tables():
    """Loader of the Norwegian tables by year, each loaded once per test session."""
    from nordgroup import load_tables

    def load(year: int):
        if year not in _tables_cache:
            _tables_cache[year] = load_tables(shared_path("norddrg", "nor", RELEASES[year]))
        return _tables_cache[year]

    return load


_grouper_cache: dict[int, object] = {}


@pytest.fixture(scope="session")
def nor_grouper(nor_tables):
    from nordgroup import Grouper

    def make(year: int):
        if year not in _grouper_cache:
            _grouper_cache[year] = Grouper(nor_tables(year))
        return _grouper_cache[year]

    return make
