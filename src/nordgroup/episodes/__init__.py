"""Episodes as Arrow: the canonical schema, readers and writers of every layout, dataframes in, synthetic episodes.

`layouts` owns the schema and the readers; `_text` the byte-level parsing of text files (Numba);
`dataframes` any object with the Arrow stream interface; `synth` episodes drawn from a release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nordgroup._lazy import lazy_exports

if TYPE_CHECKING:
    from nordgroup.episodes.layouts import (
        CANONICAL_COLUMNS,
        DEFAULT_BATCH_SIZE,
        EPISODE_SCHEMA,
        LAYOUTS,
        PROBLEM_COLUMN,
        ResultWriter,
        episodes_from_records,
        iter_episodes,
        read_episodes,
        to_canonical,
        write_table,
    )
    from nordgroup.episodes.synth import recode, synthesize

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "EPISODE_SCHEMA",
    "LAYOUTS",
    "PROBLEM_COLUMN",
    "ResultWriter",
    "episodes_from_records",
    "iter_episodes",
    "read_episodes",
    "recode",
    "synthesize",
    "to_canonical",
    "write_table",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CANONICAL_COLUMNS": "nordgroup.episodes.layouts",
        "DEFAULT_BATCH_SIZE": "nordgroup.episodes.layouts",
        "EPISODE_SCHEMA": "nordgroup.episodes.layouts",
        "episodes_from_records": "nordgroup.episodes.layouts",
        "iter_episodes": "nordgroup.episodes.layouts",
        "LAYOUTS": "nordgroup.episodes.layouts",
        "PROBLEM_COLUMN": "nordgroup.episodes.layouts",
        "read_episodes": "nordgroup.episodes.layouts",
        "recode": "nordgroup.episodes.synth",
        "ResultWriter": "nordgroup.episodes.layouts",
        "synthesize": "nordgroup.episodes.synth",
        "to_canonical": "nordgroup.episodes.layouts",
        "write_table": "nordgroup.episodes.layouts",
    },
)
