"""`Grouper`: the public face of grouping — validate, encode, run the kernel, wrap the result.

Results are Arrow tables with one row per input row, in input order: the episode id first, then
the caller's extra columns untouched (one named like a result column gets the prefix `input_`),
then `drg`, `rtc`, `rule`, `mdc` (of the DRG), `cc_level`,
`principal_mdc`, `flags` (a bit mask, see `encode.FLAG_NAMES`) and `notes` (the flags in words).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from nordgroup.engine import kernel as _kernel
from nordgroup.engine.compile import CompiledTables, compile_tables
from nordgroup.engine.encode import FLAG_NAMES, FLAG_UNKNOWN_PRINCIPAL, EncodedEpisodes, encode_episodes
from nordgroup.engine.reference import UNGROUPABLE_RTC, UNKNOWN_PRINCIPAL_RTC
from nordgroup.episodes.dataframes import arrow_batches, arrow_table
from nordgroup.episodes.layouts import CANONICAL_COLUMNS, EPISODE_SCHEMA, to_canonical
from nordgroup.tables.load import default_cache_dir
from nordgroup.tables.model import DrgTables

__all__ = ["NO_RULE_RTC", "RESULT_COLUMNS", "Grouper", "describe_flags"]

#: rtc of an episode no rule matches (the tables end with a catch-all rule, so this is rare).
NO_RULE_RTC = UNGROUPABLE_RTC
RESULT_COLUMNS = ("drg", "rtc", "rule", "mdc", "cc_level", "principal_mdc", "flags", "notes")


class Grouper:
    """Groups episodes with one release of the tables.

    >>> grouper = Grouper(tables)              # doctest: +SKIP
    >>> result = grouper.group(episodes)       # doctest: +SKIP
    """

    def __init__(self, tables: DrgTables, *, cache: bool = True, compiled: CompiledTables | None = None):
        self.tables = tables
        self.compiled = compiled or compile_tables(tables, cache_dir=default_cache_dir() if cache else None)
        rules = tables.rules
        self._rule_drg = pa.array([rule.drg for rule in rules] + [None], pa.string())
        # after the rules' own: no rule matched, and the rtc of an unknown principal diagnosis
        self._rule_rtc = pa.array([rule.rtc for rule in rules] + [NO_RULE_RTC, UNKNOWN_PRINCIPAL_RTC], pa.string())
        self._rule_id = pa.array([rule.id for rule in rules] + [None], pa.string())
        self._rule_mdc = pa.array(
            [tables.drgs[rule.drg].mdc if rule.drg in tables.drgs else None for rule in rules] + [None], pa.string()
        )
        self._mdc_values = pa.array([*self.compiled.mdc_values, None], pa.string())
        self._rule_without_principal = np.array([rule.icd == "-" for rule in rules] + [False])

    def __repr__(self) -> str:
        return f"<Grouper {self.tables.release.label}>"

    def group(self, episodes: Any, *, parallel: bool = True) -> pa.Table:
        """Group a batch of canonical episodes (see `nordgroup.episodes`): a pyarrow Table or
        RecordBatch, or any dataframe exporting the Arrow stream interface (pandas, polars, DuckDB)."""
        table = to_canonical(arrow_table(episodes))
        encoded = encode_episodes(table, self.compiled)
        rule, cc, mdc, _ = _kernel.group_encoded(encoded.kernel_arrays(), self.compiled, encoded.n, parallel=parallel)
        return self._result(table, encoded, rule, cc, mdc)

    def prepare(self) -> _kernel.KernelPreparation:
        """Get the kernel's machine code ready (compiled on a process's first call, else from the
        cache) and say how long it took, so that a caller can time grouping without it."""
        empty = encode_episodes(to_canonical(EPISODE_SCHEMA.empty_table()), self.compiled)
        return _kernel.prepare(empty.kernel_arrays(), self.compiled)

    def explain(self, episode, *, weights=None):
        """Why `episode` (a canonical row dict, one-row table or reference `Episode`) gets its DRG."""
        from nordgroup.engine.explain import explain_episode

        return explain_episode(self.tables, episode, weights=weights)

    def group_batches(self, batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader | Any) -> Iterator[pa.Table]:
        """Group a stream of batches, yielding one result table per batch (memory stays bounded).

        `batches` is an iterable of batches or anything exporting the Arrow stream interface (a
        reader, a DuckDB relation, a polars or pandas frame), read one batch at a time."""
        for batch in arrow_batches(batches):
            yield self.group(batch)

    def _result(self, table: pa.Table, encoded: EncodedEpisodes, rule, cc, mdc) -> pa.Table:
        n_rules = len(self.tables.rules)
        take = np.where(rule < 0, n_rules, rule)
        indices = pa.array(take)
        unknown_principal = ((encoded.flags & FLAG_UNKNOWN_PRINCIPAL) != 0) & self._rule_without_principal[take]
        rtc = self._rule_rtc.take(pa.array(np.where(unknown_principal, n_rules + 1, take)))
        mdc_index = np.where(mdc < 0, len(self._mdc_values) - 1, mdc)
        columns = {"episode_id": table.column("episode_id")}
        for name in table.column_names:
            if name not in CANONICAL_COLUMNS:
                # an input column named like a result column (a reported `drg`) keeps its data
                columns[f"input_{name}" if name in RESULT_COLUMNS else name] = table.column(name)
        columns.update(
            drg=self._rule_drg.take(indices),
            rtc=rtc,
            rule=self._rule_id.take(indices),
            mdc=self._rule_mdc.take(indices),
            cc_level=pa.array(cc),
            principal_mdc=self._mdc_values.take(pa.array(mdc_index)),
            flags=pa.array(encoded.flags),
            notes=_notes(encoded.flags),
        )
        return pa.table(columns)


def describe_flags(flags: int) -> str:
    """The per-row `flags` bit mask in words."""
    return "; ".join(name for bit, name in FLAG_NAMES.items() if flags & bit)


def _notes(flags: np.ndarray) -> pa.DictionaryArray:
    # Few distinct flag combinations exist, so the words are built once per combination.
    values = np.flatnonzero(np.bincount(flags, minlength=1))
    index_of_value = np.zeros(256, np.int32)  # flags are uint8
    index_of_value[values] = np.arange(len(values), dtype=np.int32)
    words = pa.array([describe_flags(int(v)) for v in values], pa.string())
    # rows without flags get a null note (not an empty string in the dictionary: Parquet refuses nulls there)
    return pa.DictionaryArray.from_arrays(pa.array(index_of_value[flags], mask=flags == 0), words)
