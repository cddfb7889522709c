"""Test helpers: canonical Arrow episodes as reference-grouper `Episode` objects."""

from __future__ import annotations

import pyarrow as pa

from nordgroup.episodes import clean_written_code, split_written_diagnosis
from nordgroup.reference import Episode


def reference_episodes(table: pa.Table) -> list[Episode]:
    """The same episodes the kernel sees, as the reference grouper reads them."""
    episodes = []
    for row in table.select(["sex", "age_days", "duration_days", "discharge", "diagnoses", "procedures"]).to_pylist():
        written = [split_written_diagnosis(text)[:2] for text in row["diagnoses"] or []]
        procedures = tuple(clean_written_code(text).cleaned for text in row["procedures"] or [])
        episodes.append(
            Episode(
                diagnoses=tuple(written),
                procedures=tuple(code for code in procedures if code),
                sex=row["sex"],
                age_days=row["age_days"],
                duration_days=row["duration_days"],
                discharge=row["discharge"],
            )
        )
    return episodes
