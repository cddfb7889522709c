"""Compiling `DrgTables` into the flat integer arrays the Numba kernel reads, with a disk cache.

Text never reaches the kernel: every property value gets an integer id (MDC, DGCAT) or a bit in a
bitset (PDGPROP, DGPROP/SDGPRO, PROCPR, complication categories), every code a row in a property
array (codes the kernel cannot tell apart share one), and every rule a row of small integers.
Values a rule names but no code carries compile to "never holds" (`NEVER`), so the kernel needs no
special case for them.

Sets of rules are bitsets over the rule rows (bit `r & 63` of word `r >> 6`). They let the kernel
skip, without reading them, the rules an episode cannot meet: see `_signatures`, `_keys` and
`_limit_bands`. Per-code sets are stored sparse (`SparseRows`), since most codes carry one or
two values.

Over 500 lines on purpose: `_compile` is one pass whose steps share the vocabularies and the row
numbering, and the record layouts (`KEY_*`, `RULE_*`) must sit beside the code that fills them;
split, a reader would have to hold two files open to check one field.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np
from attrs import frozen

from nordgroup._memo import per_object, pickled
from nordgroup.tables.model import NO_DAGGER, DiagnosisKey, DrgTables, Limit

__all__ = ["NEVER", "CompiledTables", "compile_tables"]

#: A bitset per row, stored as its non-zero words: (row offsets [rows + 1], entries [non-zero words, 2]
#: holding the word index and the word side by side, so that reading one costs one cache line).
SparseRows = tuple[np.ndarray, np.ndarray]

NONE, NEVER = -1, -2  # "no condition" and "a condition no episode can meet"
OR_CONDITIONS = {"S": 1, "P": 2, "N": 3, "Z": 4}
SEX_CONDITIONS = {"M": 1, "F": 2, "-": 3}
DISCHARGE_CONDITIONS = {"E": 1, "N": 2, "R": 3}
ICD_CONDITIONS = {"+": 1, "-": 2}
LIMIT_OPS = {"<": 1, ">": 2}
SECPRO_HAS, SECPRO_HAS_NOT, SECPRO_OR1, SECPRO_NO_OR1 = 1, 2, 3, 4
_CACHE_VERSION = "19"

# A diagnosis key's fields, one 64-byte row of `key_record`: the kernel reads a code at a random row
# of a table larger than the core's cache, and one row per code costs one memory access where a
# column per field cost one each. `_STATE`..`_STATE_END` and the like are ranges of entry arrays.
# KEY_OR (and PROCEDURE_OR) hold the code's OR rows as bits: OR_1 if one row says 1, OR_2 if one
# says 2 (a code may have both: every row counts, docs/semantics.md).
KEY_KNOWN, KEY_MDC, KEY_DGCAT, KEY_OR = 0, 1, 2, 3
OR_1, OR_2 = 1, 2
KEY_SIGNATURE = 4  # three fields: per sex 0 unknown, 1 male, 2 female
KEY_STATE, KEY_STATE_END = 7, 8
KEY_FIRST_SECONDARY, KEY_FIRST_SECONDARY_END = 9, 10
KEY_CATEGORIES, KEY_CATEGORIES_END = 11, 12
KEY_FIELDS = 16
# A procedure's fields, one 16-byte row of `procedure_record`.
PROCEDURE_OR, PROCEDURE_CC, PROCEDURE_STATE, PROCEDURE_STATE_END = 0, 1, 2, 3
PROCEDURE_FIELDS = 4
# A rule's columns, one 128-byte row of `rule_record` (two cache lines instead of seventeen arrays).
# RULE_NEEDS holds its icd, or_proc, sex and disch columns and secpro `+`/`-` as EPISODE_* bits.
RULE_NEEDS, RULE_MDC, RULE_DGCAT, RULE_PDGPROP, RULE_COMPL = 0, 1, 2, 3, 4
RULE_PROCPRO, RULE_SECPRO_KIND, RULE_SECPRO = 6, 7, 8
RULE_AGE_OP, RULE_AGE, RULE_DURATION_OP, RULE_DURATION = 11, 12, 13, 14  # an operator, then its days
RULE_DGPROP, RULE_DGPROP_NEGATED = 16, 20  # four fields each: the rule's dgprop slots
RULE_FIELDS = 32
# What an episode is, besides its codes' properties, as one bit each: the kernel sets its facts and
# a rule holds only if the episode has every fact in the rule's RULE_NEEDS (one AND for five columns).
EPISODE_KNOWN, EPISODE_UNKNOWN = 1 << 0, 1 << 1  # the principal diagnosis is listed in the tables
EPISODE_OR_1, EPISODE_NO_OR_1 = 1 << 2, 1 << 3  # a code or procedure has OR 1
EPISODE_OR_ANY, EPISODE_NO_OR = 1 << 4, 1 << 5  # one has OR 1 or 2
EPISODE_SECONDARY_OR_1, EPISODE_NO_SECONDARY_OR_1 = 1 << 6, 1 << 7  # a procedure after the first has OR 1
EPISODE_MALE, EPISODE_FEMALE, EPISODE_SEX_OTHER = 1 << 8, 1 << 9, 1 << 10
EPISODE_DISCHARGE_E, EPISODE_DISCHARGE_NOT_E, EPISODE_DISCHARGE_R = 1 << 11, 1 << 12, 1 << 13
EPISODE_NEVER = 1 << 14  # no episode has it: a condition value the tables should not hold
_NEEDS = {
    "icd": {ICD_CONDITIONS["+"]: EPISODE_KNOWN, ICD_CONDITIONS["-"]: EPISODE_UNKNOWN},
    "or_proc": {
        OR_CONDITIONS["S"]: EPISODE_OR_1,
        OR_CONDITIONS["P"]: EPISODE_OR_ANY,
        OR_CONDITIONS["N"]: EPISODE_NO_OR_1,
        OR_CONDITIONS["Z"]: EPISODE_NO_OR,
    },
    "sex": {
        SEX_CONDITIONS["M"]: EPISODE_MALE,
        SEX_CONDITIONS["F"]: EPISODE_FEMALE,
        SEX_CONDITIONS["-"]: EPISODE_SEX_OTHER,
    },
    "disch": {
        DISCHARGE_CONDITIONS["E"]: EPISODE_DISCHARGE_E,
        DISCHARGE_CONDITIONS["N"]: EPISODE_DISCHARGE_NOT_E,
        DISCHARGE_CONDITIONS["R"]: EPISODE_DISCHARGE_R,
    },
    "secpro": {SECPRO_OR1: EPISODE_SECONDARY_OR_1, SECPRO_NO_OR1: EPISODE_NO_SECONDARY_OR_1},
}


@frozen(eq=False)
class CompiledTables:
    """Read-only arrays for the kernel, and the code → row maps the encoder needs."""

    source_hash: str
    diagnosis_index: dict[tuple[str, str], int]  # (code, dagger) -> row of the key_* arrays (shared)
    procedure_index: dict[str, int]  # code -> row of the procedure_* arrays (shared)
    mdc_values: list[str]
    dgcat_values: list[str]
    dgprop_values: list[str]
    categories: list[str]
    # diagnosis keys: int32 [keys, KEY_FIELDS] (KEY_* above). KEY_KNOWN is 0 when only an exclusion
    # names the code; KEY_MDC and KEY_DGCAT are ids, NONE when absent.
    key_record: np.ndarray
    key_pdgprop: np.ndarray  # uint64 [keys, words]
    # What each code adds to the episode state (see `_compile`), as entries of sparse rows (see
    # `SparseRows`) whose ranges the records hold: most codes set a word or two, so the kernel reads
    # those instead of the whole state.
    key_state_entries: np.ndarray
    first_secondary_entries: np.ndarray  # what a key adds as first secondary diagnosis (its SDGPRO)
    key_categories: np.ndarray  # int32: the complication categories of each key, in record ranges
    key_excluded_from: np.ndarray  # uint64 [keys, category words]: categories that cannot complicate it
    # sex recoding of MDC and DGCAT ids: [id, sex] with sex 0 unknown, 1 male, 2 female
    mdc_by_sex: np.ndarray
    dgcat_by_sex: np.ndarray
    # procedures: int32 [procedures, PROCEDURE_FIELDS] (PROCEDURE_* above)
    procedure_record: np.ndarray
    procedure_state_entries: np.ndarray
    secondary_or1_state: SparseRows  # one row: what an OR=1 procedure after the first adds
    state_words: int
    state_rules_word: int  # where the candidate rules begin in the state
    # complication categories
    category_level: np.ndarray  # int8: 1 for C and I, 2 for G
    category_inactive: np.ndarray  # bool
    category_activators: np.ndarray  # uint64 [categories, dgprop words]
    # rules, in first-match order
    rule_record: np.ndarray  # int32 [rules, RULE_FIELDS] (RULE_* above)
    # Rule sets the kernel ANDs to find its candidates (see `_signatures`, `_limit_bands`, `_keys`):
    # only the rules that survive are checked column by column, in first-match order.
    signature_rules: SparseRows  # per signature: the rules whose principal columns can hold
    variant_rules: np.ndarray  # uint64 [VARIANTS, rule words]: or_proc and compl can hold
    age_breaks: np.ndarray  # int32: ages (days) where some rule's age limit changes truth
    age_rules: np.ndarray  # uint64 [age bands + 1, rule words]: agelim holds; the last band is "unknown"
    duration_breaks: np.ndarray
    duration_rules: np.ndarray
    unkeyed_rules: np.ndarray  # uint64 [rule words]: rules that need no code property

    @property
    def key_known(self) -> np.ndarray:
        """bool [keys]: whether the tables list the key (False: only an exclusion names it)."""
        return self.key_record[:, KEY_KNOWN].astype(np.bool_)

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays, in the order the kernel takes them (sparse rule sets as their two arrays)."""
        return _kernel_arrays(self)


