"""Grouping: compiling the tables into arrays, encoding episodes, the Numba kernel, the `Grouper`.

The pure-Python reference grouper (`reference`) is the executable specification the compiled path
is proven equal to, and `explain` traces one episode through it. Only `kernel` imports Numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.engine.compile import CompiledTables, compile_tables
    from nordgroup.engine.explain import Explanation, episode_from_row, explain_episode
    from nordgroup.engine.grouper import NO_RULE_RTC, RESULT_COLUMNS, Grouper, describe_flags

__all__ = [
    "NO_RULE_RTC",
    "RESULT_COLUMNS",
    "CompiledTables",
    "Explanation",
    "Grouper",
    "compile_tables",
    "describe_flags",
    "episode_from_row",
    "explain_episode",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "compile_tables": "nordgroup.engine.compile",
        "CompiledTables": "nordgroup.engine.compile",
        "describe_flags": "nordgroup.engine.grouper",
        "episode_from_row": "nordgroup.engine.explain",
        "explain_episode": "nordgroup.engine.explain",
        "Explanation": "nordgroup.engine.explain",
        "Grouper": "nordgroup.engine.grouper",
        "NO_RULE_RTC": "nordgroup.engine.grouper",
        "RESULT_COLUMNS": "nordgroup.engine.grouper",
    },
)
