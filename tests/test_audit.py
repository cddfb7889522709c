"""Coding audit: planted errors are caught by their finding kind, indicators match a hand count,
review samples are reproducible with exact inclusion probabilities, block lists fail loudly."""

from __future__ import annotations

import re
import zlib

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from nordgroup.episodes.layouts import episodes_from_records
from nordgroup.episodes.synth import synthesize
from nordgroup.review.blocklist import BlockListError, default_block_list, load_block_list
from nordgroup.review.findings import audit, drg_points
from nordgroup.review.kinds import FINDING_SCHEMA, error_drgs
from nordgroup.review.report import audit_report
from nordgroup.review.sample import review_sample
from nordgroup.review.unit_indicators import indicators
from nordgroup.tables.model import DiagnosisProperties

from .conftest import DEMO_TABLES

YEAR = 2017


def _record(episode_id: str, diagnoses: list[str], **fields) -> dict:
    record = {
        "episode_id": episode_id,
        "sex": 1,
        "age_days": 20000,
        "duration_days": 3,
        "discharge": "N",
        "diagnoses": diagnoses,
        "procedures": [],
        "unit": "A",
        "period": "2017-W01",
    }
    record.update(fields)
    return record


#: kind -> episodes planted with exactly that error (ids start with the kind)
PLANTED = {
    "error_drg": [_record("error_drg-1", [])],
    "malformed_field": [
        _record("malformed_field-1", ["I210"], sex=7),
        _record("malformed_field-2", ["I210"], age_days=-3),
    ],
    "malformed_code": [_record("malformed_code-1", ["I210", "12345"])],
    "unknown_code": [
        _record("unknown_code-1", ["I210", "I21"]),
        _record("unknown_code-2", ["I210"], procedures=["ZZZ99"]),
    ],
    "code_not_valid_in_year": [_record("code_not_valid_in_year-1", ["I210", "Q999X"])],
    "blocked_principal": [_record("blocked_principal-1", ["V010", "S7200"])],
    "blocked_secondary": [_record("blocked_secondary-1", ["I210", "I10"])],
    "blocked_combination": [_record("blocked_combination-1", ["E109", "E119"])],
    "symptom_principal": [_record("symptom_principal-1", ["R509", "J189"])],
    "unspecified_principal": [_record("unspecified_principal-1", ["J189", "J180"])],
    "implausible_age_sex": [_record("implausible_age_sex-1", ["N390", "C61"], sex=2)],
    "duplicate_code": [_record("duplicate_code-1", ["I210", "I10", "I10"])],
    "drg_mismatch": [_record("drg_mismatch-1", ["I210"], reported_drg="999X")],
}


@pytest.fixture(scope="module")
def grouper(nor_grouper):
    return nor_grouper(YEAR)


@pytest.fixture(scope="module")
def other_year(grouper):
    """A fake other table year that knows one extra code."""
    tables = grouper.tables
    release = attrs.evolve(tables.release, year=2016, release="FAKE")
    return attrs.evolve(tables, release=release, diagnoses={**tables.diagnoses, ("Q999X", ""): DiagnosisProperties()})


def _block_list(tmp_path):
    path = tmp_path / "block.toml"
    default = (DEMO_TABLES.parent / "src" / "nordgroup" / "data" / "default_block_list.toml").read_text()
    path.write_text(
        default + '\n[[block]]\ncode = "I10"\nrole = "secondary"\nreason = "unit rule: write the specific code"\n'
    )
    return load_block_list(path)


def _planted_batch(grouper, n_background: int = 500) -> pa.Table:
    background = synthesize(grouper.tables, n_background, seed=11)
    background = background.append_column("reported_drg", pa.nulls(n_background, pa.string()))
    records = [record for group in PLANTED.values() for record in group]
    for record in records:
        record.setdefault("reported_drg", None)
    planted = episodes_from_records(records).select(background.column_names)
    return pa.concat_tables([background, planted.cast(background.schema)])


