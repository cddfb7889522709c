"""Encoding canonical Arrow episodes into the integer arrays the kernel reads.

Most written codes are clean and known, so each list column is first looked up whole in the
tables' codes by Arrow (in C++); so are codes that differ from the tables' only by case and
unmarked dagger-first pairs. Only the rest (marks, dots, blanks, unknown codes) goes the
readable way: dictionary-encoded, each *distinct* writing cleaned and looked up in Python once,
the result gathered back with one numpy `take`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup._memo import per_object
from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.engine.compile import NONE, CompiledTables, diagnosis_rows
from nordgroup.episodes.layouts import PROBLEM_COLUMN
from nordgroup.tables.model import NO_DAGGER

__all__ = ["MISSING", "EncodedEpisodes", "encode_episodes"]

MISSING = np.iinfo(np.int32).min  # an unknown age or duration
_DISCHARGE = {"E": 1, "N": 2, "H": 2, "R": 3}
_DISCHARGE_OF_BYTE = np.zeros(256, np.int8)  # the one-letter values, by their byte
_DISCHARGE_OF_BYTE[[ord(letter) for letter in _DISCHARGE]] = list(_DISCHARGE.values())

# Per-row flags (a bit each) returned in the `flags` result column.
FLAG_UNKNOWN_PRINCIPAL = 1
FLAG_UNKNOWN_SECONDARY = 2
FLAG_UNKNOWN_PROCEDURE = 4
FLAG_MISSING_AGE = 8
FLAG_MISSING_DURATION = 16
FLAG_MISSING_SEX = 32
FLAG_CODE_CLEANED = 64
FLAG_UNREADABLE_LINE = 128
FLAG_NAMES = {
    FLAG_UNKNOWN_PRINCIPAL: "unknown principal diagnosis",
    FLAG_UNKNOWN_SECONDARY: "unknown secondary diagnosis",
    FLAG_UNKNOWN_PROCEDURE: "unknown procedure",
    FLAG_MISSING_AGE: "age missing or not a number",
    FLAG_MISSING_DURATION: "duration missing or not a number",
    FLAG_MISSING_SEX: "sex missing",
    FLAG_CODE_CLEANED: "codes cleaned (dots, case, spaces or marks)",
    FLAG_UNREADABLE_LINE: f"input line not fully read (see {PROBLEM_COLUMN})",
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
    if isinstance(column, pa.ChunkedArray):  # one chunk needs no copy
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    if array.offset or not isinstance(array, pa.ListArray):
        array = pa.concat_arrays([array.cast(pa.list_(pa.string()))])
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0])
    return offsets - offsets[0], values


def _distinct(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    encoded = pc.dictionary_encode(pc.fill_null(values, ""))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _rows_with(offsets: np.ndarray, element_mask: np.ndarray) -> np.ndarray:
    """Which rows (elements `offsets[i]:offsets[i + 1]`) hold at least one element in the mask:
    one running count, read at both ends of each row (a third of `reduceat`'s time)."""
    if not element_mask.any():
        return np.zeros(len(offsets) - 1, np.bool_)
    seen = np.zeros(len(element_mask) + 1, np.int32)  # a batch holds fewer than 2**31 codes
    np.cumsum(element_mask, dtype=np.int32, out=seen[1:])
    return seen[offsets[1:]] > seen[offsets[:-1]]


def _flag(flags: np.ndarray, rows: np.ndarray, bit: int) -> None:
    np.bitwise_or(flags, np.uint8(bit), out=flags, where=rows)


class _CodeLookup:
    """The tables' single codes as Arrow arrays, so already clean codes are looked up in C++.

    Each row array ends with NONE, the row of "not among the codes" (see `_positions`)."""

    def __init__(self, compiled: CompiledTables) -> None:
        singles = [(code, row) for (code, dagger), row in compiled.diagnosis_index.items() if dagger == NO_DAGGER]
        self.diagnosis_codes = pa.array([code for code, _ in singles], pa.string())
        self.diagnosis_rows = np.array([row for _, row in singles] + [NONE], np.int32)
        self.diagnosis_known = np.append(compiled.key_known[self.diagnosis_rows[:-1]], False)
        pairs = [(f"{dagger} {code}", row) for (code, dagger), row in compiled.diagnosis_index.items() if dagger]
        self.pair_codes = pa.array([written for written, _ in pairs], pa.string())
        self.pair_rows = np.array([row for _, row in pairs] + [NONE], np.int32)
        self.procedure_codes = pa.array(list(compiled.procedure_index), pa.string())
        self.procedure_rows = np.array([*compiled.procedure_index.values(), NONE], np.int32)


_lookup = per_object(_CodeLookup)


def _positions(values: pa.Array, codes: pa.Array) -> np.ndarray:
    """Where each element is written exactly as one of `codes` (a clean code: looked up in C++);
    `len(codes)` for the others, so that a row array ending with NONE gathers every element's row."""
    position = pc.fill_null(pc.index_in(values, value_set=codes), len(codes))
    return position.to_numpy(zero_copy_only=False)


def _diagnosis_rows(values: pa.Array, compiled: CompiledTables):
    """Per written diagnosis: its key rows (pair, asterisk or single, dagger), whether any is known,
    whether cleaning changed it, whether nothing was left (`""`, `*`)."""
    lookup = _lookup(compiled)
    position = _positions(values, lookup.diagnosis_codes)
    rows = np.full((len(values), 3), NONE, np.int32)
    rows[:, 1] = lookup.diagnosis_rows[position]
    known = lookup.diagnosis_known[position]
    cleaned = np.zeros(len(values), np.bool_)
    blank = np.zeros(len(values), np.bool_)
    # the rest (case, pairs, marks, dots, blanks, unknown codes) once per distinct writing: a
    # batch's unclean writings repeat (`i10`, `E830 F028`), so this is a small share of its codes
    rest = np.flatnonzero(position == len(lookup.diagnosis_codes))
    if len(rest):
        indices, distinct = _distinct(values.take(rest))
        distinct_rows, distinct_cleaned, distinct_blank = _written_diagnoses(distinct, compiled, lookup)
        distinct_known = ((distinct_rows >= 0) & compiled.key_known[np.maximum(distinct_rows, 0)]).any(1)
        rows[rest] = distinct_rows[indices]
        known[rest] = distinct_known[indices]
        cleaned[rest] = distinct_cleaned[indices]
        blank[rest] = distinct_blank[indices]
    return rows, known, cleaned, blank


def _written_diagnoses(distinct: pa.Array, compiled: CompiledTables, lookup: _CodeLookup):
    """Key rows, cleaned and blank for distinct writings that are not a clean code as written."""
    # codes that differ only by case, and unmarked pairs (`E830 F028`, dagger first, as the
    # Norwegian strings write them), in C++: what `split_written_diagnosis` makes of them
    handled, rows, cleaned = _plain_writings(distinct, lookup)
    blank = np.zeros(len(distinct), np.bool_)
    # the rest (marks, dots, blanks, unknown codes) the readable way
    others = np.flatnonzero(~handled)
    for index, text in zip(others, distinct.take(others).to_pylist(), strict=True):
        dagger, asterisk, changed = split_written_diagnosis(text)
        rows[index] = diagnosis_rows(compiled, dagger, asterisk)
        cleaned[index] = changed
        blank[index] = not (dagger or asterisk)
    return rows, cleaned, blank


_SINGLE = r"^[0-9A-Za-z]+$"
_PAIR = r"^[0-9A-Za-z]+ [0-9A-Za-z]+$"


def _plain_writings(values: pa.Array, lookup: _CodeLookup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which writings are one code or a dagger-first pair of codes, letters and digits only (so
    that cleaning can change their case alone), their key rows, and whether the case changed."""
    upper = pc.utf8_upper(values)
    single = pc.fill_null(pc.match_substring_regex(values, _SINGLE), False).to_numpy(zero_copy_only=False)
    pair = pc.fill_null(pc.match_substring_regex(values, _PAIR), False).to_numpy(zero_copy_only=False)
    rows = np.full((len(values), 3), NONE, np.int32)
    code_rows = lookup.diagnosis_rows[_positions(pc.replace_substring_regex(upper, " .*$", ""), lookup.diagnosis_codes)]
    rows[single, 1] = code_rows[single]
    rows[pair, 2] = code_rows[pair]
    asterisk = pc.replace_substring_regex(upper, "^.* ", "")
    rows[pair, 1] = lookup.diagnosis_rows[_positions(asterisk, lookup.diagnosis_codes)][pair]
    rows[pair, 0] = lookup.pair_rows[_positions(upper, lookup.pair_codes)][pair]
    changed = pc.fill_null(pc.not_equal(upper, values), False).to_numpy(zero_copy_only=False)
    return single | pair, rows, changed


def _procedure_rows(values: pa.Array, compiled: CompiledTables):
    """Per written procedure: its row (or NONE), whether cleaning changed it, whether blank."""
    lookup = _lookup(compiled)
    position = _positions(values, lookup.procedure_codes)
    rows = lookup.procedure_rows[position]
    cleaned = np.zeros(len(values), np.bool_)
    blank = np.zeros(len(values), np.bool_)
    rest = np.flatnonzero(position == len(lookup.procedure_codes))
    if len(rest):
        indices, distinct = _distinct(values.take(rest))
        cleanings = [clean_written_code(text) for text in distinct.to_pylist()]
        distinct_rows = np.array([compiled.procedure_index.get(c.cleaned, NONE) for c in cleanings], np.int32)
        rows[rest] = distinct_rows[indices]
        cleaned[rest] = np.array([c.changed for c in cleanings], np.bool_)[indices]
        blank[rest] = np.array([c.cleaned == "" for c in cleanings], np.bool_)[indices]
    return rows, cleaned, blank


def _discharge(column: pa.ChunkedArray) -> np.ndarray:
    """Discharge codes (0 unknown): only a one-letter value has one, read from its byte in the string data."""
    text = pc.fill_null(column, "").combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    one_letter = np.flatnonzero(np.diff(offsets) == 1)
    discharge = np.zeros(len(text), np.int8)
    if len(one_letter):
        data = np.frombuffer(text.buffers()[2], np.uint8)
        discharge[one_letter] = _DISCHARGE_OF_BYTE[data[offsets[one_letter]]]
    return discharge


def _integers(column: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(column, MISSING).to_numpy().astype(np.int32)


def encode_episodes(table: pa.Table, compiled: CompiledTables) -> EncodedEpisodes:
    """Encode a canonical table (see `episodes.py`) for the kernel."""
    n = len(table)
    flags = np.zeros(n, np.uint8)

    dx_offsets, dx_values = _offsets(table.column("diagnoses"))
    dx_rows, element_known, cleaned_elements, element_blank = _diagnosis_rows(dx_values, compiled)
    counts = np.diff(dx_offsets)
    first = dx_offsets[:-1]
    has_principal = counts > 0
    has_principal[has_principal] = ~element_blank[first[has_principal]]
    principal_unknown = has_principal.copy()
    principal_unknown[has_principal] = ~element_known[first[has_principal]]
    _flag(flags, principal_unknown, FLAG_UNKNOWN_PRINCIPAL)
    secondary = np.ones(len(dx_values), np.bool_)
    secondary[first[counts > 0]] = False
    unknown_secondary = secondary & ~element_known & ~element_blank
    _flag(flags, _rows_with(dx_offsets, unknown_secondary), FLAG_UNKNOWN_SECONDARY)
    _flag(flags, _rows_with(dx_offsets, cleaned_elements), FLAG_CODE_CLEANED)

    proc_offsets, proc_values = _offsets(table.column("procedures"))
    proc_rows, proc_changed, proc_blank = _procedure_rows(proc_values, compiled)
    _flag(flags, _rows_with(proc_offsets, (proc_rows < 0) & ~proc_blank), FLAG_UNKNOWN_PROCEDURE)
    _flag(flags, _rows_with(proc_offsets, proc_changed), FLAG_CODE_CLEANED)

    sex = pc.fill_null(table.column("sex"), 0).to_numpy().astype(np.int8)
    sex[(sex != 1) & (sex != 2)] = 0
    age = _integers(table.column("age_days"))
    duration = _integers(table.column("duration_days"))
    discharge = _discharge(table.column("discharge"))
    _flag(flags, age == MISSING, FLAG_MISSING_AGE)
    _flag(flags, duration == MISSING, FLAG_MISSING_DURATION)
    _flag(flags, sex == 0, FLAG_MISSING_SEX)
    if PROBLEM_COLUMN in table.column_names:  # the text readers' note on a line they could not read
        _flag(flags, pc.is_valid(table.column(PROBLEM_COLUMN)).to_numpy(zero_copy_only=False), FLAG_UNREADABLE_LINE)
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
