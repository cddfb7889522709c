"""Definition tables: the canonical model and the readers of every published layout."""

from nordgroup.tables.load import load_tables
from nordgroup.tables.model import DrgTables, Rule

__all__ = ["DrgTables", "Rule", "load_tables"]