class TestPlantedErrors:
    def test_every_planted_error_is_caught_by_its_kind(self, grouper, other_year, tmp_path):
        """Each planted episode carries a finding of the kind it was planted for."""
        episodes = _planted_batch(grouper)
        findings = audit(
            episodes,
            grouper,
            block_list=_block_list(tmp_path),
            reported_drg_column="reported_drg",
            other_years=[other_year],
        )
        assert findings.schema == FINDING_SCHEMA
        found = set(zip(findings.column("episode_id").to_pylist(), findings.column("kind").to_pylist(), strict=True))
        missed = [
            (record["episode_id"], kind)
            for kind, group in PLANTED.items()
            for record in group
            if (record["episode_id"], kind) not in found
        ]
        assert missed == []

    def test_a_return_code_meaning_from_the_default_table_says_so(self, grouper):
        """The Norwegian tables have no rtc table: the finding's text marks nordgroup's default meaning."""
        findings = audit(episodes_from_records(PLANTED["error_drg"]), grouper)
        texts = findings.filter(pc.equal(findings.column("kind"), "error_drg")).column("text").to_pylist()
        assert texts and all("[nordgroup's default meaning" in text for text in texts)

    def test_duplicate_episode_ids(self, grouper):
        """An id given twice is reported once, on its second occurrence."""
        records = [_record("X", ["I210"]), _record("X", ["I210"]), _record("Y", ["I210"])]
        findings = audit(episodes_from_records(records), grouper)
        duplicates = findings.filter(pc.equal(findings.column("kind"), "duplicate_episode"))
        assert duplicates.column("row").to_pylist() == [1]

    def test_symptom_principal_names_the_better_secondary(self, grouper):
        """The text says which secondary diagnosis could have been principal."""
        findings = audit(episodes_from_records([_record("s", ["R509", "J189", "J180"])]), grouper)
        text = findings.filter(pc.equal(findings.column("kind"), "symptom_principal")).column("text")[0].as_py()
        assert "J180" in text and "could be principal" in text

    def test_mismatch_points_are_the_weight_difference(self, grouper):
        """Points of a mismatch are regrouped weight minus reported weight."""
        episodes = episodes_from_records([_record("m", ["I210"], reported_drg="999X")])
        regrouped = grouper.group(episodes).column("drg")[0].as_py()
        findings = audit(episodes, grouper, weights={regrouped: 2.5, "999X": 1.0}, reported_drg_column="reported_drg")
        mismatch = findings.filter(pc.equal(findings.column("kind"), "drg_mismatch"))
        assert mismatch.column("points").to_pylist() == [pytest.approx(1.5)]

    def test_weights_as_arrow_table_from_demo_csv(self, grouper):
        """A weight table read with pyarrow.csv gives every finding of a known DRG its points."""
        weights = pacsv.read_csv(
            DEMO_TABLES / "weights_demo.csv", convert_options=pacsv.ConvertOptions(column_types={"drg": pa.string()})
        )
        episodes = episodes_from_records([_record("e", [])])
        grouped = grouper.group(episodes)
        points = drg_points(grouped, weights)
        findings = audit(episodes, grouper, weights=weights, grouped=grouped)
        expected = dict(zip(weights.column("drg").to_pylist(), weights.column("weight").to_pylist(), strict=True))
        assert points[0] == pytest.approx(expected["470"])
        assert findings.column("points").to_pylist()[0] == pytest.approx(expected["470"])

    def test_clean_episodes_give_no_error(self, grouper):
        """A plain, valid stay gives no finding at all."""
        findings = audit(episodes_from_records([_record("ok", ["I210"])]), grouper)
        assert findings.column("kind").to_pylist() == []


class TestIndicators:
    def test_values_by_hand(self, grouper):
        """Four episodes, two units: each share counted by hand."""
        records = [
            _record("1", ["R509", "I10", "J189"], unit="A"),  # symptom (and unspecified) principal, 2 secondaries
            _record("2", ["Z511"], unit="A", duration_days=0),  # Z principal, outpatient
            _record("3", [], unit="B"),  # error DRG
            _record("4", ["I219", "I10"], unit="B"),  # unspecified principal, 1 secondary
        ]
        episodes = episodes_from_records(records)
        grouped = grouper.group(episodes)
        table = indicators(episodes, grouped, audit(episodes, grouper, grouped=grouped), period_column=None)
        rows = {(r["unit"], r["care_type"]): r for r in table.to_pylist()}
        assert set(rows) == {("A", "inpatient"), ("A", "outpatient"), ("B", "inpatient")}
        a_in, a_out, b_in = rows["A", "inpatient"], rows["A", "outpatient"], rows["B", "inpatient"]
        assert (a_in["episodes"], a_in["symptom_principal_share"], a_in["mean_secondary_diagnoses"]) == (1, 1.0, 2.0)
        z_in_error = grouped.column("drg")[1].as_py() in error_drgs(grouper.tables)
        assert (a_out["z_principal_share"], a_out["error_drg_share"]) == (1.0, float(z_in_error))
        assert b_in["episodes"] == 2
        assert b_in["error_drg_share"] == 0.5
        assert b_in["unspecified_principal_share"] == 0.5
        assert b_in["mean_secondary_diagnoses"] == 0.5
        cc = pc.fill_null(grouped.column("cc_level"), 0).to_pylist()
        assert b_in["cc_share"] == sum(level >= 1 for level in cc[2:]) / 2


