"""Simulation: corrections applied exactly, recoding rules, regrouping, summaries, extrapolation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nordgroup import Grouper, episodes_from_records, load_tables
from nordgroup.episodes.synth import synthesize
from nordgroup.exceptions import TableFormatError
from nordgroup.money.extrapolate import extrapolate_sample
from nordgroup.money.financing import load_financing
from nordgroup.money.recoding import apply_scenario
from nordgroup.money.scenario import PromoteSpecificSecondary, RemoveCodes, ReplaceCodes, Scenario, load_scenario
from nordgroup.money.simulation import Baseline, simulate
from nordgroup.money.weights import load_weights
from tests.conftest import DEMO_TABLES

_state: dict[str, object] = {}


def demo_baseline() -> Baseline:
    if "baseline" not in _state:
        tables = load_tables(DEMO_TABLES)
        _state["baseline"] = Baseline(
            Grouper(tables, cache=False),
            load_weights(DEMO_TABLES / "weights_demo.csv"),
            load_financing(DEMO_TABLES / "financing_demo.toml"),
        )
    return _state["baseline"]


def records(*diagnoses_and_procedures) -> pa.Table:
    return episodes_from_records(
        [
            {"episode_id": f"E{i}", "sex": 1, "age_days": 20000, "duration_days": 3, "diagnoses": d, "procedures": p}
            for i, (d, p) in enumerate(diagnoses_and_procedures, start=1)
        ]
    )


def corrections(*rows) -> pa.Table:
    names = ("episode_id", "action", "role", "code", "old_code")
    return pa.table({name: [row[i] if i < len(row) else "" for row in rows] for i, name in enumerate(names)})


def test_corrections_applied_exactly():
    episodes = records(
        (["R074", "I10", "E119"], ["JEA00"]),
        (["I219", "I10", "I10"], ["NCJ05", "TFP00"]),
        ([], []),
        (["K359"], []),
    )
    review = corrections(
        ("E1", "replace", "principal", "I21.9"),  # written with a dot: read as I219
        ("E1", "add", "secondary", "N179"),
        ("E1", "remove", "secondary", "I10"),
        ("E2", "remove", "secondary", "I10"),  # coded twice: one row removes one occurrence,
        ("E2", "remove", "secondary", "I10"),  # the second row the other
        ("E2", "replace", "procedure", "NCJ10", "NCJ05"),
        ("E3", "add", "secondary", "E119"),  # no diagnoses at all: an empty principal comes first
        ("E4", "remove", "principal", ""),
        ("E4", "remove", "secondary", "Z999"),  # not there: not applied
        ("E9", "add", "secondary", "E119"),  # no such episode: not applied
    )
    edited, changed, notes = apply_scenario(episodes, Scenario(corrections=review))
    assert edited.column("diagnoses").to_pylist() == [["I219", "E119", "N179"], ["I219"], ["", "E119"], [""]]
    assert edited.column("procedures").to_pylist() == [["JEA00"], ["NCJ10", "TFP00"], [], []]
    assert changed.tolist() == [True, True, True, True]
    assert notes[0].startswith("corrections: 8 of 10 applied")
    assert "E4 remove secondary Z999" in notes[1] and "E9 add secondary E119" in notes[1]


def test_recoding_rules():
    episodes = records(
        (["R074", "Z370", "I209", "E119"], []),
        (["R074", "Z370"], []),
        (["I209", "R69", "Z755"], ["JEA00"]),
    )
    promoted, changed, _ = apply_scenario(episodes, Scenario(recodings=[PromoteSpecificSecondary()]))
    assert promoted.column("diagnoses").to_pylist() == [
        ["I209", "Z370", "E119"],
        ["R074", "Z370"],
        ["I209", "R69", "Z755"],
    ]
    assert changed.tolist() == [True, False, False]
    swapped, _, _ = apply_scenario(episodes, Scenario(recodings=[PromoteSpecificSecondary(keep_old_principal=True)]))
    assert swapped.column("diagnoses").to_pylist()[0] == ["I209", "Z370", "R074", "E119"]
    removed, changed, _ = apply_scenario(episodes, Scenario(recodings=[RemoveCodes(["R69", "Z75.5", "R074"])]))
    assert removed.column("diagnoses").to_pylist()[2] == ["I209"]
    assert removed.column("diagnoses").to_pylist()[0][0] == "R074"  # secondary block list: principal untouched
    assert changed.tolist() == [False, False, True]
    replaced, _, _ = apply_scenario(episodes, Scenario(recodings=[ReplaceCodes({"JEA00": "JEA01"}, role="procedure")]))
    assert replaced.column("procedures").to_pylist()[2] == ["JEA01"]


def test_only_edited_episodes_regrouped_matches_full_regrouping():
    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, 3000, seed=5)
    scenario = Scenario(recodings=[PromoteSpecificSecondary()])
    result = simulate(episodes, baseline, scenario)
    edited, _, _ = apply_scenario(episodes, scenario)
    assert result.episodes.column("drg_after").to_pylist() == baseline.grouper.group(edited).column("drg").to_pylist()
    # another table object forces regrouping everything; the same logic must give the same DRGs
    full = simulate(episodes, baseline, attrs_evolve(scenario, tables=load_tables(DEMO_TABLES)))
    assert full.episodes.column("drg_after").to_pylist() == result.episodes.column("drg_after").to_pylist()


def attrs_evolve(scenario: Scenario, **changes) -> Scenario:
    import attrs

    return attrs.evolve(scenario, **changes)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400))
def test_empty_scenario_changes_nothing(seed, n):
    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, n, seed=seed)
    result = simulate(episodes, baseline, Scenario())
    totals = result.totals.to_pylist()[0]
    assert totals["drg_changed"] == 0 and totals["codes_changed"] == 0
    assert totals["points_change"] == 0 and totals["reimbursement_change"] == 0
    migration = result.migration
    assert migration.column("drg_before").to_pylist() == migration.column("drg_after").to_pylist()


def test_price_change_by_hand():
    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, 500, seed=2)
    result = simulate(episodes, baseline, Scenario(financing_changes={"price_per_point": 46_000}))
    totals = result.totals.to_pylist()[0]
    assert totals["points_change"] == 0
    assert totals["reimbursement_after"] == pytest.approx(totals["reimbursement_before"] * 46_000 / 45_000)
    units = result.by_unit
    assert sum(units.column("reimbursement_change").to_pylist()) == pytest.approx(totals["reimbursement_change"])


def test_summaries_and_migration_add_up():
    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, 2000, seed=9)
    result = simulate(episodes, baseline, Scenario(recodings=[PromoteSpecificSecondary()]))
    totals = result.totals.to_pylist()[0]
    for table in (result.by_drg, result.by_mdc, result.by_care_type, result.migration):
        assert sum(table.column("points_change").to_pylist()) == pytest.approx(totals["points_change"])
    moved = result.migration.filter(
        pa.compute.not_equal(result.migration.column("drg_before"), result.migration.column("drg_after"))
    )
    assert sum(moved.column("episodes").to_pylist()) == totals["drg_changed"]


def test_scenario_file(tmp_path):
    (tmp_path / "review.csv").write_text("episode_id,action,role,code,old_code\nE1,replace,principal,I219,\n")
    (tmp_path / "block.txt").write_text("# block list\nR69\nZ755\n")
    (tmp_path / "s.toml").write_text(
        'name = "review"\ncorrections = "review.csv"\n[financing]\nprice_per_point = 46000\n'
        '[[recode]]\nkind = "remove_codes"\nrole = "secondary"\ncodes_file = "block.txt"\n'
    )
    scenario = load_scenario(tmp_path / "s.toml")
    assert scenario.name == "review" and len(scenario.corrections) == 1
    assert scenario.recodings == (RemoveCodes(["R69", "Z755"]),)
    assert scenario.financing_changes == {"price_per_point": 46000}
    (tmp_path / "review.csv").write_text("episode_id,action,role,code\nE1,swap,principal,I219\n")
    with pytest.raises(TableFormatError) as raised:
        load_scenario(tmp_path / "s.toml")
    assert raised.value.row == 2 and raised.value.column == "action"


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ('[financing]\nprice_per_point = "46 000"\n', "price_per_point"),
        ("[financing]\nyear = 2017.5\n", "year"),
        ('[[recode]]\nkind = "remove_codes"\nrole = "secondary"\ncodes = "R69"\n', "codes"),
    ],
)
def test_scenario_file_values_are_checked_where_they_are_read(tmp_path, text, column):
    """A wrong value is named with its file and key when the scenario is read, not when it runs
    (a text of codes would otherwise be read as one code per character)."""
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(TableFormatError) as raised:
        load_scenario(tmp_path / "s.toml")
    assert raised.value.column == column and "s.toml" in str(raised.value)


def test_report_and_cli(tmp_path):
    from nordgroup.cli.grammar import main
    from nordgroup.episodes.layouts import write_table

    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, 300, seed=4)
    result = simulate(episodes, baseline, Scenario(name="rules", recodings=[PromoteSpecificSecondary()]))
    html = result.write_report(tmp_path / "r.html").read_text()
    assert "<svg" in html and "DEMO" in html

    write_table(episodes, tmp_path / "episodes.parquet")
    (tmp_path / "s.toml").write_text('name = "rules"\n[[recode]]\nkind = "promote_specific_secondary"\n')
    arguments = [
        "simulate",
        str(tmp_path / "episodes.parquet"),
        "--tables",
        str(DEMO_TABLES),
        "--weights",
        str(DEMO_TABLES / "weights_demo.csv"),
        "--financing",
        str(DEMO_TABLES / "financing_demo.toml"),
        "--scenario",
        str(tmp_path / "s.toml"),
        "--out-dir",
        str(tmp_path / "out"),
    ]
    assert main(arguments) == 0
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "rules_by_drg.csv").exists()
    weights = arguments.index("--weights") + 1
    arguments[weights] = str(tmp_path / "s.toml")  # a weight table that is not one
    assert main(arguments) == 2


def planted_sample(seed: int, population: int = 20_000):
    """A population whose true change is known, and a Poisson sample with unequal probabilities."""
    rng = np.random.default_rng(seed)
    error = rng.random(population) < 0.1
    change = np.where(error, rng.normal(0.4, 0.5, population), 0.0)
    probability = np.where(rng.random(population) < 0.5, 0.02, 0.08)
    drawn = rng.random(population) < probability
    sample = pa.table(
        {
            "points_before": np.ones(drawn.sum()),
            "points_change": change[drawn],
            "reimbursement_before": np.full(drawn.sum(), 22_500.0),
            "reimbursement_change": change[drawn] * 22_500,
            "inclusion_probability": probability[drawn],
        }
    )
    return sample, change.sum()


def test_bootstrap_interval_covers_planted_truth():
    covered = 0
    for seed in range(40):
        sample, truth = planted_sample(seed)
        estimate = extrapolate_sample(sample, replicates=1000, seed=seed)
        covered += estimate.points.low <= truth <= estimate.points.high
        assert estimate.money.change == pytest.approx(estimate.points.change * 22_500)
    assert covered >= 34  # nominal 95 %: 38 of 40 expected, allow for sampling noise


def test_planted_population_conclusive():
    sample, _ = planted_sample(1)
    estimate = extrapolate_sample(sample)
    assert estimate.conclusive and "raise" in estimate.verdict
    assert estimate.population_size == pytest.approx(20_000, rel=0.1)


def test_too_small_sample_says_so():
    sample, _ = planted_sample(3)
    small = extrapolate_sample(sample.slice(0, 12))
    assert not small.conclusive and small.verdict.startswith("Too small to conclude: 12 reviewed episodes")
    unchanged = sample.set_column(1, "points_change", pa.array(np.zeros(len(sample))))
    quiet = extrapolate_sample(unchanged)
    assert not quiet.conclusive and "changed points" in quiet.verdict


def test_stratified_bootstrap_runs():
    sample, _ = planted_sample(5)
    strata = np.where(sample.column("inclusion_probability").to_numpy() < 0.05, "low", "high")
    estimate = extrapolate_sample(sample.append_column("stratum", pa.array(strata)), stratum="stratum")
    assert estimate.points.low <= estimate.points.change <= estimate.points.high


def _reviewed_sample_run(tmp_path, *extra):
    """`nordgroup simulate` on a reviewed sample with two design strata of unequal probability."""
    from nordgroup.cli.grammar import main
    from nordgroup.episodes.layouts import write_table

    baseline = demo_baseline()
    episodes = synthesize(baseline.grouper.tables, 600, seed=21)
    stratum = np.where(np.arange(len(episodes)) % 3 == 0, "findings", "other")
    episodes = episodes.append_column("stratum", pa.array(stratum))
    episodes = episodes.append_column("inclusion_probability", pa.array(np.where(stratum == "findings", 0.5, 0.05)))
    write_table(episodes, tmp_path / "sample.parquet")
    (tmp_path / "s.toml").write_text('name = "review"\n[[recode]]\nkind = "promote_specific_secondary"\n')
    arguments = ["simulate", str(tmp_path / "sample.parquet"), "--tables", str(DEMO_TABLES)]
    arguments += ["--weights", str(DEMO_TABLES / "weights_demo.csv")]
    arguments += ["--financing", str(DEMO_TABLES / "financing_demo.toml"), "--scenario", str(tmp_path / "s.toml")]
    arguments += ["--out-dir", str(tmp_path / "out"), "--sample-probability", "inclusion_probability", *extra]
    assert main(arguments) == 0
    result = simulate(episodes, baseline, load_scenario(tmp_path / "s.toml"))
    return result


def test_cli_extrapolation_bootstraps_within_the_strata(tmp_path, capsys):
    """`--sample-stratum` reaches the bootstrap: the CLI prints the stratified estimate, which
    differs from the unstratified one on this sample (issue 18, defect 9)."""
    result = _reviewed_sample_run(tmp_path, "--sample-stratum", "stratum")
    printed = capsys.readouterr().out
    stratified = extrapolate_sample(result, stratum="stratum").verdict
    plain = extrapolate_sample(result).verdict
    assert stratified != plain and "interval" in stratified
    assert stratified in printed and plain not in printed


def test_cli_extrapolation_uses_the_sample_stratum_column_by_default(tmp_path, capsys):
    """A review sample's `stratum` column is used without being named, and the output says so."""
    result = _reviewed_sample_run(tmp_path)
    printed = capsys.readouterr().out
    assert extrapolate_sample(result, stratum="stratum").verdict in printed
    assert "within strata: stratum" in printed


