"""Episode text files at the byte level: lines, their problems, and Norwegian episode strings.

Two Numba passes over raw bytes, each linear in the bytes of one batch and never building a grid
of every field: `scan_lines` finds the lines of a block and what makes one unreadable (invalid
UTF-8, a NUL byte, a quote left open, how many fields it has); `split_episode_strings` cuts
`sex,age,discharge,duration,,dg pairs...,procedures...` strings into the canonical columns.
Imported only when a text file is read, so grouping Arrow data never compiles these.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
from attrs import frozen

__all__ = [
    "READABLE",
    "STRING_FIELDS",
    "Lines",
    "first_line",
    "gather_lines",
    "parse_integers",
    "read_lines",
    "split_episode_strings",
]

# The state of a line after `scan_lines` (the first problem found wins, in this order).
READABLE, BLANK, NOT_UTF8, NUL_BYTE, OPEN_QUOTE = 0, 1, 2, 3, 4
NEWLINE = 10
#: The fields of a Norwegian episode string: sex, age, discharge, duration, an unused field,
#: 30 diagnosis pairs (dagger, asterisk), 100 procedures.
STRING_FIELDS = 165
_PAIRS_START, _PROCEDURES_START = 5, 65

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _blank(byte: int) -> bool:
    return byte == 32 or byte == 9 or byte == 13 or byte == 11 or byte == 12


@_jit
def scan_lines(data: np.ndarray, final: bool, delimiter: int, quote: int):
    """The lines of `data` (a `\\n` ends one; `\\r` before it is dropped): start and end of each,
    fields outside quotes, state; and where the bytes after the last whole line begin (`final`
    takes an unterminated last line as a line). `quote` < 0: quotes are plain text."""
    stop = len(data)
    breaks = 0
    for position in range(stop):  # vectorised by LLVM, as are the loops over a line's bytes below
        breaks += data[position] == NEWLINE
    ends = np.empty(breaks + 1, np.int64)
    n = 0
    for position in range(stop):
        if data[position] == NEWLINE:
            ends[n] = position
            n += 1
    rest = stop
    last_start = ends[n - 1] + 1 if n else 0
    if last_start < stop:
        if final:
            ends[n] = stop
            n += 1
        else:
            rest = last_start  # an incomplete last line waits for the next block
    ends = ends[:n]
    starts = np.empty(n, np.int64)
    fields = np.empty(n, np.int32)
    state = np.empty(n, np.int8)
    # narrow types and no table lookup, so that LLVM vectorises the loop over a line's bytes
    delimiter_byte = np.uint8(delimiter)
    quote_byte = np.uint8(quote if quote >= 0 else delimiter)
    start = 0
    for line in range(n):
        end = ends[line]
        starts[line] = start
        if end > start and data[end - 1] == 13:
            ends[line] = end - 1
        delimiters = np.uint32(0)
        odd = np.uint8(0)  # a byte that needs the full scan: control or non-ASCII, or the quote
        for position in range(start, ends[line]):
            byte = data[position]
            is_delimiter = byte == delimiter_byte
            delimiters += np.uint32(is_delimiter)
            odd |= np.uint8(((byte < np.uint8(33)) | (byte > np.uint8(127)) | (byte == quote_byte)) & ~is_delimiter)
        count = delimiters + 1
        if odd:
            count, state[line] = _scan_line(data, start, ends[line], delimiter, quote)
        else:  # printable ASCII and delimiters
            state[line] = BLANK if ends[line] == start else READABLE
        fields[line] = count
        start = end + 1
    return starts, ends, fields, state, rest


@_jit
def _scan_line(data: np.ndarray, start: int, end: int, delimiter: int, quote: int):
    """Fields outside quotes and state of the line `data[start:end]` that is not plain ASCII."""
    count = 1
    blank = True
    bad_utf8 = False
    nul = False
    in_quote = False
    field_start = True
    pending = 0
    position = start
    while position < end:
        byte = data[position]
        if byte < 0x80:
            if pending:  # a multi-byte UTF-8 character cut short
                bad_utf8 = True
                pending = 0
            if byte > 32:
                blank = False
            elif byte == 0:
                nul = True
            elif byte != 32 and (byte < 9 or byte > 13):
                blank = False
            # quotes as Arrow's CSV parser reads them: one opens only a field, `""` inside is a quote
            if in_quote:
                if byte == quote:
                    if position + 1 < end and data[position + 1] == quote:
                        position += 1
                    else:
                        in_quote = False
            elif byte == delimiter:
                count += 1
                blank = False  # a line of delimiters is a row of empty fields
                field_start = True
            elif byte == quote and field_start:
                in_quote = True
                field_start = False
            else:
                field_start = False
        else:
            blank = False
            field_start = False
            if pending:
                if byte & 0xC0 != 0x80:
                    bad_utf8 = True
                pending -= 1
            elif 0xC2 <= byte <= 0xDF:
                pending = 1
            elif 0xE0 <= byte <= 0xEF:
                pending = 2
            elif 0xF0 <= byte <= 0xF4:
                pending = 3
            else:
                bad_utf8 = True
        position += 1
    if bad_utf8 or pending:
        return count, NOT_UTF8
    if nul:
        return count, NUL_BYTE
    if in_quote:
        return count, OPEN_QUOTE
    if blank:
        return count, BLANK
    return count, READABLE


@_jit
def gather_lines(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The given lines one after another, each ending in `\\n`: the input of Arrow's CSV parser."""
    out = np.empty(int((ends - starts).sum()) + len(starts), np.uint8)
    at = 0
    for line in range(len(starts)):
        for position in range(starts[line], ends[line]):
            out[at] = data[position]
            at += 1
        out[at] = NEWLINE
        at += 1
    return out