def _build_kernel_arrays(compiled: CompiledTables) -> tuple:
    arrays: list = []
    for name in KERNEL_ARRAYS:
        value = getattr(compiled, name)
        arrays.extend(value if isinstance(value, tuple) else (value,))
    return tuple(_cache_line_aligned(a) if isinstance(a, np.ndarray) else a for a in arrays)


_kernel_arrays = per_object(_build_kernel_arrays)


def _cache_line_aligned(array: np.ndarray) -> np.ndarray:
    """`array`, copied if needed so that it starts on a 64-byte boundary: then each record row is
    one cache line. (A pickled array comes back wherever the allocator puts it.)"""
    if array.ctypes.data % 64 == 0 or array.nbytes == 0:
        return array
    buffer = np.empty(array.nbytes + 64, np.uint8)
    start = -buffer.ctypes.data % 64
    aligned = buffer[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    aligned[...] = array
    return aligned


KERNEL_ARRAYS = (
    "key_record", "key_pdgprop", "key_state_entries", "first_secondary_entries", "key_categories",
    "key_excluded_from", "mdc_by_sex", "dgcat_by_sex", "procedure_record", "procedure_state_entries",
    "secondary_or1_state", "state_words", "state_rules_word",
    "category_level", "category_inactive", "category_activators", "rule_record",
    "signature_rules", "variant_rules", "age_breaks", "age_rules", "duration_breaks",
    "duration_rules", "unkeyed_rules",
)  # fmt: skip
#: Signature 0 is "no usable principal diagnosis"; signature 1 holds every rule (the fallback for
#: combinations no single table row has, such as asterisk/dagger pairs read as one diagnosis).
NO_PRINCIPAL_SIGNATURE, ALL_RULES_SIGNATURE = 0, 1


def _words(count: int) -> int:
    return max(1, (count + 63) // 64)


class _Vocabulary:
    """Text values to consecutive ids, in sorted order: the compiled arrays then do not depend on
    the order sets happen to iterate in, which changes with Python's hash seed."""

    def __init__(self, values: Iterable[str]) -> None:
        self.ids: dict[str, int] = {value: i for i, value in enumerate(sorted(set(values)))}

    def get(self, value: str) -> int:
        return self.ids.get(value, NEVER) if value else NONE

    def values(self) -> list[str]:
        return list(self.ids)


def _bits(rows: int, words: int) -> np.ndarray:
    return np.zeros((rows, words), dtype=np.uint64)


def _set(bits: np.ndarray, row: int, bit: int) -> None:
    bits[row, bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)


def compile_tables(tables: DrgTables, *, cache_dir: str | os.PathLike[str] | None = None) -> CompiledTables:
    """Compile `tables`; with `cache_dir`, reuse (or store) the result keyed by the source hash."""
    if cache_dir is None:
        return _compile(tables)
    return pickled(Path(cache_dir) / f"{_cache_key(tables)}.pickle", lambda: _compile(tables))


def _cache_key(tables: DrgTables) -> str:
    return hashlib.sha256(f"{_CACHE_VERSION}:{tables.release.source_hash}".encode()).hexdigest()[:32]


def _or_bits(or_values: frozenset[int]) -> int:
    return (OR_1 if 1 in or_values else 0) | (OR_2 if 2 in or_values else 0)


def _by_sex(value: str) -> tuple[str, str, str]:
    """A `98`-prefixed (sex-dependent) MDC or DGCAT as read for unknown sex, men (`12`), women (`13`)."""
    return (value, "12" + value[2:], "13" + value[2:]) if value.startswith("98") else (value, value, value)


def _by_sex_ids(vocabulary: _Vocabulary) -> np.ndarray:
    """[values, 3] ids of each value's reading by sex (see `_by_sex`)."""
    rows = [[vocabulary.ids[v] for v in _by_sex(value)] for value in vocabulary.values()]
    return np.array(rows or np.zeros((0, 3)), np.int16).reshape(-1, 3)


def _compile(tables: DrgTables) -> CompiledTables:
    diagnoses, procedures = tables.diagnoses.values(), tables.procedures.values()
    mdc = _Vocabulary(v for p in diagnoses for v in _by_sex(p.mdc) if v)
    dgcat = _Vocabulary(v for p in diagnoses for v in _by_sex(p.dgcat) if v)
    pdgprop = _Vocabulary(v for p in diagnoses for v in p.pdgprop)
    dgprop = _Vocabulary(
        chain(
            (v for p in diagnoses for v in p.dgprop | p.sdgprop),
            (v for p in procedures for v in p.dgprop),
            (v for c in tables.complication_categories.values() for v in c.activating_dgprop),
        )
    )
    procpr = _Vocabulary(chain((v for p in diagnoses for v in p.procpr), (v for p in procedures for v in p.procpr)))
    categories = _Vocabulary(
        chain((v for p in diagnoses for v in p.compl), tables.complication_categories, tables.exclusions)
    )
    # Excluded principals without properties of their own still need a row to carry the exclusion.
    excluded_from: dict[DiagnosisKey, set[str]] = defaultdict(set)
    for category_code, excluded_keys in tables.exclusions.items():
        for key in excluded_keys:
            excluded_from[key].add(category_code)
    keys = list(dict.fromkeys([*tables.diagnoses, *sorted(excluded_from)]))
    # Keys with the same properties and exclusions are the same to the kernel, so they share a row:
    # the 20 169 keys of the 2017 tables need 2 876 rows, and the arrays the kernel reads per code
    # shrink from megabytes to what the core's own cache holds.
    contents = {key: (tables.diagnoses.get(key), frozenset(excluded_from.get(key, ()))) for key in keys}
    row_of_content = {content: row for row, content in enumerate(dict.fromkeys(contents.values()))}
    diagnosis_index = {key: row_of_content[contents[key]] for key in keys}
    n_keys = len(row_of_content)
    pw, dw, rw, cw = (_words(len(v.ids)) for v in (pdgprop, dgprop, procpr, categories))
    key_known = np.array([props is not None for props, _ in row_of_content], np.bool_)
    key_mdc = np.full(n_keys, NONE, np.int16)
    key_dgcat = np.full(n_keys, NONE, np.int16)
    key_pdgprop, key_dgprop, key_sdgprop = _bits(n_keys, pw), _bits(n_keys, dw), _bits(n_keys, dw)
    key_procpr, key_compl, key_excluded_from = _bits(n_keys, rw), _bits(n_keys, cw), _bits(n_keys, cw)
    key_or = np.zeros(n_keys, np.int8)
    for row, (props, excluded) in enumerate(row_of_content):
        for category in excluded:
            _set(key_excluded_from, row, categories.ids[category])
        if props is None:
            continue
        key_mdc[row] = mdc.get(props.mdc)
        key_dgcat[row] = dgcat.get(props.dgcat)
        key_or[row] = _or_bits(props.or_values)
        for value in props.pdgprop:
            _set(key_pdgprop, row, pdgprop.ids[value])
        for value in props.dgprop:
            _set(key_dgprop, row, dgprop.ids[value])
        for value in props.sdgprop:
            _set(key_sdgprop, row, dgprop.ids[value])
        for value in props.procpr:
            _set(key_procpr, row, procpr.ids[value])
        for value in props.compl:
            _set(key_compl, row, categories.ids[value])

    mdc_by_sex, dgcat_by_sex = _by_sex_ids(mdc), _by_sex_ids(dgcat)

    # procedures with the same properties share a row too (9 700 codes, about 1 400 rows)
    procedure_rows = {props: row for row, props in enumerate(dict.fromkeys(tables.procedures.values()))}
    procedure_index = {code: procedure_rows[props] for code, props in tables.procedures.items()}
    proc_or = np.zeros(len(procedure_rows), np.int8)
    proc_cc = np.zeros(len(procedure_rows), np.int8)
    proc_procpr, proc_dgprop = _bits(len(procedure_rows), rw), _bits(len(procedure_rows), dw)
    for properties, row in procedure_rows.items():
        proc_or[row], proc_cc[row] = _or_bits(properties.or_values), properties.cc
        for value in properties.procpr:
            _set(proc_procpr, row, procpr.ids[value])
        for value in properties.dgprop:
            _set(proc_dgprop, row, dgprop.ids[value])

    category_codes = categories.values()
    category_level = np.array([2 if code[2:3] == "G" else 1 for code in category_codes] or [1], np.int8)
    category_inactive = np.array([code[2:3] == "I" for code in category_codes] or [False], np.bool_)
    category_activators = _bits(max(1, len(category_codes)), dw)
    for row, code in enumerate(category_codes):
        info = tables.complication_categories.get(code)
        for value in info.activating_dgprop if info else ():
            _set(category_activators, row, dgprop.ids[value])

    rules = tables.rules
    n = len(rules)

    def column(values, dtype=np.int16) -> np.ndarray:
        return np.array(list(values), dtype=dtype).reshape(n)

    def limit(value: Limit | None) -> tuple[int, int]:
        return (LIMIT_OPS[value.op], value.days) if value else (0, 0)

    def bit_of(vocabulary: _Vocabulary, value: str) -> int:
        return vocabulary.get(value)

    rule_dgprop = np.full((n, 4), NONE, np.int16)
    rule_dgprop_negated = np.zeros((n, 4), np.bool_)
    secpro_kind = np.zeros(n, np.int8)
    secpro = np.full(n, NONE, np.int16)
    for row, rule in enumerate(rules):
        for slot, value in enumerate(rule.dgprop[:4]):
            negated = value.startswith("-")
            bit = dgprop.get(value.lstrip("-"))
            # "must not carry X" where no code carries X always holds: no condition at all
            rule_dgprop[row, slot] = NONE if negated and bit == NEVER else bit
            rule_dgprop_negated[row, slot] = negated
        if rule.secpro == "+":
            secpro_kind[row] = SECPRO_OR1
        elif rule.secpro == "-":
            secpro_kind[row] = SECPRO_NO_OR1
        elif rule.secpro.startswith("-"):
            bit = procpr.get(rule.secpro[1:])
            if bit != NEVER:
                secpro_kind[row], secpro[row] = SECPRO_HAS_NOT, bit
        elif rule.secpro:
            secpro_kind[row], secpro[row] = SECPRO_HAS, procpr.get(rule.secpro)

    rule_icd = column((ICD_CONDITIONS.get(r.icd, 3) if r.icd else 0 for r in rules), np.int8)
    rule_mdc = column(bit_of(mdc, r.mdc) for r in rules)
    rule_dgcat = column(bit_of(dgcat, r.dgcat) for r in rules)
    rule_pdgprop = column(bit_of(pdgprop, r.pdgprop) for r in rules)
    rule_or = column((OR_CONDITIONS.get(r.or_proc, 9) if r.or_proc else 0 for r in rules), np.int8)
    rule_compl = column((int(r.compl) if r.compl.isdigit() else 9 if r.compl else 0 for r in rules), np.int8)
    rule_sex = column((SEX_CONDITIONS.get(r.sex, 9) if r.sex else 0 for r in rules), np.int8)
    rule_discharge = column((DISCHARGE_CONDITIONS.get(r.disch, 9) if r.disch else 0 for r in rules), np.int8)
    conditions = {"icd": rule_icd, "or_proc": rule_or, "sex": rule_sex, "disch": rule_discharge, "secpro": secpro_kind}
    rule_needs = np.zeros(n, np.int32)
    for name, condition in conditions.items():
        for row, value in enumerate(condition.tolist()):
            if value and not (name == "secpro" and value in (SECPRO_HAS, SECPRO_HAS_NOT)):  # those read the state
                rule_needs[row] |= _NEEDS[name].get(value, EPISODE_NEVER)
    key_signature, signature_rules, variant_rules = _signatures(
        key_known, key_mdc, key_dgcat, key_pdgprop, mdc_by_sex, dgcat_by_sex,
        rule_icd, rule_mdc, rule_dgcat, rule_pdgprop, rule_or, rule_compl,
    )  # fmt: skip
    rule_procpro = column(bit_of(procpr, r.procpro) for r in rules)
    # The kernel keeps one bitset per episode, its *state*: the DGPROP values its codes carry, their
    # PROCPR values, the PROCPR values of its procedures alone (what secpro reads), then the rules
    # its codes make candidates. Rule columns name state bits directly.
    procpr_bit, procedure_procpr_bit, state_rules_word = dw * 64, (dw + rw) * 64, dw + 2 * rw
    rule_procpro = np.where(rule_procpro >= 0, rule_procpro + procpr_bit, rule_procpro).astype(np.int16)
    has_bit = ((secpro_kind == SECPRO_HAS) | (secpro_kind == SECPRO_HAS_NOT)) & (secpro >= 0)
    secpro = np.where(has_bit, secpro + procedure_procpr_bit, secpro).astype(np.int16)
    no_procpr = np.zeros_like(key_procpr)
    diagnosis = (key_dgprop, key_procpr, no_procpr)
    first_secondary = (key_sdgprop, no_procpr, no_procpr)
    procedure = (proc_dgprop, proc_procpr, proc_procpr)
    # key atoms: the state bits below the rules, then "an OR=1 procedure after the first"
    carried = sum(_unpack(np.hstack(bits)).sum(0) for bits in (diagnosis, first_secondary, procedure))
    carriers = np.append(carried, (proc_or & OR_1 != 0).sum())
    unkeyed_rules, keyed_rules = _keys(rule_dgprop, rule_dgprop_negated, rule_procpro, secpro_kind, secpro, carriers)
    key_state = _state_rows(diagnosis, keyed_rules)
    first_secondary_state = _state_rows(first_secondary, keyed_rules)
    procedure_state = _state_rows(procedure, keyed_rules)
    key_category_bits = _unpack(key_compl)
    key_record = _record(
        KEY_FIELDS,
        {
            KEY_KNOWN: key_known,
            KEY_MDC: key_mdc,
            KEY_DGCAT: key_dgcat,
            KEY_OR: key_or,
            KEY_SIGNATURE: key_signature,
            KEY_STATE: _ranges(key_state[0]),
            KEY_FIRST_SECONDARY: _ranges(first_secondary_state[0]),
            KEY_CATEGORIES: _ranges(np.concatenate([[0], np.cumsum(key_category_bits.sum(1))])),
        },
    )
    procedure_record = _record(
        PROCEDURE_FIELDS,
        {PROCEDURE_OR: proc_or, PROCEDURE_CC: proc_cc, PROCEDURE_STATE: _ranges(procedure_state[0])},
    )
    # `secpro +` sets no property bit, only the rules it keys (the last atom)
    secondary_or1_state = _sparse_rows(np.hstack([np.zeros((1, state_rules_word), np.uint64), keyed_rules[-1:]]))
    signature_rules = _sparse_rows(signature_rules)
    rule_words = len(unkeyed_rules)
    ages = [limit(rule.agelim) for rule in rules]
    durations = [limit(rule.dur) for rule in rules]
    age_breaks, age_rules = _limit_bands(ages)
    duration_breaks, duration_rules = _limit_bands(durations)
    return CompiledTables(
        source_hash=tables.release.source_hash,
        diagnosis_index=diagnosis_index,
        procedure_index=procedure_index,
        mdc_values=mdc.values(),
        dgcat_values=dgcat.values(),
        dgprop_values=dgprop.values(),
        categories=category_codes,
        key_record=key_record,
        key_pdgprop=key_pdgprop,
        key_state_entries=key_state[1],
        first_secondary_entries=first_secondary_state[1],
        key_categories=key_category_bits.nonzero()[1].astype(np.int32),
        key_excluded_from=key_excluded_from,
        mdc_by_sex=mdc_by_sex,
        dgcat_by_sex=dgcat_by_sex,
        procedure_record=procedure_record,
        procedure_state_entries=procedure_state[1],
        secondary_or1_state=secondary_or1_state,
        state_words=state_rules_word + rule_words,
        state_rules_word=state_rules_word,
        category_level=category_level,
        category_inactive=category_inactive,
        category_activators=category_activators,
        rule_record=_record(
            RULE_FIELDS,
            {
                RULE_NEEDS: rule_needs,
                RULE_MDC: rule_mdc,
                RULE_DGCAT: rule_dgcat,
                RULE_PDGPROP: rule_pdgprop,
                RULE_COMPL: rule_compl,
                RULE_PROCPRO: rule_procpro,
                RULE_SECPRO_KIND: secpro_kind,
                RULE_SECPRO: secpro,
                RULE_AGE_OP: column((a[0] for a in ages), np.int8),
                RULE_AGE: column((a[1] for a in ages), np.int32),
                RULE_DURATION_OP: column((d[0] for d in durations), np.int8),
                RULE_DURATION: column((d[1] for d in durations), np.int32),
                RULE_DGPROP: rule_dgprop,
                RULE_DGPROP_NEGATED: rule_dgprop_negated,
            },
        ),
        signature_rules=signature_rules,
        variant_rules=variant_rules,
        age_breaks=age_breaks,
        age_rules=age_rules,
        duration_breaks=duration_breaks,
        duration_rules=duration_rules,
        unkeyed_rules=unkeyed_rules,
    )


def _ranges(offsets: np.ndarray) -> np.ndarray:
    """CSR row offsets as [rows, 2] (start, end): the two record fields of a row range."""
    return np.stack([offsets[:-1], offsets[1:]], axis=1)


def _record(fields: int, columns: dict[int, np.ndarray]) -> np.ndarray:
    """Columns side by side as int32 record rows, each from its field on; an [n, k] column fills k fields."""
    n = len(next(iter(columns.values())))
    record = np.zeros((n, fields), np.int32)
    for field, values in columns.items():
        values = values.reshape(n, -1)
        record[:, field : field + values.shape[1]] = values
    return record


#: The kernel narrows the rules to read with an AND of bitsets over the rule rows: the principal
#: diagnosis' *signature* (known, MDC, DGCAT, PDGPROP: the principal-only columns), the episode's
#: *variant* (which OR values its codes carry × its CC level: the or_proc and compl columns), its
#: age and duration *bands*, and *key atoms*: every rule that needs some code property (a positive
#: dgprop, procpro or secpro value, or `secpro +`) is keyed by the one the fewest codes carry, and
#: stays a candidate only when a code of the episode carries it. Only the survivors are checked
#: column by column.
OR_CLASSES, CC_LEVELS = 4, 3
VARIANTS = OR_CLASSES * CC_LEVELS


def _pack(mask: np.ndarray) -> np.ndarray:
    """A boolean mask over rule rows as uint64 words, bit `r & 63` of word `r >> 6` for row r."""
    words = _words(len(mask))
    packed = np.packbits(mask, bitorder="little")
    return np.concatenate([packed, np.zeros(words * 8 - len(packed), np.uint8)]).view("<u8").astype(np.uint64)


def _sparse_rows(bitsets: np.ndarray) -> SparseRows:
    """[rows, words] bitsets as CSR rows of their non-zero words (see `SparseRows`)."""
    rows, words = np.nonzero(bitsets)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(bitsets)))]).astype(np.int64)
    return offsets, np.stack([words.astype(np.uint64), bitsets[rows, words]], axis=1)


