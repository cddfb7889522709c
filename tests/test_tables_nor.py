"""The Norwegian DefinitionData reader: real files as published, broken files named precisely."""

from __future__ import annotations

import zipfile

import pytest

import nordgroup as ng
from nordgroup.tables._build import clean_drg, clean_mdc, clean_value
from tests.conftest import RELEASES, shared_path


def test_values_are_normalised_once():
    assert clean_value(" 15.0 ") == "15"
    assert clean_mdc("1") == "01" and clean_mdc("1.0") == "01"
    assert clean_drg("  1A") == "1A"
    assert clean_value("s") == "S"


@pytest.mark.parametrize("year", sorted(RELEASES))
def test_official_release_loads_with_metadata(nor_tables, year):
    tables = nor_tables(year)
    assert tables.release.country == "nor" and tables.release.year == year
    assert len(tables.rules) > 2000 and len(tables.diagnoses) > 19000
    assert [rule.position for rule in tables.rules] == list(range(len(tables.rules)))
    assert tables.rules[0].id == "000D000000"  # file order is first-match order
    assert all(" " not in drg for drg in tables.drgs)  # '  1A' padding removed
    assert any(rule.dgprop and rule.dgprop[0].startswith("-") for rule in tables.rules)  # negated DGPROP read
    kinds = {finding.kind for finding in tables.findings}
    assert "unknown-complication-category" in kinds  # real inconsistencies are listed, not raised


def test_broken_json_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "DefinitionData_NOR_2099_X.json"
    path.write_text('\ufeff{"drglogic": [ {"ord": "1",, } ]}', encoding="utf-8")
    with pytest.raises(ng.TableFormatError, match=r"DefinitionData_NOR_2099_X.json: broken JSON.*line 1, column"):
        ng.load_tables(path)


def test_missing_table_is_named(tmp_path):
    path = tmp_path / "DefinitionData_NOR_2099_X.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DefinitionData_NOR_2099_X.json", '{"drglogic": [],}')
    with pytest.raises(ng.TableFormatError, match=r"missing table.*dg"):
        ng.load_tables(path)


def test_cached_load_equals_the_raw_load(tmp_path):
    path = shared_path("norddrg", "nor", RELEASES[2017])
    raw = ng.load_tables(path)
    ng.load_tables(path, cache=tmp_path)
    cached = ng.load_tables(path, cache=tmp_path)
    assert cached.release == raw.release
    assert cached.rules == raw.rules
    assert dict(cached.diagnoses) == dict(raw.diagnoses)
