"""Hypothesis strategies: episodes built from the codes of real tables, written as people write them."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import strategies as st

from nordgroup.episodes.layouts import EPISODE_SCHEMA
from nordgroup.tables.model import DrgTables


def written_code(code: str) -> st.SearchStrategy[str]:
    """A code as it arrives in the wild: as is, with a dot, lower case or padded."""
    dotted = code[:3] + "." + code[3:] if len(code) > 3 else code
    return st.sampled_from([code, code, dotted, code.lower(), f" {code} "])


def episodes(tables: DrgTables, *, max_size: int = 40) -> st.SearchStrategy[pa.Table]:
    """Canonical episode tables mixing known, unknown and paired codes and edge-case numbers."""
    keys = sorted(tables.diagnoses)
    singles = [code for code, dagger in keys if not dagger]
    pairs = [f"{dagger} {code}" for code, dagger in keys if dagger]
    procedures = sorted(tables.procedures)
    limits = sorted({rule.agelim.days for rule in tables.rules if rule.agelim} | {0, 1, 28, 29, 6574, 6575})
    diagnosis = st.one_of(
        st.sampled_from(singles).flatmap(written_code),
        st.sampled_from(pairs or singles),
        st.sampled_from(["", "XX999", "I21.0†", "*"]),
    )
    number = st.one_of(st.none(), st.integers(-1, 40), st.sampled_from(limits), st.integers(0, 40_000))
    episode = st.fixed_dictionaries(
        {
            "sex": st.sampled_from([1, 2, None, 1, 2]),
            "age_days": number,
            "duration_days": st.one_of(st.none(), st.integers(-1, 12)),
            "discharge": st.sampled_from(["N", "E", "R", "H", None]),
            "diagnoses": st.lists(diagnosis, max_size=8),
            "procedures": st.lists(st.one_of(st.sampled_from(procedures), st.just("ZZZ99")), max_size=6),
        }
    )

    def table(rows: list[dict]) -> pa.Table:
        columns = {name: [row.get(name) for row in rows] for name in EPISODE_SCHEMA.names if name != "episode_id"}
        return pa.table(
            {
                "episode_id": pa.array([f"id-{i}" for i in range(len(rows))]),
                **{name: pa.array(values, EPISODE_SCHEMA.field(name).type) for name, values in columns.items()},
                "ward": pa.array([i % 3 for i in range(len(rows))], pa.int64()),
            }
        )

    return st.lists(episode, min_size=1, max_size=max_size).map(table)
