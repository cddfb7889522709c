"""Combined NDMS releases and the choice of national version and code system.

The Combined release is made here from the project's own demo tables: the demo rows as Sweden's,
a changed copy (rules dropped and redirected, codes removed, a DRG renamed) as Finland's. Each
country is exported as a national NDMS folder; the Combined folder merges their rows, a row shared
by both naming `fin/swe` in `nat_ver`, with `drg_comb` in `drg_logic` and both `code_nat` and
`code_plus` in the code tables, as NCC ships it. Reading one version of the Combined release must
give that country's tables, and group every episode as that country's folder alone does.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import attrs
import pyarrow as pa
import pytest

from nordgroup import Grouper, read_episodes
from nordgroup.cli.grammar import main
from nordgroup.episodes.synth import synthesize
from nordgroup.exceptions import TableFormatError
from nordgroup.tables import load_tables
from nordgroup.tables._export import write_workbook
from nordgroup.tables.model import DrgTables
from tests.conftest import DEMO_TABLES, RELEASES, shared_path

VERSIONS = ("swe", "fin")
ANSWERS = ("drg", "rule", "rtc", "cc_level")
CODE_TABLES = {
    "dg_feat": ("code_nat", "d_code_nat"),
    "proc_feat": ("code_nat",),
    "compl_excl": ("code_nat", "d_code_nat"),
}


def _plus(code: str) -> str:
    """The test's ICD-10+/NCSP+ code of a national code: one more character, so no two codes meet."""
    return code + "0" if code else ""


def _finnish(demo: DrgTables) -> DrgTables:
    """The demo tables changed where a national version differs: rules, codes, names."""
    kept = [rule for i, rule in enumerate(demo.rules) if i % 11 != 5]  # some rules only Sweden has
    drgs = sorted(demo.drgs)
    rules = tuple(
        attrs.evolve(rule, position=i, drg=drgs[(drgs.index(rule.drg) + 1) % len(drgs)] if i % 6 == 2 else rule.drg)
        for i, rule in enumerate(kept)
    )
    diagnoses = {key: props for i, (key, props) in enumerate(demo.diagnoses.items()) if i % 9 != 4}
    procedures = {code: props for i, (code, props) in enumerate(demo.procedures.items()) if i % 7 != 3}
    renamed = next(iter(demo.drgs.values()))
    names = {**demo.drgs, renamed.drg: attrs.evolve(renamed, name="Finnish name")}
    return attrs.evolve(
        demo,
        release=attrs.evolve(demo.release, country="fin"),
        rules=rules,
        diagnoses=diagnoses,
        procedures=procedures,
        drgs=names,
        return_codes={**demo.return_codes, "8": "Käytetty päädiagnoosi sopimaton"},
    )


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)


def _combined_rows(national: dict[str, Path]) -> dict[str, list[list[str]]]:
    """The Combined tables of the national folders, in the Combined column layout."""
    tables: dict[str, list[list[str]]] = {}
    for name in ("drg_logic", "dg_feat", "proc_feat", "compl_name", "compl_excl", "drg_name", "rtc"):
        files = [folder / f"{name}.csv" for folder in national.values() if (folder / f"{name}.csv").exists()]
        if not files:  # rtc: written only for releases with return-code meanings
            continue
        header = _read(files[0])[0]
        version_column = header.index("nat_ver" if "nat_ver" in header else "country")
        merged: dict[tuple[str, ...], list[str]] = {}
        # One `ord` per rule id, Sweden's: Finland's rules are Sweden's in the same order, less some.
        ords = {row[1]: row[0] for row in _read(national[VERSIONS[0]] / "drg_logic.csv")[1:]}
        for version, folder in national.items():
            for row in _read(folder / f"{name}.csv")[1:] if (folder / f"{name}.csv").exists() else []:
                if name == "drg_logic":
                    row[0] = ords[row[1]]
                cells = tuple(row[:version_column] + row[version_column + 1 :])
                if name in ("drg_name", "rtc"):  # as NCC ships them: one row per country
                    cells += (version,)
                merged.setdefault(cells, []).append(version)
        rows = [
            [*cells[:version_column], "/".join(versions), *cells[version_column:]] for cells, versions in merged.items()
        ]
        rows = [row[: len(header)] for row in rows]
        tables[name] = _combined_layout(name, header, rows)
    tables["readme"] = [["Version:", "2026"], ["Name:", "Combined2026TEST"], ["Source:", "NDMS"]]
    return tables


def _combined_layout(name: str, header: list[str], rows: list[list[str]]) -> list[list[str]]:
    if name == "drg_logic":  # drg_comb instead of drg_nat/drg_text_nat
        drop = header.index("drg_text_nat")
        header = [("drg_comb" if column == "drg_nat" else column) for column in header]
        return [[cell for i, cell in enumerate(row) if i != drop] for row in [header, *rows]]
    if name == "drg_name":  # the national DRG code beside the Combined one the rules lead to
        drg = header.index("drg_nat")
        return [[*header, "drg_comb"]] + [[*row[:drg], "N" + row[drg], *row[drg + 1 :], row[drg]] for row in rows]
    if name in CODE_TABLES:
        columns = [header.index(column) for column in CODE_TABLES[name]]
        plus_header = [column.replace("_nat", "_plus") for column in CODE_TABLES[name]]
        return [[*header, *plus_header]] + [[*row, *(_plus(row[i]) for i in columns)] for row in rows]
    return [header, *rows]


