"""The Numba kernel: case features and first-match rule search over encoded episodes.

The only module that imports numba. It reads arrays and scalars only (no typed dicts or lists):
codes were turned into rows of the compiled tables by `encode.py`. `_group_range` is the serial
worker over a slice of episodes; `group_encoded` runs one worker per chunk on a pool of threads
(the worker releases the GIL), each writing only its own rows of the output, so no two threads
touch the same memory.

Per episode, stage 1 ORs what each code adds into one *state* bitset (its DGPROP, PROCPR and the
rules its properties make candidates) and works out the CC level; stage 2 ANDs the rule bitsets of
the principal diagnosis' signature, the OR/CC variant, the age and duration bands and the state's
candidates, and checks the survivors column by column in first-match order. The bitsets only
narrow the search; the full check decides, so a rule is matched exactly when `reference.py` would
match it, which the tests prove.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import attrs
import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from nordgroup.engine.compile import (
    KEY_CATEGORIES,
    KEY_CATEGORIES_END,
    KEY_DGCAT,
    KEY_FIRST_SECONDARY,
    KEY_FIRST_SECONDARY_END,
    KEY_KNOWN,
    KEY_MDC,
    KEY_OR,
    KEY_SIGNATURE,
    KEY_STATE,
    KEY_STATE_END,
    OR_1,
    OR_2,
    PROCEDURE_CC,
    PROCEDURE_OR,
    PROCEDURE_STATE,
    PROCEDURE_STATE_END,
    RULE_AGE_OP,
    RULE_COMPL,
    RULE_DGCAT,
    RULE_DGPROP,
    RULE_DGPROP_NEGATED,
    RULE_DISCHARGE,
    RULE_DURATION_OP,
    RULE_ICD,
    RULE_MDC,
    RULE_OR,
    RULE_PDGPROP,
    RULE_PROCPRO,
    RULE_SECPRO,
    RULE_SECPRO_KIND,
    RULE_SEX,
    CompiledTables,
)

__all__ = ["KernelPreparation", "group_encoded", "prepare"]

# The one set of Numba options, for every kernel function. cache=True keeps the compiled machine
# code on disk (see docs/performance.md, "The first run", for where); nogil lets `group_encoded`
# run chunks on plain threads, so no `parallel=True` variant of the kernel is compiled (that
# doubled the first run's compilation); error_model="numpy" drops Python's zero-division checks.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


_NONE = -1
_MIN_CHUNK = 2048  # below this a parallel launch costs more than it saves


@_jit
def _has_bit(words, bit):
    return (words[bit >> 6] >> np.uint64(bit & 63)) & np.uint64(1) != np.uint64(0)


@_jit
def _bit_index(low):
    # `low` has exactly one bit set: its index is the count of trailing zeros (one instruction).
    return trailing_zeros(low)


@_jit
def _or_into(target, source, row):
    # Explicit loops over a row index: a Numba array view (`source[row]`) costs two reference
    # count calls, more than the work here, and `target |= ...` would build a temporary array.
    for w in range(target.shape[0]):
        target[w] |= source[row, w]


@_jit
def _any_common(a, row, b):
    for w in range(a.shape[1]):  # noqa: SIM110 - Numba compiles this loop, not a generator
        if a[row, w] & b[w] != np.uint64(0):
            return True
    return False


@_jit
def _limit_holds(op, limit, value, missing):
    """Whether `value` meets a rule's limit (operator 0 none, 1 `<`, 2 `>`)."""
    if op == 0:
        return True
    if value == missing:  # an unknown age or duration meets no limit
        return False
    return value < limit if op == 1 else value > limit


@_jit
def _band(breaks, value, missing):
    """The band of `value` among the breaks (see compile._limit_bands); the last band if unknown.

    How many breaks are ≤ `value`, by bisection: what `np.searchsorted(side="right")` returns, at a
    fraction of its compilation time (its generic implementation compiles for seconds)."""
    if value == missing:
        return breaks.shape[0] + 1
    low = 0
    high = breaks.shape[0]
    while low < high:
        middle = (low + high) >> 1
        if breaks[middle] <= value:
            low = middle + 1
        else:
            high = middle
    return low