@_jit
def _put(data, start, end, out, at):
    for position in range(start, end):
        out[at] = data[position]
        at += 1
    return at


@_jit
def _put_row(data, start, end, out, row, at):
    for position in range(start, end):
        out[row, at] = data[position]
        at += 1
    return at


@_jit
def _split(data, starts, ends):
    n = len(starts)
    total = int((ends - starts).sum())
    scalar_bytes = np.empty((4, total), np.uint8)
    scalar_offsets = np.zeros((4, n + 1), np.int32)
    scalar_at = np.zeros(4, np.int64)
    dx_bytes = np.empty(total, np.uint8)
    # upper bounds, left unwritten (np.empty) so that only the pages used cost memory
    dx_offsets = np.empty(min(30 * n, total + n) + 1, np.int32)
    dx_offsets[0] = 0
    dx_lists = np.zeros(n + 1, np.int32)
    proc_bytes = np.empty(total, np.uint8)
    proc_offsets = np.empty(min(100 * n, total) + 1, np.int32)
    proc_offsets[0] = 0
    proc_lists = np.zeros(n + 1, np.int32)
    beyond = np.zeros(n, np.int32)
    dx_at, dx_count, proc_at, proc_count = 0, 0, 0, 0
    for row in range(n):
        field = 0
        position = starts[row]
        end = ends[row]
        while end > position and data[end - 1] == 44:  # trailing empty fields hold nothing to read
            end -= 1
        dagger_start, dagger_end = 0, 0
        principal_missing = False  # the first pair was empty: written as "" once a later pair has a code
        while position <= end:
            # most fields are empty: skip empty pairs and empty procedures in a tight loop
            if field >= _PAIRS_START + 2 and field < _PROCEDURES_START and (field - _PAIRS_START) % 2 == 0:
                while position + 1 < end and data[position] == 44 and data[position + 1] == 44:
                    position += 2
                    field += 2
                    if field >= _PROCEDURES_START:
                        break
            if field >= _PROCEDURES_START:
                while field < STRING_FIELDS - 1 and position < end and data[position] == 44:
                    position += 1
                    field += 1
            field_end = position
            while field_end < end and data[field_end] != 44:
                field_end += 1
            first, last = position, field_end
            while first < last and _blank(data[first]):
                first += 1
            while last > first and _blank(data[last - 1]):
                last -= 1
            if field < 4:
                scalar_at[field] = _put_row(data, first, last, scalar_bytes, field, scalar_at[field])
                scalar_offsets[field, row + 1] = scalar_at[field]
            elif _PAIRS_START <= field < _PROCEDURES_START:
                if (field - _PAIRS_START) % 2 == 0:
                    dagger_start, dagger_end = first, last
                # a pair is complete at its asterisk field, or when the string ends after its dagger
                if (field - _PAIRS_START) % 2 == 1 or field_end >= end:
                    asterisk_start, asterisk_end = (first, last) if (field - _PAIRS_START) % 2 == 1 else (0, 0)
                    written = dagger_end > dagger_start or asterisk_end > asterisk_start
                    if not written and field <= _PAIRS_START + 1:
                        principal_missing = True
                    elif written:
                        if principal_missing:
                            dx_count += 1
                            dx_offsets[dx_count] = dx_at
                            principal_missing = False
                        dx_at = _put(data, dagger_start, dagger_end, dx_bytes, dx_at)
                        if dagger_end > dagger_start and asterisk_end > asterisk_start:
                            dx_bytes[dx_at] = 32
                            dx_at += 1
                        dx_at = _put(data, asterisk_start, asterisk_end, dx_bytes, dx_at)
                        dx_count += 1
                        dx_offsets[dx_count] = dx_at
            elif _PROCEDURES_START <= field < STRING_FIELDS:
                if last > first:
                    proc_at = _put(data, first, last, proc_bytes, proc_at)
                    proc_count += 1
                    proc_offsets[proc_count] = proc_at
            elif field >= STRING_FIELDS and last > first:
                beyond[row] += 1
            field += 1
            position = field_end + 1
        for missing in range(field, 4):  # a string shorter than its four leading fields
            scalar_offsets[missing, row + 1] = scalar_at[missing]
        dx_lists[row + 1] = dx_count
        proc_lists[row + 1] = proc_count
    return (
        scalar_bytes, scalar_offsets, scalar_at, dx_bytes, dx_offsets[: dx_count + 1], dx_lists,
        proc_bytes, proc_offsets[: proc_count + 1], proc_lists, beyond,
    )  # fmt: skip