def _make_release(base: DrgTables, root: Path) -> tuple[dict[str, Path], Path, dict[str, list[list[str]]]]:
    """(national folders by version, the Combined folder, its rows by table): `base` as Sweden's."""
    swedish = attrs.evolve(base, release=attrs.evolve(base.release, country="swe"))
    national = {version: root / version for version in VERSIONS}
    swedish.export(national["swe"])
    _finnish(base).export(national["fin"])
    rows = _combined_rows(national)
    combined = root / "Combined2026TEST"
    combined.mkdir()
    for name, table in rows.items():
        _write(combined / f"{name}.csv", table)
    return national, combined, rows


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return _make_release(load_tables(DEMO_TABLES), tmp_path_factory.mktemp("combined"))


@pytest.fixture(scope="module")
def episodes():
    return synthesize(load_tables(DEMO_TABLES), 4000, seed=13)


def _same_tables(left: DrgTables, right: DrgTables) -> None:
    for name in ("rules", "diagnoses", "procedures", "complication_categories", "exclusions", "drgs", "return_codes"):
        assert getattr(left, name) == getattr(right, name), name


def _answers(tables: DrgTables, episodes: pa.Table) -> list[tuple]:
    result = Grouper(tables, cache=False).group(episodes)
    return list(zip(*(result[column].to_pylist() for column in ANSWERS), strict=True))


def test_the_combined_folder_has_the_combined_layout(release):
    rows = release[2]
    assert "drg_nat" not in rows["drg_logic"][0] and "drg_comb" in rows["drg_logic"][0]
    shared = [row for row in rows["drg_logic"][1:] if row[-1] == "swe/fin"]
    only = {version: [row for row in rows["drg_logic"][1:] if row[-1] == version] for version in VERSIONS}
    assert shared and only["swe"] and only["fin"], "both versions need rows of their own for this test to bite"


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_reads_as_that_countrys_tables(release, episodes, version):
    national, combined, _ = release
    alone = load_tables(national[version])
    chosen = load_tables(combined, national_version=version)
    _same_tables(chosen, alone)
    assert _answers(chosen, episodes) == _answers(alone, episodes)
    info = chosen.release
    assert (info.layout, info.national_version, info.codes) == ("ndms-csv-combined", version, "national")
    assert (info.country, info.year, info.release) == (version, 2026, "Combined2026TEST")
    assert info.label == f"{version.upper()} 2026 Combined2026TEST"


def test_the_versions_group_differently(release, episodes):
    _, combined, _ = release
    swedish, finnish = (_answers(load_tables(combined, national_version=v), episodes) for v in VERSIONS)
    assert sum(a != b for a, b in zip(swedish, finnish, strict=True)) > 100


def test_one_release_has_one_hash_per_version_and_code_system(release):
    _, combined, _ = release
    hashes = {
        load_tables(combined, national_version=version, codes=codes).release.source_hash
        for version in VERSIONS
        for codes in ("national", "plus")
    }
    assert len(hashes) == 4  # the compiled-table and explorer caches are keyed by it


def test_plus_codes_group_as_the_national_codes(release, episodes):
    national, combined, _ = release
    plus = load_tables(combined, national_version="swe", codes="plus")
    alone = load_tables(national["swe"])
    assert plus.release.codes == "plus"
    assert set(plus.diagnoses) == {(_plus(code), _plus(dagger)) for code, dagger in alone.diagnoses}
    assert set(plus.procedures) == {_plus(code) for code in alone.procedures}
    assert plus.rules == alone.rules

    def in_plus(column: str) -> pa.Array:
        codes = [
            [" ".join(_plus(part) for part in text.split()) for text in row] for row in episodes[column].to_pylist()
        ]
        return pa.array(codes, pa.list_(pa.string()))

    written_in_plus = episodes.set_column(
        episodes.schema.get_field_index("diagnoses"), "diagnoses", in_plus("diagnoses")
    ).set_column(episodes.schema.get_field_index("procedures"), "procedures", in_plus("procedures"))
    assert _answers(plus, written_in_plus) == _answers(alone, episodes)


def test_a_release_of_plus_codes_only_reads_them_by_default(release, tmp_path):
    """The real Combined 2024 code tables carry `code_plus` and no `code_nat`."""
    _, combined, rows = release
    folder = tmp_path / "plus_only"
    shutil.copytree(combined, folder)
    for name, columns in CODE_TABLES.items():
        header = rows[name][0]
        keep = [i for i, column in enumerate(header) if column not in columns]
        _write(folder / f"{name}.csv", [[row[i] for i in keep] for row in rows[name]])
    tables = load_tables(folder, national_version="fin")
    assert tables.release.codes == "plus"
    assert tables.diagnoses == load_tables(combined, national_version="fin", codes="plus").diagnoses
    with pytest.raises(TableFormatError, match=r"codes='national' reads column code_nat, which dg_feat lacks"):
        load_tables(folder, national_version="fin", codes="national")


