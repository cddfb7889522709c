"""nordgroup: NordDRG grouping on Arrow batches, compiled to Numba; explain, audit, simulate."""

from nordgroup.audit import audit
from nordgroup.episodes import EPISODE_SCHEMA, episodes_from_records, read_episodes, write_table
from nordgroup.exceptions import EpisodeSchemaError, NordgroupError, TableFormatError
from nordgroup.grouper import Grouper, describe_flags
from nordgroup.money import load_financing, load_weights
from nordgroup.simulate import Baseline, Scenario, load_scenario, simulate
from nordgroup.tables import DrgTables, load_tables

__all__ = [
    "EPISODE_SCHEMA",
    "Baseline",
    "DrgTables",
    "EpisodeSchemaError",
    "Grouper",
    "NordgroupError",
    "Scenario",
    "TableFormatError",
    "audit",
    "describe_flags",
    "episodes_from_records",
    "load_financing",
    "load_scenario",
    "load_tables",
    "load_weights",
    "read_episodes",
    "simulate",
    "write_table",
]