def _strings(data: np.ndarray, offsets: np.ndarray, used: int) -> pa.Array:
    return pa.Array.from_buffers(
        pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data[:used].copy())]
    )


@_jit
def _printable(data: np.ndarray) -> bool:
    """Every byte printable ASCII other than a space: nothing to trim or case-fold but a-z."""
    odd = np.uint8(0)
    for position in range(len(data)):  # vectorised, no early exit
        odd |= np.uint8((data[position] < np.uint8(33)) | (data[position] > np.uint8(126)))
    return odd == 0


@_jit
def _discharge_codes(data: np.ndarray, offsets: np.ndarray):
    """Printable discharge values as `to_canonical` cleans them: upper case, `H` (home) as `N`;
    the same lengths, so the same offsets. Valid unless empty."""
    out = np.empty(len(data), np.uint8)
    for position in range(len(data)):
        byte = data[position]
        out[position] = byte - 32 if 97 <= byte <= 122 else byte
    n = len(offsets) - 1
    valid = np.empty(n, np.bool_)
    for row in range(n):
        first, last = offsets[row], offsets[row + 1]
        valid[row] = last > first
        if last == first + 1 and out[first] == 72:
            out[first] = 78
    return out, valid


def _typed_scalars(scalar_bytes: np.ndarray, scalar_offsets: np.ndarray, scalar_at: np.ndarray) -> list[pa.Array]:
    """Sex, age, discharge and duration in their canonical types, read as `to_canonical` reads
    their text, for values that are printable ASCII (which leaves no Unicode space to trim and
    no letter but a-z to upper-case); an empty list when some value is not, for `to_canonical`."""
    values = [scalar_bytes[k, : int(scalar_at[k])] for k in range(4)]
    if not all(_printable(data) for data in values):
        return []
    n = scalar_offsets.shape[1] - 1
    columns = []
    for k, type_ in ((0, pa.int8()), (1, pa.int32()), (3, pa.int32())):
        limits = np.iinfo(type_.to_pandas_dtype())
        number, valid = parse_integers(values[k], scalar_offsets[k], int(limits.min), int(limits.max), k == 0)
        columns.append(pa.array(number.astype(type_.to_pandas_dtype()), type_, mask=~valid))
    codes, valid = _discharge_codes(values[2], scalar_offsets[2])
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    discharge = pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(scalar_offsets[2]), pa.py_buffer(codes)])
    return [columns[0], columns[1], discharge, columns[2]]