def _state_rows(bitsets: tuple[np.ndarray, ...], keyed_rules: np.ndarray) -> SparseRows:
    """What each code adds to the episode state: its bitsets, then the rules its atoms key."""
    state = np.hstack(bitsets)
    atoms = _unpack(state).astype(np.bool_)
    rules = np.zeros((len(state), keyed_rules.shape[1]), np.uint64)
    for atom in np.flatnonzero(keyed_rules[:-1].any(1) & atoms.any(0)):
        rules[atoms[:, atom]] |= keyed_rules[atom]
    return _sparse_rows(np.hstack([state, rules]))


def _unpack(bits: np.ndarray) -> np.ndarray:
    """A [rows, words] bitset as [rows, words * 64] zeros and ones."""
    return np.unpackbits(bits.astype("<u8").view(np.uint8).reshape(len(bits), -1), axis=1, bitorder="little")


def _keys(rule_dgprop, rule_dgprop_negated, rule_procpro, secpro_kind, secpro, carriers: np.ndarray):
    """Key each rule by the required atom that the fewest codes carry; rules that need none are unkeyed.

    The atoms are the state bits below the rules (DGPROP for dgprop, PROCPR for procpro, the
    procedures' PROCPR for secpro) and a last one for `secpro +`. Returns the unkeyed rules and, per
    atom, the rules it keys (both as rule bitsets).
    """
    secondary_or1_atom = len(carriers) - 1
    n_rules = len(rule_procpro)
    unkeyed = np.zeros(n_rules, np.bool_)
    keyed = np.zeros((len(carriers), n_rules), np.bool_)
    for row in range(n_rules):
        dgprop_values = zip(rule_dgprop[row], rule_dgprop_negated[row], strict=True)
        required = [int(bit) for bit, negated in dgprop_values if not negated and bit != NONE]  # NEVER included
        if rule_procpro[row] != NONE:
            required.append(int(rule_procpro[row]))
        if secpro_kind[row] == SECPRO_HAS:
            required.append(int(secpro[row]))
        elif secpro_kind[row] == SECPRO_OR1:
            required.append(secondary_or1_atom)
        if NEVER in required:
            continue  # needs a value no code carries: no episode reaches the rule
        if required:
            keyed[min(required, key=lambda atom: carriers[atom]), row] = True
        else:
            unkeyed[row] = True
    return _pack(unkeyed), np.array([_pack(atom_rules) for atom_rules in keyed])