@pytest.fixture(scope="module")
def audited(grouper):
    episodes = synthesize(grouper.tables, 6000, seed=5, units=3)
    grouped = grouper.group(episodes)
    weights = {drg: 1.0 + (zlib.crc32(drg.encode()) % 7) / 3 for drg in grouper.tables.drgs}
    return episodes, audit(episodes, grouper, grouped=grouped), drg_points(grouped, weights)


class TestReviewSample:
    def test_reproducible_with_seed(self, audited):
        """The same seed draws the same sample; another seed another one."""
        episodes, findings, points = audited
        first = review_sample(episodes, findings, fraction=0.25, seed=1, points=points)
        again = review_sample(episodes, findings, fraction=0.25, seed=1, points=points)
        other = review_sample(episodes, findings, fraction=0.25, seed=2, points=points)
        assert first.equals(again)
        assert first.column("row").to_pylist() != other.column("row").to_pylist()

    def test_inclusion_probabilities_are_exact(self, audited):
        """In every unit × week × stratum, probability = drawn / population, so 1/π sums to the population."""
        episodes, findings, points = audited
        sample = review_sample(episodes, findings, fraction=0.25, seed=3, points=points)
        everyone = review_sample(episodes, findings, fraction=1.0, seed=3, points=points)
        assert len(everyone) == len(episodes) and set(everyone.column("inclusion_probability").to_pylist()) == {1.0}
        key = ["unit", "period", "stratum"]
        population = {
            tuple(r[k] for k in key): r["row_count"]
            for r in everyone.group_by(key).aggregate([("row", "count")]).to_pylist()
        }
        drawn = sample.group_by(key).aggregate(
            [("row", "count"), ("inclusion_probability", "min"), ("inclusion_probability", "max")]
        )
        for r in drawn.to_pylist():
            expected = r["row_count"] / population[tuple(r[k] for k in key)]
            assert r["inclusion_probability_min"] == pytest.approx(expected) == r["inclusion_probability_max"]
        assert abs(len(sample) - 0.25 * len(episodes)) < 0.02 * len(episodes)

    def test_findings_are_over_represented(self, audited):
        """Episodes with findings are drawn at a higher rate than those without."""
        episodes, findings, points = audited
        sample = review_sample(episodes, findings, fraction=0.25, seed=3, points=points)
        probability = dict(
            (r["stratum"], r["inclusion_probability_mean"])
            for r in sample.group_by("stratum").aggregate([("inclusion_probability", "mean")]).to_pylist()
        )
        assert probability["findings"] > probability["other"]
        assert probability["findings and high points"] > probability["findings"]


class TestBlockList:
    def test_default_loads(self):
        """The shipped default has external causes and lone asterisk codes as principal."""
        entries = {(entry.pattern, entry.role) for entry in default_block_list().entries}
        assert ("V01-Y98", "principal") in entries and ("@asterisk", "principal") in entries

    def test_csv_error_names_file_and_line(self, tmp_path):
        """A bad role on line 3 of a CSV is reported with the file and line 3."""
        path = tmp_path / "units.csv"
        path.write_text("code,role,reason\nR69,principal,too vague\nI10,sideways,nonsense\n")
        with pytest.raises(BlockListError, match=r"units\.csv, line 3: role 'sideways'"):
            load_block_list(path)

    def test_toml_error_names_file_and_line(self, tmp_path):
        """A bad pattern in the second [[block]] names the line of that header."""
        path = tmp_path / "units.toml"
        path.write_text(
            '[[block]]\ncode = "R69"\nrole = "principal"\nreason = "vague"\n\n'
            '[[block]]\ncode = "I1?"\nrole = "any"\nreason = "x"\n'
        )
        with pytest.raises(BlockListError, match=r"units\.toml, line 6: code pattern 'I1\?'"):
            load_block_list(path)

    def test_toml_syntax_error_names_line(self, tmp_path):
        """A TOML syntax error keeps the parser's line number."""
        path = tmp_path / "broken.toml"
        path.write_text('[[block]]\ncode = "R69\n')
        with pytest.raises(BlockListError, match=r"broken\.toml, line 2"):
            load_block_list(path)

    def test_combination_needs_partner(self, tmp_path):
        """A combination without `with` is refused."""
        path = tmp_path / "c.csv"
        path.write_text("code,role,reason\nE10*,combination,diabetes types\n")
        with pytest.raises(BlockListError, match="line 2: a combination needs"):
            load_block_list(path)