def test_a_combined_release_without_version_names_the_versions(release):
    _, combined, _ = release
    with pytest.raises(TableFormatError) as error:
        load_tables(combined)
    assert error.value.path == str(combined / "drg_logic.csv")
    assert error.value.column == "nat_ver"
    assert "choose one of fin, swe" in str(error.value)


def test_a_version_the_release_does_not_hold_is_refused(release):
    _, combined, _ = release
    with pytest.raises(TableFormatError, match=r"no rule belongs to national version 'nor': nat_ver names fin, swe"):
        load_tables(combined, national_version="NOR")


def test_a_combined_workbook_reads_as_the_folder(release, tmp_path):
    pytest.importorskip("python_calamine")
    pytest.importorskip("xlsxwriter")
    _, combined, rows = release
    workbook = tmp_path / "Combined2026TEST.xlsx"
    write_workbook(workbook, rows)
    tables = load_tables(workbook, national_version="fin")
    _same_tables(tables, load_tables(combined, national_version="fin"))
    assert (tables.release.layout, tables.release.year, tables.release.release) == (
        "excel-combined",
        2026,
        "Combined2026TEST",
    )


def test_the_norwegian_json_holds_only_its_own_version():
    path = shared_path("norddrg", "nor", RELEASES[2017])
    with pytest.raises(TableFormatError, match="national version nor with national codes only"):
        load_tables(path, national_version="swe")
    with pytest.raises(ValueError, match="codes='icd'"):
        load_tables(path, codes="icd")


def test_cli_reads_the_chosen_version(release, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NORDGROUP_CACHE", str(tmp_path / "cache"))
    _, combined, _ = release
    assert main(["tables", "info", str(combined), "--national-version", "fin", "--codes", "plus"]) == 0
    out = capsys.readouterr().out
    assert "layout      ndms-csv-combined" in out
    assert "national    fin (the rows whose nat_ver names it)" in out
    assert "codes       plus (code_plus: ICD-10+/NCSP+)" in out
    assert (
        main(["tables", "code", "I2140", "--tables", str(combined), "--national-version", "swe", "--codes", "plus"])
        == 0
    )
    assert "I2140" in capsys.readouterr().out
    assert main(["synth", "10", "--tables", str(combined), str(tmp_path / "e.parquet")]) == 2
    assert "choose one of fin, swe" in capsys.readouterr().err


def test_a_chosen_version_exports_as_a_national_release(release, tmp_path):
    _, combined, _ = release
    chosen = load_tables(combined, national_version="fin", codes="plus")
    again = load_tables(chosen.export(tmp_path / "fin"))
    _same_tables(again, chosen)
    info = again.release
    assert (info.country, info.codes, info.layout, info.national_version) == ("fin", "plus", "ndms-csv", None)


def test_cli_explains_with_the_chosen_version(release, episodes, capsys, tmp_path, monkeypatch):
    import json

    from nordgroup.episodes.layouts import write_table

    monkeypatch.setenv("NORDGROUP_CACHE", str(tmp_path / "cache"))
    national, combined, _ = release
    answers = {version: _answers(load_tables(national[version]), episodes) for version in VERSIONS}
    row = next(i for i, (a, b) in enumerate(zip(answers["swe"], answers["fin"], strict=True)) if a[:2] != b[:2])
    write_table(episodes, tmp_path / "episodes.parquet")
    for version in VERSIONS:
        command = ["explain", "--tables", str(combined), "--national-version", version, "--json"]
        assert main([*command, "--file", str(tmp_path / "episodes.parquet"), "--row", str(row)]) == 0
        explained = json.loads(capsys.readouterr().out)
        assert (explained["drg"], explained["rule"]) == answers[version][row][:2]


@pytest.mark.slow
def test_full_scale_each_version_groups_as_its_national_tables(nor_tables, tmp_path):
    """The same, made from the Norwegian 2017 release: real logic, dagger pairs, every oracle episode.

    Each version is compared with the tables it was made of, in memory (the national folders'
    round trip is `test_tables_export`'s), which spares loading them again.
    """
    base = nor_tables(2017)
    _, combined, _ = _make_release(base, tmp_path)
    episodes = pa.concat_tables(
        read_episodes(shared_path("norddrg", "nor", f"oracle_{kind}_2017.csv.gz"), layout="nor-string")
        for kind in ("random", "directed")
    )
    answers = {}
    for version, alone in (("swe", base), ("fin", _finnish(base))):
        chosen = load_tables(combined, national_version=version)
        _same_tables(chosen, alone)
        answers[version] = _answers(chosen, episodes)
        assert answers[version] == _answers(alone, episodes), version
    assert sum(a != b for a, b in zip(answers["swe"], answers["fin"], strict=True)) > 1000