def _hip(*procedures: str) -> pa.Table:
    """A hip fracture (MDC 08) with these procedures: in the demo tables 209A needs an OR
    procedure after the first (`secpro +`), so the order of the procedures decides the DRG."""
    return episodes_from_records(
        [
            {
                "episode_id": "H",
                "sex": 1,
                "age_days": 25000,
                "duration_days": 5,
                "diagnoses": ["S7200"],
                "procedures": list(p),
            }
            for p in [procedures]
        ]
    )


def test_a_correction_can_make_a_procedure_the_first_one():
    """`add procedure NFB40 first` regroups exactly as grouping the episode written that way
    (issue 18, defect 10); without a position the code is appended, as before."""
    baseline = demo_baseline()
    direct = baseline.grouper.group(_hip("NFB40", "TFP00")).column("drg")[0].as_py()
    appended = baseline.grouper.group(_hip("TFP00", "NFB40")).column("drg")[0].as_py()
    assert direct != appended  # the order matters here, so the test can tell the two apart
    review = corrections(("H", "add", "procedure", "NFB40"))
    first = review.append_column("position", pa.array(["first"]))
    for table, expected, drg in ((first, ["NFB40", "TFP00"], direct), (review, ["TFP00", "NFB40"], appended)):
        result = simulate(_hip("TFP00"), baseline, Scenario(corrections=table))
        assert apply_scenario(_hip("TFP00"), Scenario(corrections=table))[0].column("procedures")[0].as_py() == expected
        assert result.episodes.column("drg_after")[0].as_py() == drg
    moved = corrections(("H", "remove", "procedure", "NFB40"), ("H", "add", "procedure", "NFB40"))
    moved = moved.append_column("position", pa.array(["", "first"]))
    result = simulate(_hip("TFP00", "NFB40"), baseline, Scenario(corrections=moved))
    assert result.episodes.column("drg_after")[0].as_py() == direct