@_jit
def _or_entries(target, entries, start, stop):
    """OR entries `start:stop` of a sparse bitset (compile.SparseRows) into `target`."""
    for e in range(start, stop):
        target[entries[e, 0]] |= entries[e, 1]


@_jit
def _excluded(key_excluded_from, dx_rows, principal, category):
    """Whether the principal diagnosis (any of its key rows) excludes the complication category."""
    word = category >> 6
    mask = np.uint64(1) << np.uint64(category & 63)
    for k in range(3):
        row = dx_rows[principal, k]
        if row >= 0 and key_excluded_from[row, word] & mask != np.uint64(0):
            return True
    return False


@_jit
def _group_range(
    start, stop,
    has_principal, sex, age, duration, discharge, dx_offsets, dx_rows, proc_offsets, proc_rows, missing,
    key_record, key_pdgprop, key_state_entries, first_secondary_entries, key_categories, key_excluded_from,
    mdc_by_sex, dgcat_by_sex, procedure_record, procedure_state_entries, secondary_or1_offsets,
    secondary_or1_entries, state_words, state_rules_word,
    category_level, category_inactive, category_activators, rule_record,
    signature_offsets, signature_entries, variant_rules, age_breaks, age_rules,
    duration_breaks, duration_rules, unkeyed_rules, pdgprop, state, out_rule, out_cc, out_mdc, out_known,
):  # fmt: skip
    # `pdgprop` and `state` (DGPROP, PROCPR, procedures' PROCPR, candidate rules) are the caller's
    # scratch rows: allocating here would compile numpy's generic allocators for seconds.
    for i in range(start, stop):
        for w in range(pdgprop.shape[0]):
            pdgprop[w] = 0
        for w in range(state.shape[0]):
            state[w] = 0
        s = sex[i]
        has1 = False
        has2 = False
        secondary_or1 = False
        cc = 0

        # --- stage 1: features. A written diagnosis reads up to three key rows (pair, asterisk,
        # dagger); MDC and DGCAT come from the first row that has them, sets are unions.
        d0 = dx_offsets[i]
        d1 = dx_offsets[i + 1]
        mdc = _NONE
        dgcat = _NONE
        known = False
        signature = 0  # no usable principal diagnosis
        if has_principal[i]:
            single = dx_rows[d0, 0] < 0 and dx_rows[d0, 2] < 0
            if single and dx_rows[d0, 1] >= 0:
                signature = key_record[dx_rows[d0, 1], KEY_SIGNATURE + s]
            elif not single:
                signature = 1  # a pair combines rows: read every rule
            for k in range(3):
                row = dx_rows[d0, k]
                if row < 0:
                    continue
                known = known or key_record[row, KEY_KNOWN] != 0
                if mdc < 0 and key_record[row, KEY_MDC] >= 0:
                    mdc = mdc_by_sex[key_record[row, KEY_MDC], s]
                if dgcat < 0 and key_record[row, KEY_DGCAT] >= 0:
                    dgcat = dgcat_by_sex[key_record[row, KEY_DGCAT], s]
                _or_into(pdgprop, key_pdgprop, row)
        for d in range(d0, d1):
            for k in range(3):
                row = dx_rows[d, k]
                if row < 0:
                    continue
                _or_entries(state, key_state_entries, key_record[row, KEY_STATE], key_record[row, KEY_STATE_END])
                if d == d0 + 1:  # SDGPRO counts for the first secondary diagnosis only
                    first, end = key_record[row, KEY_FIRST_SECONDARY], key_record[row, KEY_FIRST_SECONDARY_END]
                    _or_entries(state, first_secondary_entries, first, end)
                or_bits = key_record[row, KEY_OR]  # a code may carry both OR values
                has1 = has1 or (or_bits & OR_1) != 0
                has2 = has2 or (or_bits & OR_2) != 0
        p0 = proc_offsets[i]
        p1 = proc_offsets[i + 1]
        for p in range(p0, p1):
            row = proc_rows[p]
            if row < 0:
                continue
            first, end = procedure_record[row, PROCEDURE_STATE], procedure_record[row, PROCEDURE_STATE_END]
            _or_entries(state, procedure_state_entries, first, end)
            or_bits = procedure_record[row, PROCEDURE_OR]
            if or_bits & OR_1:
                has1 = True
                if p > p0:
                    secondary_or1 = True
            if or_bits & OR_2:
                has2 = True
            if procedure_record[row, PROCEDURE_CC] > cc:  # not max(): its generic version compiles for seconds
                cc = procedure_record[row, PROCEDURE_CC]
        # CC level: each complication category of each secondary diagnosis, unless inactive and
        # not activated, or excluded by the principal diagnosis.
        for d in range(d0 + 1, d1):
            for k in range(3):
                row = dx_rows[d, k]
                if row < 0:
                    continue
                for e in range(key_record[row, KEY_CATEGORIES], key_record[row, KEY_CATEGORIES_END]):
                    category = key_categories[e]
                    if category_level[category] <= cc:
                        continue  # cannot raise the level: no need to ask whether it counts
                    if category_inactive[category] and not _any_common(category_activators, category, state):
                        continue
                    if has_principal[i] and _excluded(key_excluded_from, dx_rows, d0, category):
                        continue
                    cc = category_level[category]

        # --- stage 2: the candidates (see compile.py), then the first whose every filled column holds.
        # On the official tables about 1.3 candidates per episode reach the full check.
        if secondary_or1:
            # int32 like the record fields, so that `_or_entries` compiles for one signature only
            first, end = np.int32(secondary_or1_offsets[0]), np.int32(secondary_or1_offsets[1])
            _or_entries(state, secondary_or1_entries, first, end)
        variant = ((1 if has1 else 0) + (2 if has2 else 0)) * 3 + (cc if cc < 2 else 2)
        age_band = _band(age_breaks, age[i], missing)
        duration_band = _band(duration_breaks, duration[i], missing)
        matched = _NONE
        for e in range(signature_offsets[signature], signature_offsets[signature + 1]):
            w = np.int64(signature_entries[e, 0])
            keyed = state[state_rules_word + w]
            candidates = signature_entries[e, 1] & variant_rules[variant, w] & (unkeyed_rules[w] | keyed)
            candidates &= age_rules[age_band, w] & duration_rules[duration_band, w]
            while candidates != np.uint64(0):
                low = candidates & (~candidates + np.uint64(1))
                candidates ^= low
                r = w * 64 + _bit_index(low)
                c = rule_record[r, RULE_ICD]
                if c == 1 and not known:
                    continue
                if c == 2 and known:
                    continue
                if c == 3:
                    continue
                c = rule_record[r, RULE_MDC]
                if c != _NONE and c != mdc:
                    continue
                c = rule_record[r, RULE_DGCAT]
                if c != _NONE and c != dgcat:
                    continue
                c = rule_record[r, RULE_PDGPROP]
                if c != _NONE and (c < 0 or not _has_bit(pdgprop, c)):
                    continue
                if cc < rule_record[r, RULE_COMPL]:
                    continue
                c = rule_record[r, RULE_OR]
                if c != 0:
                    if c == 1 and not has1:
                        continue
                    if c == 2 and not (has1 or has2):
                        continue
                    if c == 3 and has1:
                        continue
                    if c == 4 and (has1 or has2):
                        continue
                    if c > 4:
                        continue
                c = rule_record[r, RULE_PROCPRO]
                if c != _NONE and (c < 0 or not _has_bit(state, c)):
                    continue
                c = rule_record[r, RULE_SECPRO_KIND]
                if c != 0:
                    b = rule_record[r, RULE_SECPRO]
                    if c == 1 and (b < 0 or not _has_bit(state, b)):
                        continue
                    if c == 2 and _has_bit(state, b):
                        continue
                    if c == 3 and not secondary_or1:
                        continue
                    if c == 4 and secondary_or1:
                        continue
                failed = False
                for slot in range(4):
                    b = rule_record[r, RULE_DGPROP + slot]
                    if b == _NONE:
                        continue
                    present = b >= 0 and _has_bit(state, b)
                    if present == (rule_record[r, RULE_DGPROP_NEGATED + slot] != 0):
                        failed = True
                        break
                if failed:
                    continue
                if not _limit_holds(rule_record[r, RULE_AGE_OP], rule_record[r, RULE_AGE_OP + 1], age[i], missing):
                    continue
                c = rule_record[r, RULE_SEX]
                if c != 0:
                    if c == 1 and s != 1:
                        continue
                    if c == 2 and s != 2:
                        continue
                    if c == 3 and (s == 1 or s == 2):
                        continue
                    if c > 3:
                        continue
                op, limit = rule_record[r, RULE_DURATION_OP], rule_record[r, RULE_DURATION_OP + 1]
                if not _limit_holds(op, limit, duration[i], missing):
                    continue
                c = rule_record[r, RULE_DISCHARGE]
                if c != 0:
                    if c == 1 and discharge[i] != 1:
                        continue
                    if c == 2 and discharge[i] == 1:
                        continue
                    if c == 3 and discharge[i] != 3:
                        continue
                    if c > 3:
                        continue
                matched = r
                break
            if matched != _NONE:
                break
        out_rule[i] = matched
        out_cc[i] = cc
        out_mdc[i] = mdc
        out_known[i] = known