def test_report_is_one_file_with_charts(grouper, tmp_path):
    """The report is one HTML file with inline SVG charts and no external references."""
    episodes = _planted_batch(grouper, 300)
    grouped = grouper.group(episodes)
    findings = audit(episodes, grouper, grouped=grouped, reported_drg_column="reported_drg")
    sample = review_sample(episodes, findings, fraction=0.5, seed=1)
    path = audit_report(tmp_path / "audit.html", episodes, grouped, findings, sample=sample)
    text = path.read_text()
    assert text.count("<svg") >= 3
    assert not re.search(r'(?:src|href)="https?://', text), "the report must open offline"


def test_the_audit_command_writes_what_the_library_finds(tmp_path):
    """`nordgroup audit` with weights and a sample: the files hold the library's answer; bad weights exit 2."""
    from nordgroup.cli.grammar import main
    from nordgroup.engine.grouper import Grouper
    from nordgroup.episodes.layouts import read_episodes, write_table
    from nordgroup.money.weights import load_weights
    from nordgroup.tables.load import load_tables

    tables = load_tables(DEMO_TABLES)
    write_table(synthesize(tables, 400, seed=11), tmp_path / "episodes.parquet")
    weights = DEMO_TABLES / "weights_demo.csv"
    arguments = ["audit", str(tmp_path / "episodes.parquet"), "--tables", str(DEMO_TABLES), "--weights", str(weights)]
    arguments += ["--sample", "25%", "--sample-out", str(tmp_path / "sample.csv"), "--out", str(tmp_path / "f.parquet")]
    assert main(arguments) == 0

    episodes = read_episodes(tmp_path / "episodes.parquet")
    expected = audit(episodes, Grouper(tables), weights=load_weights(weights).to_arrow())
    written = pq.read_table(tmp_path / "f.parquet")
    assert written.column("kind").to_pylist() == expected.column("kind").to_pylist() != []
    assert written.column("points").to_pylist() == expected.column("points").to_pylist()
    assert 0 < len(pacsv.read_csv(tmp_path / "sample.csv")) < len(episodes)

    arguments[arguments.index("--weights") + 1] = str(tmp_path / "sample.csv")  # not a weight table
    assert main(arguments) == 2


# --- issue 18: the audit compares DRGs and prices episodes as the money module does -------------


def _demo_grouper():
    from nordgroup.engine.grouper import Grouper
    from nordgroup.tables.load import load_tables

    return Grouper(load_tables(DEMO_TABLES))


def test_reported_drgs_with_or_without_leading_zeros_are_the_same_drg():
    """`14B` reported for a regrouped `014B` (and `8` for `008`) is no mismatch; a real one still is."""
    grouper = _demo_grouper()
    records = [
        _record("a", ["I634"], reported_drg="14B"),
        _record("b", ["I630", "G409"], procedures=["FNG05"], reported_drg=" 8 "),
        _record("c", ["I634"], reported_drg="0014b"),
        _record("d", ["I634"], reported_drg="14A"),
    ]
    episodes = episodes_from_records(records)
    assert grouper.group(episodes).column("drg").to_pylist() == ["014B", "008", "014B", "014B"]
    weights = pacsv.read_csv(
        DEMO_TABLES / "weights_demo.csv", convert_options=pacsv.ConvertOptions(column_types={"drg": pa.string()})
    )
    findings = audit(episodes, grouper, weights=weights, reported_drg_column="reported_drg")
    mismatches = findings.filter(pc.equal(findings.column("kind"), "drg_mismatch"))
    assert mismatches.column("episode_id").to_pylist() == ["d"]
    # 14A (weight 1.7 in the demo list, written without its zero) is found in the weight table
    assert mismatches.column("points").to_pylist() == [pytest.approx(1.2 - 1.7)]


