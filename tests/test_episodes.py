"""Reading episodes in every layout, cleaning codes, and bad input that must lose nothing."""

from __future__ import annotations

import pyarrow as pa
import pytest

import nordgroup as ng
from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.engine.encode import FLAG_CODE_CLEANED, FLAG_MISSING_AGE, FLAG_UNKNOWN_PRINCIPAL, FLAG_UNKNOWN_PROCEDURE
from tests.conftest import DEMO_TABLES


@pytest.fixture(scope="module")
def demo_grouper():
    return ng.Grouper(ng.load_tables(DEMO_TABLES), cache=False)


class TestCleaning:
    def test_dots_case_spaces_and_marks_go(self):
        assert clean_written_code(" i21.0 ").cleaned == "I210"
        assert clean_written_code("G63.2*").cleaned == "G632"
        assert clean_written_code("I210").changed is False

    def test_pairs_are_read_dagger_first_or_by_their_marks(self):
        assert split_written_diagnosis("E830 F028")[:2] == ("E830", "F028")
        assert split_written_diagnosis("G63.2*E11.4†")[:2] == ("E114", "G632")
        assert split_written_diagnosis("E11.4† G63.2*")[:2] == ("E114", "G632")
        assert split_written_diagnosis("I210") == ("I210", "", False)


class TestLayouts:
    def test_wide_layout_becomes_lists_keeping_an_empty_principal(self, tmp_path):
        path = tmp_path / "wide.csv"
        path.write_text("pasient,sex,age_days,dg1,dg2,dg3,proc1,proc2\na,1,100,I219,,E119,FNG05,\nb,2,,,J189,,,\n")
        table = ng.read_episodes(path, layout="wide", id_column="pasient")
        assert table["episode_id"].to_pylist() == ["a", "b"]
        assert table["diagnoses"].to_pylist() == [["I219", "E119"], ["", "J189"]]
        assert table["procedures"].to_pylist() == [["FNG05"], []]
        assert table["age_days"].to_pylist() == [100, None]

    def test_canonical_csv_lists_are_bar_separated_and_round_trip(self, tmp_path, demo_grouper):
        episodes = ng.episodes_from_records(
            [{"episode_id": "1", "sex": 1, "age_days": 20000, "duration_days": 3, "diagnoses": ["I219", "E119"]}]
        )
        path = tmp_path / "episodes.csv"
        ng.write_table(episodes, path)
        again = ng.read_episodes(path)
        assert again["diagnoses"].to_pylist() == [["I219", "E119"]]
        assert demo_grouper.group(again)["drg"].to_pylist() == demo_grouper.group(episodes)["drg"].to_pylist()

    @pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".csv"])
    def test_results_write_in_every_format(self, tmp_path, demo_grouper, suffix):
        from nordgroup.episodes.synth import synthesize

        result = demo_grouper.group(synthesize(demo_grouper.tables, 50, seed=1))
        path = tmp_path / f"out{suffix}"
        ng.write_table(result, path)
        assert path.stat().st_size > 0

    def test_missing_required_column_names_the_columns(self):
        with pytest.raises(ng.EpisodeSchemaError, match=r"missing column.*diagnoses"):
            ng.Grouper.group(None, pa.table({"episode_id": ["1"]}))  # type: ignore[arg-type]

    def test_plain_file_of_episode_strings(self, tmp_path):
        path = tmp_path / "strings.txt"
        path.write_text("1,10614,H,2,,S223,,R040,,X8n0y" + "," * 150 + "\n2,abc,E,0,,,,N974\n")
        table = ng.read_episodes(path, layout="nor-string")
        assert table["episode_id"].to_pylist() == ["1", "2"]
        assert table["age_days"].to_pylist() == [10614, None]
        assert table["discharge"].to_pylist() == ["N", "E"]
        assert table["diagnoses"].to_pylist() == [["S223", "R040", "X8n0y"], ["", "N974"]]


class TestBadRowsLoseNothing:
    def test_unknown_codes_missing_numbers_and_empty_rows_each_get_a_flagged_row(self, demo_grouper):
        episodes = ng.episodes_from_records(
            [
                {
                    "episode_id": "unknown",
                    "diagnoses": ["QQ999"],
                    "procedures": ["NOPE1"],
                    "age_days": 1,
                    "duration_days": 1,
                },
                {"episode_id": "dotted", "diagnoses": ["i21.9"], "age_days": 20000, "duration_days": 2},
                {"episode_id": "empty", "diagnoses": [], "procedures": []},
                {"episode_id": "nulls", "diagnoses": None, "procedures": None},
            ]
        )
        result = demo_grouper.group(episodes)
        assert result["episode_id"].to_pylist() == ["unknown", "dotted", "empty", "nulls"]
        flags = dict(zip(result["episode_id"].to_pylist(), result["flags"].to_pylist(), strict=True))
        assert flags["unknown"] & FLAG_UNKNOWN_PRINCIPAL and flags["unknown"] & FLAG_UNKNOWN_PROCEDURE
        assert flags["dotted"] & FLAG_CODE_CLEANED and not flags["dotted"] & FLAG_UNKNOWN_PRINCIPAL
        assert flags["empty"] & FLAG_MISSING_AGE
        assert all(drg is not None for drg in result["drg"].to_pylist())  # the demo tables end with a catch-all
        assert "unknown principal diagnosis" in result["notes"].to_pylist()[0]
