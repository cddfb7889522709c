"""Questions about a release: what a code is, which DRGs it can lead to, what a DRG holds, what changed.

`properties` answers `code_info`, `reachability` `drgs_for_code` (an exact SAT search, in
`_formula`, `conditions` and `_search`), `contents` `drg_contents` and `diff` `diff_tables`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.explore.conditions import Unreachable, code_satisfies
    from nordgroup.explore.contents import DrgContents, RuleContents, drg_contents
    from nordgroup.explore.diff import TablesDiff, diff_tables
    from nordgroup.explore.properties import CodeInfo, code_info
    from nordgroup.explore.reachability import CodeDrgs, drgs_for_code

__all__ = [
    "CodeDrgs",
    "CodeInfo",
    "DrgContents",
    "RuleContents",
    "TablesDiff",
    "Unreachable",
    "code_info",
    "code_satisfies",
    "diff_tables",
    "drg_contents",
    "drgs_for_code",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "code_info": "nordgroup.explore.properties",
        "code_satisfies": "nordgroup.explore.conditions",
        "CodeDrgs": "nordgroup.explore.reachability",
        "CodeInfo": "nordgroup.explore.properties",
        "diff_tables": "nordgroup.explore.diff",
        "drg_contents": "nordgroup.explore.contents",
        "DrgContents": "nordgroup.explore.contents",
        "drgs_for_code": "nordgroup.explore.reachability",
        "RuleContents": "nordgroup.explore.contents",
        "TablesDiff": "nordgroup.explore.diff",
        "Unreachable": "nordgroup.explore.conditions",
    },
)
