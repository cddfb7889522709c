"""nordgroup: NordDRG grouping on Arrow batches, compiled to Numba; explain, audit, simulate."""

from nordgroup.episodes import EPISODE_SCHEMA, episodes_from_records, read_episodes, write_table
from nordgroup.exceptions import EpisodeSchemaError, NordgroupError, TableFormatError
from nordgroup.grouper import Grouper, describe_flags
from nordgroup.tables import DrgTables, load_tables

__all__ = [
    "EPISODE_SCHEMA",
    "DrgTables",
    "EpisodeSchemaError",
    "Grouper",
    "NordgroupError",
    "TableFormatError",
    "describe_flags",
    "episodes_from_records",
    "load_tables",
    "read_episodes",
    "write_table",
]