def _limit_bands(limits: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Cut the values at every point where some rule's limit changes truth; per band, the rules whose
    limit holds, and a last band for an unknown value, which meets no limit.

    A value's band is the number of breaks at or below it (`np.searchsorted(breaks, value, "right")`).
    """
    op = np.array([o for o, _ in limits], np.int8)
    days = np.array([d for _, d in limits], np.int64)
    # `< d` holds below d, `> d` from d + 1 on
    breaks = np.unique(np.concatenate([days[op == LIMIT_OPS["<"]], days[op == LIMIT_OPS[">"]] + 1]))
    representatives = np.concatenate([[breaks[0] - 1] if len(breaks) else [0], breaks])
    bands = [
        _pack((op == 0) | ((op == LIMIT_OPS["<"]) & (value < days)) | ((op == LIMIT_OPS[">"]) & (value > days)))
        for value in representatives
    ]
    bands.append(_pack(op == 0))
    return breaks.astype(np.int32), np.array(bands)


def _signatures(
    key_known,
    key_mdc,
    key_dgcat,
    key_pdgprop,
    mdc_by_sex,
    dgcat_by_sex,
    rule_icd,
    rule_mdc,
    rule_dgcat,
    rule_pdgprop,
    rule_or,
    rule_compl,
):
    """Group principal diagnoses by what the principal-only rule columns read; per group, the rules
    whose icd, mdc, dgcat and pdgprop columns can hold, and per variant those whose or_proc and
    compl columns can."""
    n_rules = len(rule_icd)
    variant_rules = []
    for or_class in range(OR_CLASSES):
        has1, has2 = bool(or_class & 1), bool(or_class & 2)
        or_ok = (
            (rule_or == 0)
            | ((rule_or == 1) & has1)
            | ((rule_or == 2) & (has1 or has2))
            | ((rule_or == 3) & (not has1))
            | ((rule_or == 4) & (not has1) & (not has2))
        )
        for cc in range(CC_LEVELS):
            variant_rules.append(_pack(or_ok & (rule_compl <= cc)))
    signatures: dict[tuple, int] = {}
    signature_rules: list[np.ndarray] = []

    def principal_ok(known: bool, mdc_id: int, dgcat_id: int, pdgprop_words: np.ndarray) -> np.ndarray:
        icd_ok = (rule_icd == 0) | ((rule_icd == 1) & known) | ((rule_icd == 2) & (not known))
        mdc_ok = (rule_mdc == NONE) | (rule_mdc == mdc_id)
        dgcat_ok = (rule_dgcat == NONE) | (rule_dgcat == dgcat_id)
        bits = np.where(rule_pdgprop >= 0, rule_pdgprop, 0).astype(np.int64)
        has = ((pdgprop_words[bits >> 6] >> (bits & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)
        pdgprop_ok = (rule_pdgprop == NONE) | ((rule_pdgprop >= 0) & has)
        return icd_ok & mdc_ok & dgcat_ok & pdgprop_ok

    def signature_of(known: bool, mdc_id: int, dgcat_id: int, pdgprop_words: np.ndarray) -> int:
        key = (known, mdc_id, dgcat_id, pdgprop_words.tobytes())
        if key not in signatures:
            signatures[key] = len(signature_rules)
            signature_rules.append(_pack(principal_ok(known, mdc_id, dgcat_id, pdgprop_words)))
        return signatures[key]

    empty = np.zeros(key_pdgprop.shape[1], np.uint64)
    assert signature_of(False, NONE, NONE, empty) == NO_PRINCIPAL_SIGNATURE
    signature_rules.append(_pack(np.ones(n_rules, np.bool_)))  # ALL_RULES_SIGNATURE
    key_signature = np.zeros((len(key_known), 3), np.int32)
    for row in range(len(key_known)):
        for sex in range(3):
            mdc_id = mdc_by_sex[key_mdc[row], sex] if key_mdc[row] >= 0 else NONE
            dgcat_id = dgcat_by_sex[key_dgcat[row], sex] if key_dgcat[row] >= 0 else NONE
            words = key_pdgprop[row] if key_known[row] else empty
            key_signature[row, sex] = signature_of(bool(key_known[row]), int(mdc_id), int(dgcat_id), words)
    return key_signature, np.array(signature_rules), np.array(variant_rules)


def diagnosis_rows(compiled: CompiledTables, dagger: str, asterisk: str) -> tuple[int, int, int]:
    """The key rows one written diagnosis reads: (pair row, asterisk or single code, dagger)."""
    index = compiled.diagnosis_index
    if not asterisk:
        return NONE, index.get((dagger, NO_DAGGER), NONE), NONE
    return (
        index.get((asterisk, dagger), NONE),
        index.get((asterisk, NO_DAGGER), NONE),
        index.get((dagger, NO_DAGGER), NONE),
    )
