"""Differential test against the oracle files: ~60 000 episodes of another implementation.

Every disagreement must be one of the documented semantic choices below, each proved by
regrouping the episode under the oracle's convention and getting the oracle's answer:

1. `unknown-principal-rtc`: a written but unknown principal diagnosis that falls to an icd `-`
   rule gets rtc 9, as the official answers (cases 45 and 59) do; the oracle keeps the rule's 1.
2. `oracle-reads-missing-as-zero`: an age or duration that is missing or not a number meets no
   limit here; the oracle compares it as 0 (`abc` days old passes `<29`).
3. `oracle-does-not-clean-codes`: we clean written codes (`A00.0` → `A000`, `i219` → `I219`);
   the oracle looks them up as written and finds nothing.
4. `oracle-reads-sex-letters-as-missing`: we read the national letters M, F and K (kvinne) as
   male and female; the oracle takes only 1 and 2.
5. `secondary-dgprop-not-sex-recoded`: the official case 1317 (2015) reaches a rule testing
   DGPROP `98X99` for a male, so DGPROP values are not recoded; the oracle recodes them to 12/13.
"""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import nordgroup as ng
from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.engine.encode import FLAG_CODE_CLEANED, FLAG_MISSING_AGE, FLAG_MISSING_DURATION, FLAG_UNKNOWN_PRINCIPAL
from nordgroup.engine.reference import derive_features, first_failed_condition
from tests.conftest import shared_path
from tests.helpers import reference_episodes

pytestmark = pytest.mark.slow

# The most disagreements of each documented kind we accept, per file: a regression shows up as
# a new kind (test fails) or as more of a known kind than was measured when this was written.
EXPECTED = {
    (2015, "random"): 40, (2015, "directed"): 10,
    (2016, "random"): 40, (2016, "directed"): 10,
    (2017, "random"): 90, (2017, "directed"): 10,
}  # fmt: skip


def _oracle(year: int, kind: str):
    path = shared_path("norddrg", "nor", f"oracle_{kind}_{year}.csv.gz")
    return ng.read_episodes(path, layout="nor-string")


def _written_sex(year: int, kind: str) -> list[str]:
    path = shared_path("norddrg", "nor", f"oracle_{kind}_{year}.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        next(lines)
        return [line.split(",", 1)[0].strip() for line in lines]


def _answers(result: pa.Table) -> list[tuple]:
    return list(zip(result["drg"].to_pylist(), result["rule"].to_pylist(), result["rtc"].to_pylist(), strict=True))


def _oracle_convention(table: pa.Table) -> pa.Table:
    """The same episodes as the oracle reads them: missing numbers as 0, uncleaned codes unknown."""

    def unknown_if_cleaned(text: str, changed: bool) -> str:
        return "?" + text if changed and text.strip() else text  # "?": a code no table holds

    diagnoses = [
        [unknown_if_cleaned(text, split_written_diagnosis(text)[2]) for text in row]
        for row in table["diagnoses"].to_pylist()
    ]
    procedures = [
        [unknown_if_cleaned(text, clean_written_code(text).changed) for text in row]
        for row in table["procedures"].to_pylist()
    ]
    replaced = {
        "age_days": pc.fill_null(table["age_days"], 0),
        "duration_days": pc.fill_null(table["duration_days"], 0),
        "diagnoses": pa.array(diagnoses, pa.list_(pa.string())),
        "procedures": pa.array(procedures, pa.list_(pa.string())),
    }
    for name, column in replaced.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


@pytest.mark.parametrize("kind", ["random", "directed"])
@pytest.mark.parametrize("year", [2015, 2016, 2017])
def test_every_disagreement_with_the_oracle_is_a_documented_choice(nor_grouper, nor_tables, year, kind):
    episodes = _oracle(year, kind)
    grouper = nor_grouper(year)
    result = grouper.group(episodes)
    assert len(result) == len(episodes)
    oracle_drg = pc.utf8_trim_whitespace(episodes["drg"]).to_pylist()
    expected = list(zip(oracle_drg, episodes["ord"].to_pylist(), episodes["rtc"].to_pylist(), strict=True))
    ours = _answers(result)
    differing = [i for i, (a, b) in enumerate(zip(ours, expected, strict=True)) if a != b]
    rules = {rule.id: rule for rule in nor_tables(year).rules}
    flags = result["flags"].to_numpy()
    kinds: Counter[str] = Counter()
    subset = episodes.take(pa.array(differing, pa.int64())) if differing else episodes.slice(0, 0)
    regrouped = _answers(grouper.group(_oracle_convention(subset)))
    references = reference_episodes(subset)
    written_sex = _written_sex(year, kind)
    for position, i in enumerate(differing):
        mine, theirs = ours[i], expected[i]
        if written_sex[i] not in ("", "1", "2"):
            again = grouper.group(subset.slice(position, 1).set_column(1, "sex", pa.array([None], pa.int8())))
            if _answers(again)[0] == theirs:
                kinds["oracle-reads-sex-letters-as-missing"] += 1
                continue
        unknown_principal = flags[i] & FLAG_UNKNOWN_PRINCIPAL
        if mine[:2] == theirs[:2] and mine[2] == "9" and unknown_principal and rules[theirs[1]].rtc == theirs[2]:
            kinds["unknown-principal-rtc"] += 1
            continue
        again = regrouped[position]
        if again == theirs or (again[:2] == theirs[:2] and again[2] == "9"):
            if flags[i] & (FLAG_MISSING_AGE | FLAG_MISSING_DURATION):
                kinds["oracle-reads-missing-as-zero"] += 1
                continue
            if flags[i] & FLAG_CODE_CLEANED:
                kinds["oracle-does-not-clean-codes"] += 1
                continue
        episode = references[position]
        their_rule = rules[theirs[1]]
        failed = first_failed_condition(their_rule, derive_features(nor_tables(year), episode), episode)
        if failed and failed.startswith("dgprop") and their_rule.dgprop[int(failed[-1]) - 1][:2] in ("12", "13"):
            kinds["secondary-dgprop-not-sex-recoded"] += 1
            continue
        kinds[f"UNEXPLAINED episode {episodes['episode_id'][i]}: ours {mine}, oracle {theirs}"] += 1
    unexplained = [kind for kind in kinds if kind.startswith("UNEXPLAINED")]
    print(year, kind, len(episodes), "episodes,", sum(kinds.values()), "disagreements:", dict(kinds))
    assert not unexplained, unexplained
    assert sum(kinds.values()) <= EXPECTED[(year, kind)], kinds
    documented = ["unknown-principal-rtc", "oracle-reads-missing-as-zero", "oracle-does-not-clean-codes",
                  "oracle-reads-sex-letters-as-missing", "secondary-dgprop-not-sex-recoded"]  # fmt: skip
    assert np.isin(list(kinds), documented).all()