def test_points_at_stake_come_from_the_pricing():
    """A 60-day stay in 014B reported as 470 is 1.2 + 35 x 0.09 points at stake (not 1.2); an
    outpatient contact in 175 is worth the outpatient weight 0.138 (not 0.55)."""
    grouper = _demo_grouper()
    episodes = episodes_from_records(
        [
            _record("long", ["I634"], duration_days=60, reported_drg="470"),
            _record("outpatient", ["K922"], duration_days=0, reported_drg="470"),
        ]
    )
    assert grouper.group(episodes).column("drg").to_pylist() == ["014B", "175"]
    weights = pacsv.read_csv(
        DEMO_TABLES / "weights_demo.csv", convert_options=pacsv.ConvertOptions(column_types={"drg": pa.string()})
    )
    findings = audit(episodes, grouper, weights=weights, reported_drg_column="reported_drg")
    mismatch = findings.filter(pc.equal(findings.column("kind"), "drg_mismatch"))
    assert mismatch.column("points").to_pylist() == [pytest.approx(1.2 + 35 * 0.09), pytest.approx(0.138)]
    # every other finding of the episode carries its priced points too, as `drg_points` does
    assert drg_points(grouper.group(episodes), weights, episodes=episodes).tolist() == pytest.approx([4.35, 0.138])


def test_care_type_is_counted_the_same_in_audit_and_money():
    """One definition: the input `care_type` column where filled, else duration 0 = outpatient."""
    from nordgroup.money.financing import load_financing
    from nordgroup.money.pricing import casemix, price_episodes
    from nordgroup.money.weights import load_weights

    grouper = _demo_grouper()
    records = [
        _record("1", ["I634"], duration_days=0, care_type="inpatient"),  # admitted, went home the same day
        _record("2", ["I634"], duration_days=0, care_type=None),  # no care type: duration 0 decides
        _record("3", ["K922"], duration_days=2, care_type="outpatient"),
        _record("4", ["K922"], duration_days=2, care_type=None),
        _record("5", ["K922"], duration_days=0, care_type="Day surgery"),
    ]
    episodes = episodes_from_records(records)
    grouped = grouper.group(episodes)
    priced = price_episodes(
        grouped,
        load_weights(DEMO_TABLES / "weights_demo.csv"),
        load_financing(DEMO_TABLES / "financing_demo.toml"),
        duration_days=episodes.column("duration_days"),
    )
    assert priced.column("care_type").to_pylist() == [
        "inpatient",
        "outpatient",
        "outpatient",
        "inpatient",
        "day_surgery",
    ]
    money_counts = {r["care_type"]: r["episodes"] for r in casemix(priced, "care_type").to_pylist()}
    table = indicators(
        episodes, grouped, audit(episodes, grouper, grouped=grouped), unit_column=None, period_column=None
    )
    audit_counts = {r["care_type"]: r["episodes"] for r in table.to_pylist()}
    assert audit_counts == money_counts == {"inpatient": 2, "outpatient": 2, "day_surgery": 1}


def test_invoice_review_gives_money_and_compares_the_invoiced_amount():
    """With financing the mismatch carries money (points x 45 000 x 0.5); an invoiced amount that
    is not what the regrouped DRG pays is an `amount_mismatch`, one that is (to the krone) is not."""
    from nordgroup.money.financing import load_financing
    from nordgroup.money.weights import load_weights

    grouper = _demo_grouper()
    weights = load_weights(DEMO_TABLES / "weights_demo.csv")
    financing = load_financing(DEMO_TABLES / "financing_demo.toml")
    paid = 4.35 * 45_000 * 0.5  # the 60-day stay in 014B
    episodes = episodes_from_records(
        [
            _record("long", ["I634"], duration_days=60, reported_drg="470", invoiced="0"),
            _record("right", ["I634"], duration_days=60, reported_drg="014B", invoiced=f"{paid:.2f}".replace(".", ",")),
            _record("blank", ["I634"], duration_days=3, reported_drg="014B", invoiced=None),
        ]
    )
    findings = audit(
        episodes,
        grouper,
        weights=weights,
        financing=financing,
        reported_drg_column="reported_drg",
        invoiced_amount_column="invoiced",
    )
    by_kind = {(r["episode_id"], r["kind"]): r for r in findings.to_pylist()}
    assert set(by_kind) == {("long", "drg_mismatch"), ("long", "amount_mismatch")}
    mismatch = by_kind["long", "drg_mismatch"]
    assert mismatch["points"] == pytest.approx(4.35) and mismatch["money"] == pytest.approx(paid)
    assert "4.35 points" in mismatch["text"]
    amount = by_kind["long", "amount_mismatch"]
    assert amount["money"] == pytest.approx(paid) and amount["points"] == pytest.approx(4.35)
    with pytest.raises(ValueError, match="needs weights and financing"):
        audit(episodes, grouper, weights=weights, invoiced_amount_column="invoiced")
