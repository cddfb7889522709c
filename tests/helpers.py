"""Test helpers: canonical Arrow episodes as reference-grouper `Episode` objects."""

from __future__ import annotations

import pyarrow as pa

from nordgroup.engine.explain import episode_from_row
from nordgroup.engine.reference import Episode


def reference_episodes(table: pa.Table) -> list[Episode]:
    """The same episodes the kernel sees, cleaned as the grouper cleans them."""
    return [episode_from_row(row) for row in table.to_pylist()]
