"""Encoding canonical Arrow episodes into the integer arrays the kernel reads.

Codes repeat: a year of episodes uses a few tens of thousands of distinct codes. So each list
column is dictionary-encoded once by Arrow (in C++), each *distinct* written code is cleaned and
looked up in Python, and the per-element rows are gathered with one numpy `take`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.compile import NONE, CompiledTables, diagnosis_rows
from nordgroup.episodes import clean_written_code, split_written_diagnosis

__all__ = ["MISSING", "EncodedEpisodes", "encode_episodes"]

MISSING = np.iinfo(np.int32).min  # an unknown age or duration
_DISCHARGE = {"E": 1, "N": 2, "H": 2, "R": 3}

# Per-row flags (a bit each) returned in the `flags` result column.
FLAG_UNKNOWN_PRINCIPAL = 1
FLAG_UNKNOWN_SECONDARY = 2
FLAG_UNKNOWN_PROCEDURE = 4
FLAG_MISSING_AGE = 8
FLAG_MISSING_DURATION = 16
FLAG_MISSING_SEX = 32
FLAG_CODE_CLEANED = 64
FLAG_NAMES = {
    FLAG_UNKNOWN_PRINCIPAL: "unknown principal diagnosis",
    FLAG_UNKNOWN_SECONDARY: "unknown secondary diagnosis",
    FLAG_UNKNOWN_PROCEDURE: "unknown procedure",
    FLAG_MISSING_AGE: "age missing or not a number",
    FLAG_MISSING_DURATION: "duration missing or not a number",
    FLAG_MISSING_SEX: "sex missing",
    FLAG_CODE_CLEANED: "codes cleaned (dots, case, spaces or marks)",
}


@frozen(eq=False)
class EncodedEpisodes:
    """One batch as kernel arrays, plus what encoding noticed."""

    n: int
    has_principal: np.ndarray  # bool
    sex: np.ndarray  # int8: 0 unknown, 1, 2
    age: np.ndarray  # int32, MISSING when unknown
    duration: np.ndarray  # int32, MISSING when unknown
    discharge: np.ndarray  # int8: 0 unknown, 1 E, 2 N, 3 R
    dx_offsets: np.ndarray  # int64 [n + 1]
    dx_rows: np.ndarray  # int32 [elements, 3]: pair, asterisk or single code, dagger
    proc_offsets: np.ndarray
    proc_rows: np.ndarray  # int32 [elements]
    flags: np.ndarray  # uint8 per row
    codes_cleaned: int  # how many written codes cleaning changed

    def kernel_arrays(self) -> tuple:
        return (
            self.has_principal, self.sex, self.age, self.duration, self.discharge, self.dx_offsets,
            self.dx_rows, self.proc_offsets, self.proc_rows, MISSING,
        )  # fmt: skip


def _offsets(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    if array.offset or not isinstance(array, pa.ListArray):
        array = pa.concat_arrays([array.cast(pa.list_(pa.string()))])
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0])
    return offsets - offsets[0], values


def _distinct(values: pa.Array) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(pc.fill_null(values, ""))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _integers(column: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(column, MISSING).to_numpy().astype(np.int32)


def encode_episodes(table: pa.Table, compiled: CompiledTables) -> EncodedEpisodes:
    """Encode a canonical table (see `episodes.py`) for the kernel."""
    n = len(table)
    flags = np.zeros(n, np.uint8)

    dx_offsets, dx_values = _offsets(table.column("diagnoses"))
    indices, distinct = _distinct(dx_values)
    distinct_rows = np.full((len(distinct) + 1, 3), NONE, np.int32)
    distinct_known = np.zeros(len(distinct) + 1, np.bool_)
    distinct_cleaned = np.zeros(len(distinct) + 1, np.bool_)
    distinct_blank = np.ones(len(distinct) + 1, np.bool_)  # nothing left after cleaning (`""`, `*`)
    for position, text in enumerate(distinct):
        dagger, asterisk, changed = split_written_diagnosis(text)
        distinct_blank[position] = not (dagger or asterisk)
        rows = diagnosis_rows(compiled, dagger, asterisk)
        distinct_rows[position] = rows
        distinct_known[position] = any(row >= 0 and compiled.key_known[row] for row in rows)
        distinct_cleaned[position] = changed
    dx_rows = distinct_rows[indices]
    element_known = distinct_known[indices]
    element_blank = distinct_blank[indices]
    counts = np.diff(dx_offsets)
    first = dx_offsets[:-1]
    has_principal = counts > 0
    has_principal[has_principal] = ~element_blank[first[has_principal]]
    principal_unknown = has_principal.copy()
    principal_unknown[has_principal] = ~element_known[first[has_principal]]
    flags[principal_unknown] |= FLAG_UNKNOWN_PRINCIPAL
    row_of_element = np.repeat(np.arange(n), counts)
    secondary = np.ones(len(indices), np.bool_)
    secondary[first[has_principal | (counts > 0)]] = False
    unknown_secondary = secondary & ~element_known & ~element_blank
    flags[np.unique(row_of_element[unknown_secondary])] |= FLAG_UNKNOWN_SECONDARY
    cleaned_elements = distinct_cleaned[indices]
    flags[np.unique(row_of_element[cleaned_elements])] |= FLAG_CODE_CLEANED

    proc_offsets, proc_values = _offsets(table.column("procedures"))
    indices, distinct = _distinct(proc_values)
    cleaned = [clean_written_code(text) for text in distinct]
    distinct_rows = np.array([compiled.procedure_index.get(c.cleaned, NONE) for c in cleaned] + [NONE], np.int32)
    proc_rows = distinct_rows[indices]
    proc_counts = np.diff(proc_offsets)
    proc_row_of_element = np.repeat(np.arange(n), proc_counts)
    blank = np.array([c.cleaned == "" for c in cleaned] + [True], np.bool_)[indices]
    flags[np.unique(proc_row_of_element[(proc_rows < 0) & ~blank])] |= FLAG_UNKNOWN_PROCEDURE
    proc_changed = np.array([c.changed for c in cleaned] + [False], np.bool_)[indices]
    flags[np.unique(proc_row_of_element[proc_changed])] |= FLAG_CODE_CLEANED

    sex = pc.fill_null(table.column("sex"), 0).to_numpy().astype(np.int8)
    sex[(sex != 1) & (sex != 2)] = 0
    age = _integers(table.column("age_days"))
    duration = _integers(table.column("duration_days"))
    discharge_text = pc.fill_null(table.column("discharge"), "")
    discharge_index, discharge_values = _distinct(discharge_text.combine_chunks())
    discharge = np.array([_DISCHARGE.get(v, 0) for v in discharge_values] + [0], np.int8)[discharge_index]
    flags[age == MISSING] |= FLAG_MISSING_AGE
    flags[duration == MISSING] |= FLAG_MISSING_DURATION
    flags[sex == 0] |= FLAG_MISSING_SEX
    return EncodedEpisodes(
        n=n,
        has_principal=has_principal,
        sex=sex,
        age=age,
        duration=duration,
        discharge=discharge,
        dx_offsets=dx_offsets,
        dx_rows=np.ascontiguousarray(dx_rows),
        proc_offsets=proc_offsets,
        proc_rows=proc_rows,
        flags=flags,
        codes_cleaned=int(cleaned_elements.sum() + proc_changed.sum()),
    )