def split_episode_strings(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """The canonical columns of the episode strings at `data[starts[i]:ends[i]]` (sex, age,
    discharge and duration in their canonical types when every value is plain ASCII, else as
    text for `to_canonical`), and per string how many non-blank values follow its 165 fields
    (they have no meaning in the layout; the caller flags them)."""
    (scalar_bytes, scalar_offsets, scalar_at, dx_bytes, dx_offsets, dx_lists,
     proc_bytes, proc_offsets, proc_lists, beyond) = _split(data, starts, ends)  # fmt: skip
    scalars = _typed_scalars(scalar_bytes, scalar_offsets, scalar_at) or [
        _strings(scalar_bytes[k], scalar_offsets[k], int(scalar_at[k])) for k in range(4)
    ]
    diagnoses = _strings(dx_bytes, dx_offsets, int(dx_offsets[-1]))
    procedures = _strings(proc_bytes, proc_offsets, int(proc_offsets[-1]))
    columns = {
        "sex": scalars[0],
        "age_days": scalars[1],
        "discharge": scalars[2],
        "duration_days": scalars[3],
        "diagnoses": pa.ListArray.from_arrays(pa.array(dx_lists), diagnoses),
        "procedures": pa.ListArray.from_arrays(pa.array(proc_lists), procedures),
    }
    return columns, beyond


@_jit
def parse_integers(data: np.ndarray, offsets: np.ndarray, low: int, high: int, letters: bool):
    """Per value `data[offsets[i]:offsets[i + 1]]`: the whole number it writes (`-?[0-9]{1,9}`,
    nothing else) and whether it is one within `low..high`; with `letters`, `M` is 1 and `F` or
    `K` is 2 (the national letters of sex, in either case). The regular expression, without its per-value cost."""
    n = len(offsets) - 1
    values = np.zeros(n, np.int64)
    valid = np.zeros(n, np.bool_)
    for row in range(n):
        first, last = offsets[row], offsets[row + 1]
        if letters and last == first + 1 and data[first] in (77, 70, 75, 109, 102, 107):  # M F K, m f k
            values[row] = 1 if data[first] == 77 or data[first] == 109 else 2
            valid[row] = low <= values[row] <= high
            continue
        negative = last > first and data[first] == 45
        digits_from = first + 1 if negative else first
        if not 1 <= last - digits_from <= 9:
            continue
        number = 0
        digits = True
        for position in range(digits_from, last):
            digit = data[position] - 48
            if digit < 0 or digit > 9:
                digits = False
                break
            number = number * 10 + digit
        if digits:
            values[row] = -number if negative else number
            valid[row] = low <= values[row] <= high
    return values, valid


# --------------------------------------------------------------------------------------------
# Reading a file block by block

#: Bytes read at a time are about `batch_size` times this (a Norwegian string is ~250 bytes).
BYTES_PER_ROW = 256
#: The smallest read; tests shrink it so that lines straddle blocks.
MIN_BLOCK_BYTES = 1 << 20
_MAX_BLOCK_BYTES = 256 << 20
_PROBLEMS = {
    NOT_UTF8: "not UTF-8 text",
    NUL_BYTE: "a NUL byte (binary data, not text)",
    OPEN_QUOTE: "a quote opened and not closed on the line",
}


@frozen(eq=False)
class Lines:
    """Up to a batch of non-blank lines of one file: spans of `data`, with their state."""

    data: np.ndarray  # uint8, the bytes the spans point into
    starts: np.ndarray
    ends: np.ndarray
    fields: np.ndarray  # fields outside quotes
    state: np.ndarray  # READABLE, NOT_UTF8, NUL_BYTE or OPEN_QUOTE
    numbers: np.ndarray  # the 1-based line number in the file

    def __len__(self) -> int:
        return len(self.starts)

    def problems(self) -> dict[int, str]:
        """What makes a line unreadable, in words, by its index in the batch (readable lines are
        absent: a batch costs Python work only for its unreadable lines)."""
        rows = np.flatnonzero(self.state != READABLE)
        return {row: _PROBLEMS[state] for row, state in zip(rows.tolist(), self.state[rows].tolist(), strict=True)}


def open_bytes(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it is gzip (by its magic bytes, whatever its suffix)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.GzipFile(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def first_line(path: Path) -> bytes:
    """The first line, without a byte-order mark or line ending (empty for an empty file)."""
    with open_bytes(path) as stream:
        head = stream.readline(1 << 20)
    return head.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")


def read_lines(
    path: Path, *, batch_size: int, delimiter: bytes, quote: bytes | None, skip_header: bool
) -> Iterator[Lines]:
    """The non-blank lines of `path`, at most `batch_size` at a time, in file order; memory is
    one block of about `batch_size` lines (more only for a single longer line)."""
    block_bytes = max(MIN_BLOCK_BYTES, min(batch_size * BYTES_PER_ROW, _MAX_BLOCK_BYTES))
    quote_byte = quote[0] if quote else -1
    line_base = 0  # lines of the file before this block
    rest = np.zeros(0, np.uint8)
    with open_bytes(path) as stream:
        at_start = True
        while True:
            # blocks from Arrow's memory pool, which reuses the pages of the blocks before: fresh
            # pages for every block cost more (in page faults) than reading the bytes into them
            buffer = np.frombuffer(pa.allocate_buffer(len(rest) + block_bytes), np.uint8)
            buffer[: len(rest)] = rest
            filled = len(rest) + _read_into(stream, buffer[len(rest) :])
            final = filled < len(buffer)
            data = buffer[:filled]
            if at_start:
                data = data[3:] if data[:3].tobytes() == b"\xef\xbb\xbf" else data
                at_start = False
            starts, ends, fields, state, used = scan_lines(data, final, delimiter[0], quote_byte)
            rest = data[used:]
            numbers = np.arange(line_base + 1, line_base + len(starts) + 1)
            line_base += len(starts)
            keep = state != BLANK
            if skip_header and len(starts):
                keep[0] = False
                skip_header = False
            starts, ends, fields, state, numbers = starts[keep], ends[keep], fields[keep], state[keep], numbers[keep]
            for first in range(0, len(starts), batch_size):
                part = slice(first, first + batch_size)
                yield Lines(data, starts[part], ends[part], fields[part], state[part], numbers[part])
            if final:
                return


def _read_into(stream: io.BufferedIOBase, out: np.ndarray) -> int:
    """Fill `out` from `stream`; fewer bytes only at the end of the stream."""
    view = out.data
    filled = 0
    while filled < len(out):
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled
