"""Money: weights, financing, points and casemix, cost per patient (KPP), and what-if simulation.

`weights` reads weight lists, `financing` a year's prices, `pricing` turns a grouped episode into
points and money (the formulas are in `docs/money.md`), `kpp` compares costs with reimbursement.
`scenario` describes a what-if, `recoding` applies it, `simulation` regroups and reprices, and
`extrapolate` carries a reviewed sample to the population.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.money.extrapolate import Estimate, Extrapolation, extrapolate_sample
    from nordgroup.money.financing import Financing, load_financing
    from nordgroup.money.kpp import CostWeightRules, CostWeights, cost_vs_reimbursement, weights_from_costs
    from nordgroup.money.pricing import (
        CARE_TYPES,
        PRICE_COLUMNS,
        care_types,
        casemix,
        drg_keys,
        group_and_price,
        price_episodes,
        with_drg_names,
    )
    from nordgroup.money.recoding import apply_scenario
    from nordgroup.money.scenario import (
        ACTIONS,
        POSITIONS,
        PromoteSpecificSecondary,
        RemoveCodes,
        ReplaceCodes,
        Scenario,
        corrections_table,
        load_scenario,
    )
    from nordgroup.money.simulation import Baseline, SimulationResult, simulate
    from nordgroup.money.weights import (
        DrgWeight,
        WeightTable,
        as_weight_table,
        load_weights,
        name_drgs,
        parse_weight_columns,
    )

__all__ = [
    "ACTIONS",
    "CARE_TYPES",
    "POSITIONS",
    "PRICE_COLUMNS",
    "Baseline",
    "CostWeightRules",
    "CostWeights",
    "DrgWeight",
    "Estimate",
    "Extrapolation",
    "Financing",
    "PromoteSpecificSecondary",
    "RemoveCodes",
    "ReplaceCodes",
    "Scenario",
    "SimulationResult",
    "WeightTable",
    "apply_scenario",
    "as_weight_table",
    "care_types",
    "casemix",
    "corrections_table",
    "cost_vs_reimbursement",
    "drg_keys",
    "extrapolate_sample",
    "group_and_price",
    "load_financing",
    "load_scenario",
    "load_weights",
    "name_drgs",
    "parse_weight_columns",
    "price_episodes",
    "simulate",
    "weights_from_costs",
    "with_drg_names",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ACTIONS": "nordgroup.money.scenario",
        "apply_scenario": "nordgroup.money.recoding",
        "as_weight_table": "nordgroup.money.weights",
        "Baseline": "nordgroup.money.simulation",
        "CARE_TYPES": "nordgroup.money.pricing",
        "care_types": "nordgroup.money.pricing",
        "casemix": "nordgroup.money.pricing",
        "corrections_table": "nordgroup.money.scenario",
        "cost_vs_reimbursement": "nordgroup.money.kpp",
        "CostWeightRules": "nordgroup.money.kpp",
        "CostWeights": "nordgroup.money.kpp",
        "drg_keys": "nordgroup.money.pricing",
        "DrgWeight": "nordgroup.money.weights",
        "Estimate": "nordgroup.money.extrapolate",
        "extrapolate_sample": "nordgroup.money.extrapolate",
        "Extrapolation": "nordgroup.money.extrapolate",
        "Financing": "nordgroup.money.financing",
        "group_and_price": "nordgroup.money.pricing",
        "load_financing": "nordgroup.money.financing",
        "load_scenario": "nordgroup.money.scenario",
        "load_weights": "nordgroup.money.weights",
        "name_drgs": "nordgroup.money.weights",
        "parse_weight_columns": "nordgroup.money.weights",
        "POSITIONS": "nordgroup.money.scenario",
        "PRICE_COLUMNS": "nordgroup.money.pricing",
        "price_episodes": "nordgroup.money.pricing",
        "PromoteSpecificSecondary": "nordgroup.money.scenario",
        "RemoveCodes": "nordgroup.money.scenario",
        "ReplaceCodes": "nordgroup.money.scenario",
        "Scenario": "nordgroup.money.scenario",
        "simulate": "nordgroup.money.simulation",
        "SimulationResult": "nordgroup.money.simulation",
        "weights_from_costs": "nordgroup.money.kpp",
        "WeightTable": "nordgroup.money.weights",
        "with_drg_names": "nordgroup.money.pricing",
    },
)