def test_remove_drops_one_occurrence_at_a_time():
    """NFB40 written twice: one remove leaves one NFB40 (and the DRG of a single NFB40)."""
    baseline = demo_baseline()
    result = simulate(
        _hip("NFB40", "NFB40"), baseline, Scenario(corrections=corrections(("H", "remove", "procedure", "NFB40")))
    )
    once = baseline.grouper.group(_hip("NFB40")).column("drg")[0].as_py()
    assert result.episodes.column("drg_after")[0].as_py() == once
    edited, _, notes = apply_scenario(
        _hip("NFB40", "NFB40"), Scenario(corrections=corrections(*[("H", "remove", "procedure", "NFB40")] * 3))
    )
    assert edited.column("procedures")[0].as_py() == [] and "2 of 3 applied" in notes[0]


def test_a_position_is_only_for_add(tmp_path):
    table = corrections(("H", "remove", "procedure", "NFB40")).append_column("position", pa.array(["first"]))
    with pytest.raises(TableFormatError) as raised:
        Scenario(corrections=table)
    assert raised.value.row == 2 and raised.value.column == "position"


_CODES = st.sampled_from(["NFB40", "TFP00", "NCJ05", "JEA00"])


@settings(max_examples=60, deadline=None)
@given(
    procedures=st.lists(_CODES, max_size=6),
    edits=st.lists(st.tuples(st.sampled_from(["remove", "add last", "add first"]), _CODES), max_size=6),
)
def test_procedure_corrections_match_a_list_edited_by_hand(procedures, edits):
    """Against a plain-list reference: each remove takes the next occurrence of its code in the
    original list; adds go after the kept codes or, `first`, before them, in the corrections' order."""
    kept = list(procedures)
    for action, code in edits:
        if action == "remove" and code in kept:
            kept.remove(code)  # the first occurrence not yet removed: list order is kept
    first = [code for action, code in edits if action == "add first"]
    last = [code for action, code in edits if action == "add last"]
    rows = [("H", action.split()[0], "procedure", code) for action, code in edits]
    table = corrections(*rows) if rows else corrections(("X", "add", "procedure", "NFB40"))
    table = table.append_column(
        "position", pa.array([action.split()[1] if " " in action else "" for action, _ in edits] or [""])
    )
    edited, _, _ = apply_scenario(_hip(*procedures), Scenario(corrections=table))
    assert edited.column("procedures")[0].as_py() == first + kept + last


def test_by_drg_names_each_drg():
    """`by_drg` carries the DRG names of the tables (or of a published weight list, `name_drgs`)."""
    baseline = demo_baseline()
    result = simulate(synthesize(baseline.grouper.tables, 300, seed=4), baseline, Scenario())
    drgs, names = result.by_drg.column("drg").to_pylist(), result.by_drg.column("drg_name").to_pylist()
    named = dict(zip(drgs, names, strict=True))
    assert named["014B"] == baseline.grouper.tables.drgs["014B"].name == "Specific cerebrovascular disorders w/o CC"
