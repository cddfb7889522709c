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
    EPISODE_DISCHARGE_E,
    EPISODE_DISCHARGE_NOT_E,
    EPISODE_DISCHARGE_R,
    EPISODE_FEMALE,
    EPISODE_KNOWN,
    EPISODE_MALE,
    EPISODE_NO_OR,
    EPISODE_NO_OR_1,
    EPISODE_NO_SECONDARY_OR_1,
    EPISODE_OR_1,
    EPISODE_OR_ANY,
    EPISODE_SECONDARY_OR_1,
    EPISODE_SEX_OTHER,
    EPISODE_UNKNOWN,
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
    RULE_DURATION_OP,
    RULE_MDC,
    RULE_NEEDS,
    RULE_PDGPROP,
    RULE_PROCPRO,
    RULE_SECPRO,
    RULE_SECPRO_KIND,
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
# Constants, not `np.uint64(...)` calls: Numba types every call site, which is much of the compilation.
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


# One function, no jitted helpers: each helper was a compilation of its own (its module, its
# optimisation, a Python wrapper nobody calls), about 0.1 s each on the first run. So the bit
# tests, sparse-row ORs and limit checks are written out where they are used.
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
    # scratch rows: allocating here would compile numpy's generic allocators for seconds. Explicit
    # loops over a row index: a Numba array view (`source[row]`) costs two reference-count calls.
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
                for w in range(pdgprop.shape[0]):
                    pdgprop[w] |= key_pdgprop[row, w]
        # a sparse row's entries (compile.SparseRows) are (word, bits) pairs, ORed into the state
        for d in range(d0, d1):
            for k in range(3):
                row = dx_rows[d, k]
                if row < 0:
                    continue
                for e in range(key_record[row, KEY_STATE], key_record[row, KEY_STATE_END]):
                    state[key_state_entries[e, 0]] |= key_state_entries[e, 1]
                if d == d0 + 1:  # SDGPRO counts for the first secondary diagnosis only
                    for e in range(key_record[row, KEY_FIRST_SECONDARY], key_record[row, KEY_FIRST_SECONDARY_END]):
                        state[first_secondary_entries[e, 0]] |= first_secondary_entries[e, 1]
                or_bits = key_record[row, KEY_OR]  # a code may carry both OR values
                has1 = has1 or (or_bits & OR_1) != 0
                has2 = has2 or (or_bits & OR_2) != 0
        p0 = proc_offsets[i]
        p1 = proc_offsets[i + 1]
        for p in range(p0, p1):
            row = proc_rows[p]
            if row < 0:
                continue
            for e in range(procedure_record[row, PROCEDURE_STATE], procedure_record[row, PROCEDURE_STATE_END]):
                state[procedure_state_entries[e, 0]] |= procedure_state_entries[e, 1]
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
        # not activated, or excluded by the principal diagnosis (any of its key rows).
        for d in range(d0 + 1, d1):
            for k in range(3):
                row = dx_rows[d, k]
                if row < 0:
                    continue
                for e in range(key_record[row, KEY_CATEGORIES], key_record[row, KEY_CATEGORIES_END]):
                    category = key_categories[e]
                    if category_level[category] <= cc:
                        continue  # cannot raise the level: no need to ask whether it counts
                    counts = True
                    if category_inactive[category]:
                        counts = False
                        for w in range(category_activators.shape[1]):
                            if category_activators[category, w] & state[w] != _ZERO:
                                counts = True
                                break
                    if counts and has_principal[i]:
                        mask = _ONE << np.uint64(category & 63)
                        for j in range(3):
                            principal_row = dx_rows[d0, j]
                            if principal_row >= 0 and key_excluded_from[principal_row, category >> 6] & mask != _ZERO:
                                counts = False
                                break
                    if counts:
                        cc = category_level[category]

        # --- stage 2: the candidates (see compile.py), then the first whose every filled column holds.
        # On the official tables about 1.3 candidates per episode reach the full check.
        if secondary_or1:
            for e in range(secondary_or1_offsets[0], secondary_or1_offsets[1]):
                state[secondary_or1_entries[e, 0]] |= secondary_or1_entries[e, 1]
        variant = ((1 if has1 else 0) + (2 if has2 else 0)) * 3 + (cc if cc < 2 else 2)
        # The bands (see compile._limit_bands): how many breaks are <= the value, the last band
        # if unknown. The official tables have 15 age and 5 duration breaks: a scan is as quick
        # as a bisection, and less code to compile (np.searchsorted's generic version takes seconds).
        age_band = age_breaks.shape[0] + 1
        if age[i] != missing:
            age_band = 0
            while age_band < age_breaks.shape[0] and age_breaks[age_band] <= age[i]:
                age_band += 1
        duration_band = duration_breaks.shape[0] + 1
        if duration[i] != missing:
            duration_band = 0
            while duration_band < duration_breaks.shape[0] and duration_breaks[duration_band] <= duration[i]:
                duration_band += 1
        # the episode's facts (compile.EPISODE_*): a rule's icd, or_proc, sex, disch and secpro `+`/`-`
        # columns hold when it has every fact the rule needs
        facts = EPISODE_KNOWN if known else EPISODE_UNKNOWN
        facts |= EPISODE_OR_1 if has1 else EPISODE_NO_OR_1
        facts |= EPISODE_OR_ANY if has1 or has2 else EPISODE_NO_OR
        facts |= EPISODE_SECONDARY_OR_1 if secondary_or1 else EPISODE_NO_SECONDARY_OR_1
        facts |= EPISODE_MALE if s == 1 else EPISODE_FEMALE if s == 2 else EPISODE_SEX_OTHER
        facts |= EPISODE_DISCHARGE_E if discharge[i] == 1 else EPISODE_DISCHARGE_NOT_E
        if discharge[i] == 3:
            facts |= EPISODE_DISCHARGE_R
        matched = _NONE
        for e in range(signature_offsets[signature], signature_offsets[signature + 1]):
            w = np.int64(signature_entries[e, 0])
            keyed = state[state_rules_word + w]
            candidates = signature_entries[e, 1] & variant_rules[variant, w] & (unkeyed_rules[w] | keyed)
            candidates &= age_rules[age_band, w] & duration_rules[duration_band, w]
            while candidates != _ZERO:
                low = candidates & (~candidates + _ONE)
                candidates ^= low
                r = w * 64 + trailing_zeros(low)  # the index of the one bit set in `low`
                needs = rule_record[r, RULE_NEEDS]
                if facts & needs != needs:
                    continue
                c = rule_record[r, RULE_MDC]
                if c != _NONE and c != mdc:
                    continue
                c = rule_record[r, RULE_DGCAT]
                if c != _NONE and c != dgcat:
                    continue
                c = rule_record[r, RULE_PDGPROP]
                if c != _NONE and (c < 0 or pdgprop[c >> 6] & (_ONE << np.uint64(c & 63)) == _ZERO):
                    continue
                if cc < rule_record[r, RULE_COMPL]:
                    continue
                c = rule_record[r, RULE_PROCPRO]
                if c != _NONE and (c < 0 or state[c >> 6] & (_ONE << np.uint64(c & 63)) == _ZERO):
                    continue
                c = rule_record[r, RULE_SECPRO_KIND]
                if c != 0:
                    b = rule_record[r, RULE_SECPRO]
                    if c == 1 and (b < 0 or state[b >> 6] & (_ONE << np.uint64(b & 63)) == _ZERO):
                        continue
                    if c == 2 and state[b >> 6] & (_ONE << np.uint64(b & 63)) != _ZERO:
                        continue
                failed = False
                for slot in range(4):
                    b = rule_record[r, RULE_DGPROP + slot]
                    if b == _NONE:
                        continue
                    present = b >= 0 and state[b >> 6] & (_ONE << np.uint64(b & 63)) != _ZERO
                    if present == (rule_record[r, RULE_DGPROP_NEGATED + slot] != 0):
                        failed = True
                        break
                if failed:
                    continue
                # a rule's age and duration limits (operator 0 none, 1 `<`, 2 `>`); an unknown value meets none
                op, limit = rule_record[r, RULE_AGE_OP], rule_record[r, RULE_AGE_OP + 1]
                if op != 0 and (age[i] == missing or not (age[i] < limit if op == 1 else age[i] > limit)):
                    continue
                op, limit = rule_record[r, RULE_DURATION_OP], rule_record[r, RULE_DURATION_OP + 1]
                if op != 0 and (
                    duration[i] == missing or not (duration[i] < limit if op == 1 else duration[i] > limit)
                ):
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
