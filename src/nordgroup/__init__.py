"""nordgroup: NordDRG grouping on Arrow batches, compiled to Numba; explain, audit, simulate.

The public names load their module on first use (PEP 562), so that a command that only reads the
tables (`nordgroup tables code ...`) starts without importing Numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nordgroup.audit import audit
    from nordgroup.comparison import Comparison, compare
    from nordgroup.drg_sensitivity import sensitivity
    from nordgroup.episodes import EPISODE_SCHEMA, episodes_from_records, iter_episodes, read_episodes, write_table
    from nordgroup.exceptions import EpisodeSchemaError, NordgroupError, TableFormatError
    from nordgroup.grouper import Grouper, describe_flags
    from nordgroup.money import load_financing, load_weights
    from nordgroup.simulate import Baseline, Scenario, load_scenario, simulate
    from nordgroup.tables import DrgTables, load_tables

_MODULE_OF = {
    "audit": "nordgroup.audit",
    "Comparison": "nordgroup.comparison",
    "compare": "nordgroup.comparison",
    "EPISODE_SCHEMA": "nordgroup.episodes",
    "episodes_from_records": "nordgroup.episodes",
    "read_episodes": "nordgroup.episodes",
    "iter_episodes": "nordgroup.episodes",
    "write_table": "nordgroup.episodes",
    "EpisodeSchemaError": "nordgroup.exceptions",
    "NordgroupError": "nordgroup.exceptions",
    "TableFormatError": "nordgroup.exceptions",
    "Grouper": "nordgroup.grouper",
    "describe_flags": "nordgroup.grouper",
    "load_financing": "nordgroup.money",
    "load_weights": "nordgroup.money",
    "sensitivity": "nordgroup.drg_sensitivity",
    "Baseline": "nordgroup.simulate",
    "Scenario": "nordgroup.simulate",
    "load_scenario": "nordgroup.simulate",
    "simulate": "nordgroup.simulate",
    "DrgTables": "nordgroup.tables",
    "load_tables": "nordgroup.tables",
}
__all__ = [
    "EPISODE_SCHEMA",
    "Baseline",
    "Comparison",
    "DrgTables",
    "EpisodeSchemaError",
    "Grouper",
    "NordgroupError",
    "Scenario",
    "TableFormatError",
    "audit",
    "compare",
    "describe_flags",
    "episodes_from_records",
    "iter_episodes",
    "load_financing",
    "load_scenario",
    "load_tables",
    "load_weights",
    "read_episodes",
    "sensitivity",
    "simulate",
    "write_table",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'nordgroup' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
