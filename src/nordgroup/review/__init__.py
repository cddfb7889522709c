"""Reviewing coding: findings, indicators, the review sample and worklist, block lists, and comparing codings.

`findings` runs the `audit` (its kinds in `kinds`, the code-level ones in `_code_findings`);
`unit_indicators` counts per unit; `sample` draws the review sample and `worklist` carries it to the
reviewers and back; `report` is the audit's HTML; `blocklist` the block lists; `comparison` two
codings of the same episodes; `code_sensitivity` which codes carry a DRG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.review._agreement import METRICS, MIN_EPISODES, TOO_FEW, icd10_chapter
    from nordgroup.review.blocklist import (
        BlockEntry,
        BlockList,
        BlockListError,
        default_block_list,
        layered_block_list,
        load_block_list,
    )
    from nordgroup.review.code_sensitivity import CHANGES, SENSITIVITY_SCHEMA, carried_by_one_code, sensitivity
    from nordgroup.review.comparison import DEFAULT_BY, Comparison, compare
    from nordgroup.review.comparison_report import compare_report
    from nordgroup.review.findings import audit, drg_points
    from nordgroup.review.kinds import FINDING_KINDS, FINDING_SCHEMA, error_drgs
    from nordgroup.review.report import audit_report
    from nordgroup.review.sample import STRATUM_NAMES, SampleSizeWarning, review_sample
    from nordgroup.review.unit_indicators import indicators
    from nordgroup.review.worklist import VERDICTS, Review, WorklistError, read_worklist, write_worklist, write_xlsx

__all__ = [
    "CHANGES",
    "DEFAULT_BY",
    "FINDING_KINDS",
    "FINDING_SCHEMA",
    "METRICS",
    "MIN_EPISODES",
    "SENSITIVITY_SCHEMA",
    "STRATUM_NAMES",
    "TOO_FEW",
    "VERDICTS",
    "BlockEntry",
    "BlockList",
    "BlockListError",
    "Comparison",
    "Review",
    "SampleSizeWarning",
    "WorklistError",
    "audit",
    "audit_report",
    "carried_by_one_code",
    "compare",
    "compare_report",
    "default_block_list",
    "drg_points",
    "error_drgs",
    "icd10_chapter",
    "indicators",
    "layered_block_list",
    "load_block_list",
    "read_worklist",
    "review_sample",
    "sensitivity",
    "write_worklist",
    "write_xlsx",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "audit": "nordgroup.review.findings",
        "audit_report": "nordgroup.review.report",
        "BlockEntry": "nordgroup.review.blocklist",
        "BlockList": "nordgroup.review.blocklist",
        "BlockListError": "nordgroup.review.blocklist",
        "carried_by_one_code": "nordgroup.review.code_sensitivity",
        "CHANGES": "nordgroup.review.code_sensitivity",
        "compare": "nordgroup.review.comparison",
        "compare_report": "nordgroup.review.comparison_report",
        "Comparison": "nordgroup.review.comparison",
        "default_block_list": "nordgroup.review.blocklist",
        "DEFAULT_BY": "nordgroup.review.comparison",
        "drg_points": "nordgroup.review.findings",
        "error_drgs": "nordgroup.review.kinds",
        "FINDING_KINDS": "nordgroup.review.kinds",
        "FINDING_SCHEMA": "nordgroup.review.kinds",
        "icd10_chapter": "nordgroup.review._agreement",
        "indicators": "nordgroup.review.unit_indicators",
        "layered_block_list": "nordgroup.review.blocklist",
        "load_block_list": "nordgroup.review.blocklist",
        "METRICS": "nordgroup.review._agreement",
        "MIN_EPISODES": "nordgroup.review._agreement",
        "read_worklist": "nordgroup.review.worklist",
        "Review": "nordgroup.review.worklist",
        "review_sample": "nordgroup.review.sample",
        "SampleSizeWarning": "nordgroup.review.sample",
        "sensitivity": "nordgroup.review.code_sensitivity",
        "SENSITIVITY_SCHEMA": "nordgroup.review.code_sensitivity",
        "STRATUM_NAMES": "nordgroup.review.sample",
        "TOO_FEW": "nordgroup.review._agreement",
        "VERDICTS": "nordgroup.review.worklist",
        "WorklistError": "nordgroup.review.worklist",
        "write_worklist": "nordgroup.review.worklist",
        "write_xlsx": "nordgroup.review.worklist",
    },
)
