"""The codes that carry the DRG: every reported change is checked against the reference grouper,
and every change the reference sees is reported (none missed), on random and on planted episodes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from nordgroup import episodes_from_records
from nordgroup.engine.explain import episode_from_row
from nordgroup.engine.reference import group_episode
from nordgroup.episodes.synth import synthesize
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import group_and_price
from nordgroup.money.weights import load_weights
from nordgroup.review.code_sensitivity import SENSITIVITY_SCHEMA, carried_by_one_code, sensitivity
from tests import strategies
from tests.conftest import DEMO_TABLES

YEAR = 2017
_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _reference_changes(tables, table: pa.Table) -> set[tuple]:
    """(row, change, position, drg after) of every one-code change the reference grouper sees."""

    def drg(row: dict) -> str | None:
        return group_episode(tables, episode_from_row(row)).drg

    expected = set()
    for index, row in enumerate(table.to_pylist()):
        before = drg(row)
        diagnoses, procedures = row["diagnoses"] or [], row["procedures"] or []
        variants = []
        for j in range(1, len(diagnoses)):
            variants.append(("remove_secondary", j, {**row, "diagnoses": diagnoses[:j] + diagnoses[j + 1 :]}))
        for j in range(len(procedures)):
            variants.append(("remove_procedure", j, {**row, "procedures": procedures[:j] + procedures[j + 1 :]}))
        for j in range(1, len(diagnoses)):
            swapped = list(diagnoses)
            swapped[0], swapped[j] = swapped[j], swapped[0]
            variants.append(("swap_principal", j, {**row, "diagnoses": swapped}))
        for change, position, variant in variants:
            after = drg(variant)
            if after != before:
                expected.add((index, change, position, after))
    return expected


def test_every_reported_change_is_the_reference_groupers(nor_grouper, nor_tables):
    """Reported changes == the reference grouper's changes, exactly: none wrong, none missed."""
    tables = nor_tables(YEAR)
    grouper = nor_grouper(YEAR)

    @_settings
    @given(strategies.episodes(tables, max_size=12))
    def check(batch: pa.Table) -> None:
        changes = sensitivity(batch, grouper, batch_size=5)  # several batches: rows stay the input's
        assert changes.schema == SENSITIVITY_SCHEMA
        reported = {(row["row"], row["change"], row["position"], row["drg_after"]) for row in changes.to_pylist()}
        assert reported == _reference_changes(tables, batch)
        drg = grouper.group(batch).column("drg").to_pylist()
        assert changes.column("drg").to_pylist() == [drg[row] for row in changes.column("row").to_pylist()]
        ids = batch.column("episode_id").to_pylist()
        assert changes.column("episode_id").to_pylist() == [ids[row] for row in changes.column("row").to_pylist()]

    check()


def test_planted_codes_that_carry_the_drg(nor_grouper):
    """A pneumonia whose CC is one secondary diagnosis, and an AMI whose DRG is one procedure."""
    grouper = nor_grouper(YEAR)
    episodes = episodes_from_records(
        [
            {"episode_id": "pci", "sex": 1, "age_days": 25000, "duration_days": 4, "discharge": "N",
             "diagnoses": ["I210", "E119", "J189"], "procedures": ["FNG05"]},
            {"episode_id": "cc", "sex": 2, "age_days": 25000, "duration_days": 5, "discharge": "N",
             "diagnoses": ["J189", "E871", "I10"], "procedures": []},
        ]
    )  # fmt: skip
    changes = sensitivity(episodes, grouper)
    removals = changes.filter(pa.compute.not_equal(changes.column("change"), "swap_principal"))
    assert removals.select(["episode_id", "change", "code", "drg", "drg_after"]).to_pylist() == [
        {"episode_id": "pci", "change": "remove_procedure", "code": "FNG05", "drg": "112F", "drg_after": "122"},
        {"episode_id": "cc", "change": "remove_secondary", "code": "E871", "drg": "89", "drg_after": "90"},
    ]
    assert carried_by_one_code(changes, 2).tolist() == [True, True]
    swaps = changes.filter(pa.compute.equal(changes.column("change"), "swap_principal"))
    assert swaps.select(["episode_id", "position", "code"]).to_pylist() == [
        {"episode_id": "pci", "position": 1, "code": "E119"},
        {"episode_id": "pci", "position": 2, "code": "J189"},
        {"episode_id": "cc", "position": 1, "code": "E871"},
        {"episode_id": "cc", "position": 2, "code": "I10"},
    ]


def test_points_difference_is_the_pricing_of_both_drgs():
    """With weights, points and points_after are `money.price_episodes` of the episode and its variant."""
    from nordgroup import Grouper, load_tables

    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables)
    weights = load_weights(DEMO_TABLES / "weights_demo.csv")
    episodes = synthesize(tables, 400, seed=3)
    changes = sensitivity(episodes, grouper, weights=weights)
    assert len(changes) > 20
    financing = Financing(1.0, 1.0)
    priced = group_and_price(grouper, episodes, weights, financing).column("points").to_pylist()
    rows = episodes.to_pylist()
    for change in changes.to_pylist()[:60]:
        row = dict(rows[change["row"]])
        position = change["position"]
        if change["change"] == "remove_procedure":
            row["procedures"] = row["procedures"][:position] + row["procedures"][position + 1 :]
        elif change["change"] == "remove_secondary":
            row["diagnoses"] = row["diagnoses"][:position] + row["diagnoses"][position + 1 :]
        else:
            row["diagnoses"] = list(row["diagnoses"])
            row["diagnoses"][0], row["diagnoses"][position] = row["diagnoses"][position], row["diagnoses"][0]
        variant = episodes_from_records([row])
        after = group_and_price(grouper, variant, weights, financing).column("points")[0].as_py()
        assert change["points"] == pytest.approx(priced[change["row"]], nan_ok=True)
        assert change["points_after"] == pytest.approx(after, nan_ok=True)
        if after is not None and priced[change["row"]] is not None:
            assert change["points_difference"] == pytest.approx(after - priced[change["row"]])
    assert np.isfinite(changes.column("points_difference").to_numpy(zero_copy_only=False)).any()