def group_encoded(episode_arrays: tuple, compiled: CompiledTables, n: int, *, parallel: bool = True):
    """Group `n` encoded episodes; returns (rule row or -1, CC level, principal MDC id, principal known).

    In parallel, chunks of episodes run on a pool of plain threads: the kernel releases the GIL
    (`nogil`), and each chunk writes only its own rows of the output."""
    out_rule = np.empty(n, np.int32)
    out_cc = np.empty(n, np.int8)
    out_mdc = np.empty(n, np.int16)
    out_known = np.empty(n, np.bool_)
    outputs = (out_rule, out_cc, out_mdc, out_known)
    threads = _threads() if parallel else 1
    chunks = 1 if threads == 1 else max(1, min(threads * 4, n // _MIN_CHUNK))
    bounds = np.linspace(0, n, chunks + 1).astype(np.int64)
    table_arrays = compiled.kernel_arrays()
    state_words, pdgprop_words = compiled.state_words, compiled.key_pdgprop.shape[1]

    def run(chunk: int) -> None:
        scratch = np.zeros(pdgprop_words, np.uint64), np.zeros(state_words, np.uint64)
        _group_range(bounds[chunk], bounds[chunk + 1], *episode_arrays, *table_arrays, *scratch, *outputs)

    if chunks == 1:
        run(0)
    else:
        list(_pool(threads).map(run, range(chunks)))
    return outputs


@attrs.frozen
class KernelPreparation:
    """What getting the kernel's machine code took: compiled now (a first run) or read from the cache."""

    seconds: float
    compiled: bool


def prepare(empty_episode_arrays: tuple, compiled: CompiledTables) -> KernelPreparation:
    """Compile the kernel, or load it from Numba's cache, by grouping no episodes; time it.

    The first call of a process does this anyway; calling it first lets a caller report the
    one-time compilation apart from the grouping."""
    started = time.perf_counter()
    misses = sum(_group_range.stats.cache_misses.values())
    group_encoded(empty_episode_arrays, compiled, 0, parallel=False)
    return KernelPreparation(time.perf_counter() - started, sum(_group_range.stats.cache_misses.values()) > misses)


def _threads() -> int:
    """The cores this process may use (NUMBA_NUM_THREADS, when set, caps them as it did before)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(available, int(os.environ.get("NUMBA_NUM_THREADS", available))))


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="nordgroup-kernel")
