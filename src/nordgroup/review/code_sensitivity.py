"""Which written codes carry the DRG: per episode, each secondary diagnosis or procedure whose
removal changes the DRG, and each swap of the principal diagnosis with a secondary one that does.

This is what a reviewer checks first: a DRG that hangs on one code. The principal diagnosis is not
removed (without it every episode falls to an error DRG); its choice is tested by the swaps. All
variants of a batch (the episode as written, each removal, each swap) are built as one canonical
Arrow table by numpy gathers on the flat list columns and grouped in one `Grouper.group` call, so
the compiled kernel does the work and no Python runs per variant. DRGs are compared as `money`
matches them (`drg_keys`), points come from `money.price_episodes`.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.engine.grouper import Grouper
from nordgroup.episodes.layouts import to_canonical
from nordgroup.money.financing import Financing
from nordgroup.money.pricing import drg_keys, price_episodes
from nordgroup.money.weights import WeightTable, load_weights
from nordgroup.review._columns import list_offsets

__all__ = ["CHANGES", "SENSITIVITY_SCHEMA", "carried_by_one_code", "sensitivity"]

#: change -> what was done to the episode.
CHANGES = {
    "remove_secondary": "the secondary diagnosis at `position` removed",
    "remove_procedure": "the procedure at `position` removed",
    "swap_principal": "the principal diagnosis swapped with the secondary diagnosis at `position`",
}
_ORIGINAL, _REMOVE_SECONDARY, _REMOVE_PROCEDURE, _SWAP = -1, 0, 1, 2
_CHANGE_NAMES = tuple(CHANGES)

SENSITIVITY_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),  # position of the episode in the input
        ("episode_id", pa.string()),
        ("change", pa.string()),  # a key of CHANGES
        ("position", pa.int32()),  # index in `diagnoses` (secondary: 1, 2, ...) or `procedures` (0, 1, ...)
        ("code", pa.string()),  # the code removed, or swapped into the principal position, as written
        ("drg", pa.string()),  # the DRG as written
        ("drg_after", pa.string()),  # the DRG after the change
        ("points", pa.float64()),  # null without weights, or when the weight table lacks the DRG
        ("points_after", pa.float64()),
        ("points_difference", pa.float64()),  # points_after - points
    ]
)
_POINTS_ONLY = Financing(price_per_point=1.0, activity_share=1.0, description="points only")


def sensitivity(
    episodes: pa.Table,
    grouper: Grouper,
    *,
    weights: WeightTable | str | os.PathLike[str] | None = None,
    batch_size: int = 100_000,
    progress: bool = False,
) -> pa.Table:
    """Every change of one written code that changes an episode's DRG (see `SENSITIVITY_SCHEMA`).

    Rows come in episode order, then removals of secondary diagnoses, of procedures and swaps.
    `weights` (a `WeightTable` or a path) gives the points difference. `batch_size` episodes are
    expanded and grouped at a time (about four variants each), so memory stays bounded.
    """
    if isinstance(weights, str | os.PathLike):
        weights = load_weights(weights)
    table = to_canonical(episodes)
    parts = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(table), unit=" episodes", unit_scale=True, file=sys.stderr, desc="sensitivity")
    for start in range(0, len(table), batch_size):
        parts.append(_batch(table.slice(start, batch_size), start, grouper, weights))
        if bar is not None:
            bar.update(min(batch_size, len(table) - start))
    if bar is not None:
        bar.close()
    return pa.concat_tables(parts) if parts else SENSITIVITY_SCHEMA.empty_table()


def carried_by_one_code(changes: pa.Table, n: int) -> np.ndarray:
    """Per episode of `n`, whether removing one written code changes its DRG: the audit's risk factor."""
    removal = pc.not_equal(changes.column("change"), "swap_principal")
    rows = changes.column("row").filter(removal).to_numpy()
    return np.bincount(rows, minlength=n) > 0


