"""nordgroup: NordDRG grouping on Arrow batches, compiled to Numba; explain, explore, audit, simulate.

The packages follow the data: `tables` (definition tables → `DrgTables`), `episodes` (episode
files → Arrow), `engine` (compiled arrays, the kernel, the `Grouper`), then what is built on the
results: `explore` (questions about a release), `review` (coding audit and comparison), `money`
(points, financing, what-if). `cli` is the command line. Each package's docstring says what it owns.

The public names load their module on first use (PEP 562), so that a command that only reads the
tables (`nordgroup tables code ...`) starts without importing Numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.engine.grouper import Grouper, describe_flags
    from nordgroup.episodes.layouts import (
        EPISODE_SCHEMA,
        episodes_from_records,
        iter_episodes,
        read_episodes,
        write_table,
    )
    from nordgroup.exceptions import EpisodeSchemaError, NordgroupError, TableFormatError
    from nordgroup.explore.contents import drg_contents
    from nordgroup.explore.diff import diff_tables
    from nordgroup.explore.properties import code_info
    from nordgroup.explore.reachability import drgs_for_code
    from nordgroup.money.financing import load_financing
    from nordgroup.money.scenario import Scenario, load_scenario
    from nordgroup.money.simulation import Baseline, simulate
    from nordgroup.money.weights import load_weights
    from nordgroup.review.code_sensitivity import sensitivity
    from nordgroup.review.comparison import Comparison, compare
    from nordgroup.review.findings import audit
    from nordgroup.tables import DrgTables, load_tables

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
    "code_info",
    "compare",
    "describe_flags",
    "diff_tables",
    "drg_contents",
    "drgs_for_code",
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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "audit": "nordgroup.review.findings",
        "Baseline": "nordgroup.money.simulation",
        "code_info": "nordgroup.explore.properties",
        "Comparison": "nordgroup.review.comparison",
        "compare": "nordgroup.review.comparison",
        "describe_flags": "nordgroup.engine.grouper",
        "diff_tables": "nordgroup.explore.diff",
        "drg_contents": "nordgroup.explore.contents",
        "drgs_for_code": "nordgroup.explore.reachability",
        "DrgTables": "nordgroup.tables",
        "EPISODE_SCHEMA": "nordgroup.episodes.layouts",
        "EpisodeSchemaError": "nordgroup.exceptions",
        "episodes_from_records": "nordgroup.episodes.layouts",
        "Grouper": "nordgroup.engine.grouper",
        "iter_episodes": "nordgroup.episodes.layouts",
        "load_financing": "nordgroup.money.financing",
        "load_scenario": "nordgroup.money.scenario",
        "load_tables": "nordgroup.tables",
        "load_weights": "nordgroup.money.weights",
        "NordgroupError": "nordgroup.exceptions",
        "read_episodes": "nordgroup.episodes.layouts",
        "Scenario": "nordgroup.money.scenario",
        "sensitivity": "nordgroup.review.code_sensitivity",
        "simulate": "nordgroup.money.simulation",
        "TableFormatError": "nordgroup.exceptions",
        "write_table": "nordgroup.episodes.layouts",
    },
)