def _local(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c - 1 for each count c, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _variant_lists(
    offsets: np.ndarray, values: pa.Array, source: np.ndarray, kind: np.ndarray, position: np.ndarray, removes: int
) -> pa.ListArray:
    """Each variant's list: its source episode's list, without the element at `position` when the
    variant's kind is `removes`, with elements 0 and `position` swapped when it is `_SWAP`."""
    length = np.diff(offsets)[source]
    variant = np.repeat(np.arange(len(source)), length)
    local = _local(length)
    at_position = local == position[variant]
    mapped = local.copy()
    if removes == _REMOVE_SECONDARY:  # diagnoses are the lists that swaps reorder
        swapped = kind[variant] == _SWAP
        mapped[swapped & (local == 0)] = position[variant][swapped & (local == 0)]
        mapped[swapped & at_position] = 0
    keep = ~(at_position & (kind[variant] == removes))
    gather = (offsets[:-1][source][variant] + mapped)[keep]
    new_length = length - (kind == removes)
    new_offsets = np.concatenate([[0], np.cumsum(new_length)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(new_offsets), values.take(pa.array(gather)))


def _batch(table: pa.Table, start: int, grouper: Grouper, weights: WeightTable | None) -> pa.Table:
    n = len(table)
    dx_offsets, dx_values = list_offsets(table.column("diagnoses"))
    proc_offsets, proc_values = list_offsets(table.column("procedures"))
    secondaries = np.maximum(np.diff(dx_offsets) - 1, 0)
    procedures = np.diff(proc_offsets)
    episode = np.arange(n)
    source = np.concatenate(
        [episode, np.repeat(episode, secondaries), np.repeat(episode, procedures), np.repeat(episode, secondaries)]
    )
    kind = np.concatenate(
        [
            np.full(n, _ORIGINAL),
            np.full(int(secondaries.sum()), _REMOVE_SECONDARY),
            np.full(int(procedures.sum()), _REMOVE_PROCEDURE),
            np.full(int(secondaries.sum()), _SWAP),
        ]
    )
    position = np.concatenate(
        [np.full(n, -1), _local(secondaries) + 1, _local(procedures), _local(secondaries) + 1]
    ).astype(np.int64)
    taken = pa.array(source)
    variants = pa.table(
        {
            "episode_id": taken,
            **{name: table.column(name).take(taken) for name in ("sex", "age_days", "duration_days", "discharge")},
            "diagnoses": _variant_lists(dx_offsets, dx_values, source, kind, position, _REMOVE_SECONDARY),
            "procedures": _variant_lists(proc_offsets, proc_values, source, kind, position, _REMOVE_PROCEDURE),
        }
    )
    grouped = grouper.group(variants)
    keys = drg_keys(grouped.column("drg")).to_numpy(zero_copy_only=False)
    before = keys[source]
    changed = np.flatnonzero((kind != _ORIGINAL) & (keys != before))
    changed = changed[np.lexsort((position[changed], kind[changed], source[changed]))]
    if weights is None:
        points = np.full(len(source), np.nan)
    else:
        priced = price_episodes(grouped, weights, _POINTS_ONLY, duration_days=variants.column("duration_days"))
        points = pc.fill_null(priced.column("points"), np.nan).to_numpy(zero_copy_only=False)
    row = source[changed]
    is_procedure = kind[changed] == _REMOVE_PROCEDURE
    element = np.where(is_procedure, proc_offsets[:-1][row], dx_offsets[:-1][row]) + position[changed]
    code = pc.if_else(
        pa.array(is_procedure),
        proc_values.take(pa.array(np.where(is_procedure, element, 0)))
        if len(proc_values)
        else pa.nulls(len(row), pa.string()),
        dx_values.take(pa.array(np.where(is_procedure, 0, element)))
        if len(dx_values)
        else pa.nulls(len(row), pa.string()),
    )
    drg = grouped.column("drg")
    points_before, points_after = points[row], points[changed]
    return pa.table(
        {
            "row": pa.array(row + start, pa.int64()),
            "episode_id": pc.cast(table.column("episode_id"), pa.string()).take(pa.array(row)),
            "change": pa.array(np.array(_CHANGE_NAMES, dtype=object)[kind[changed]], pa.string()),
            "position": pa.array(position[changed], pa.int32()),
            "code": code,
            "drg": drg.take(pa.array(row)),
            "drg_after": drg.take(pa.array(changed)),
            "points": pa.array(points_before, pa.float64(), from_pandas=True),
            "points_after": pa.array(points_after, pa.float64(), from_pandas=True),
            "points_difference": pa.array(points_after - points_before, pa.float64(), from_pandas=True),
        },
        schema=SENSITIVITY_SCHEMA,
    )
