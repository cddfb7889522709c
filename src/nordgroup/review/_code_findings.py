"""Findings about the written codes: each distinct code judged once (`_CodeFacts`), block lists,
unspecified and symptom principals, combinations, principal choice, procedures.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.review._columns import _first_per_row, as_dates, list_offsets
from nordgroup.review._columns import distinct as _distinct
from nordgroup.review._columns import repeat_text as _repeat
from nordgroup.review.blocklist import (
    ASTERISK,
    BlockEntry,
    BlockList,
    asterisk_codes,
)
from nordgroup.review.kinds import _OK_RTC, _Part, error_drgs
from nordgroup.tables.model import NO_DAGGER, DrgTables, Rule

_DIAGNOSIS_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")


_PROCEDURE_SHAPE = re.compile(r"^[A-Z0-9]{3,8}$")


_NO_LIMIT = np.iinfo(np.int64).max


# Validation rules read per code: conditions on the code itself plus age/sex, nothing else.
_CODE_CONDITIONS = {"icd", "mdc", "dgcat", "pdgprop", "agelim", "sex"} | {f"dgprop{i}" for i in range(1, 5)}


_SEX_ONLY_MDC = {"12": 1, "13": 2}


_EPOCH = datetime.date(1970, 1, 1)  # male and female reproductive system


class _CodeFacts:
    """Judgements of distinct written codes against one table year and one block list."""

    valid: _BlockValidity

    def __init__(self, tables: DrgTables, block_list: BlockList, other_years: Sequence[DrgTables]):
        self.tables = tables
        self.block_list = block_list
        self.year = tables.release.label
        self.asterisks = asterisk_codes(tables.diagnoses)
        self.single_codes = {code for code, dagger in tables.diagnoses if dagger == NO_DAGGER}
        self.categories: dict[str, list[str]] = {}
        for code in sorted(self.single_codes | set(tables.procedures)):
            self.categories.setdefault(code[:3], []).append(code)
        self.other_years: dict[str, str] = {}
        for other in other_years:
            for code in {code for code, _ in other.diagnoses} | set(other.procedures):
                self.other_years.setdefault(code, other.release.label)
        errors = error_drgs(tables)
        self.validation = [rule for rule in tables.rules if _is_code_validation(rule, errors)]
        self.validation_values = frozenset(
            value for rule in self.validation for value in (rule.mdc, rule.dgcat, rule.pdgprop, *rule.dgprop) if value
        )

    def diagnoses(self, distinct: list[str]) -> dict[str, np.ndarray]:
        """Per distinct written diagnosis (plus a last entry for null/blank), every judgement."""
        size = len(distinct) + 1
        out = {
            "code": np.full(size, "", object),
            "status": np.zeros(size, np.int8),  # 0 ok, 1 unknown, 2 other year, 3 malformed, 4 blank
            "status_text": np.full(size, "", object),
            "category": np.full(size, "", object),
            "symptom": np.zeros(size, bool),
            "unspecified": np.zeros(size, bool),
            "can_be_principal": np.zeros(size, bool),
            "sex_only": np.zeros(size, np.int8),
            "min_age": np.zeros(size, np.int64),
            "max_age": np.full(size, _NO_LIMIT, np.int64),
            "sex_text": np.full(size, "", object),
            "age_text": np.full(size, "", object),
        }
        out["status"][-1] = 4
        combinations = self.block_list.by_role("combination")
        out["combination"] = np.zeros((len(combinations), 2, size), bool)
        principal_rules = self.block_list.by_role("principal", "any")
        secondary_rules = self.block_list.by_role("secondary", "any")
        out["principal_match"] = np.zeros((len(principal_rules), size), bool)
        out["secondary_match"] = np.zeros((len(secondary_rules), size), bool)
        for position, text in enumerate(distinct):
            dagger, asterisk, _ = split_written_diagnosis(text)
            if not dagger and not asterisk:
                out["status"][position] = 4
                continue
            main = dagger or asterisk
            parts = [code for code in (dagger, asterisk) if code]
            out["code"][position] = f"{dagger} {asterisk}" if asterisk else main
            out["category"][position] = main[:3]
            status, status_text = self._diagnosis_status(dagger, asterisk)
            out["status"][position] = status
            out["status_text"][position] = status_text
            symptom = main[:1] == "R" and main[1:3].isdigit()
            unspecified = len(main) >= 4 and main[3] == "9"
            out["symptom"][position] = symptom
            out["unspecified"][position] = unspecified
            alone_asterisk = not asterisk and main in self.asterisks
            for key, rules in (("principal_match", principal_rules), ("secondary_match", secondary_rules)):
                for index, entry in enumerate(rules):
                    out[key][index, position] = any(entry.matches(c, alone_asterisk=alone_asterisk) for c in parts)
            blocked = bool(out["principal_match"][:, position].any())  # by some entry, whatever its dates
            properties = self.tables.diagnoses.get((asterisk, dagger) if asterisk else (main, NO_DAGGER))
            out["can_be_principal"][position] = (
                status == 0
                and not symptom
                and not unspecified
                and not blocked
                and properties is not None
                and properties.mdc not in ("", "99")
            )
            for index, entry in enumerate(combinations):
                out["combination"][index, 0, position] = any(
                    entry.matches(code, alone_asterisk=alone_asterisk) for code in parts
                )
                out["combination"][index, 1, position] = any(
                    entry.partner_matches(code, alone_asterisk=alone_asterisk) for code in parts
                )
            if properties is not None and (
                properties.mdc in _SEX_ONLY_MDC
                or {properties.mdc, properties.dgcat} & self.validation_values
                or properties.pdgprop & self.validation_values
                or properties.dgprop & self.validation_values
            ):
                self._limits(properties, position, out)
        return out

    def procedures(self, distinct: list[str]) -> dict[str, np.ndarray]:
        size = len(distinct) + 1
        blocked = self.block_list.by_role("principal", "any", target="procedure")
        out = {
            "code": np.full(size, "", object),
            "status": np.full(size, 4, np.int8),
            "status_text": np.full(size, "", object),
            "block_match": np.zeros((len(blocked), size), bool),
        }
        for position, text in enumerate(distinct):
            code = clean_written_code(text).cleaned
            if not code:
                continue
            out["code"][position] = code
            for index, entry in enumerate(blocked):
                out["block_match"][index, position] = entry.matches(code)
            if code in self.tables.procedures:
                out["status"][position] = 0
            elif not _PROCEDURE_SHAPE.match(code):
                out["status"][position], out["status_text"][position] = (
                    3,
                    f"{text!r} is not shaped like a procedure code",
                )
            else:
                out["status"][position], out["status_text"][position] = self._unknown(code, "procedure")
        return out

    def _diagnosis_status(self, dagger: str, asterisk: str) -> tuple[int, str]:
        for code in (dagger, asterisk):
            if code and not _DIAGNOSIS_SHAPE.match(code):
                return 3, f"{code!r} is not shaped like an ICD-10 code"
        if not asterisk:
            return (0, "") if dagger in self.single_codes else self._unknown(dagger, "diagnosis")
        if (asterisk, dagger) in self.tables.diagnoses:
            return 0, ""
        for code in (dagger, asterisk):
            if code not in self.single_codes:
                return self._unknown(code, "diagnosis")
        return 0, ""

    def _unknown(self, code: str, what: str) -> tuple[int, str]:
        if code in self.other_years:
            return 2, f"{what} {code} is in the {self.other_years[code]} tables but not in {self.year}"
        siblings = self.categories.get(code[:3], [])
        longer = [sibling for sibling in siblings if sibling.startswith(code) and sibling != code]
        if longer:
            return 1, f"{what} {code} is not a terminal code in {self.year}; more specific: {', '.join(longer[:4])}"
        if siblings:
            return 1, f"{what} {code} is not in {self.year}; its category {code[:3]} has {', '.join(siblings[:4])}"
        return 1, f"{what} {code} is not in the {self.year} tables"

    def _limits(self, properties, position: int, out: dict[str, np.ndarray]) -> None:
        sex_reasons, age_reasons = [], []
        sex_only = _SEX_ONLY_MDC.get(properties.mdc, 0)
        if sex_only:
            out["sex_only"][position] = sex_only
            sex_reasons.append(f"MDC {properties.mdc} is for {'male' if sex_only == 1 else 'female'} patients")
        for rule in self.validation:
            if not _code_part_holds(rule, properties):
                continue
            if rule.agelim is not None and rule.agelim.op == "<":
                out["min_age"][position] = max(out["min_age"][position], rule.agelim.days)
                age_reasons.append(f"rule {rule.id}: age under {rule.agelim.days} days is not accepted")
            elif rule.agelim is not None:
                out["max_age"][position] = min(out["max_age"][position], rule.agelim.days)
                age_reasons.append(f"rule {rule.id}: age over {rule.agelim.days} days is not accepted")
            if rule.sex in ("M", "F", "1", "2"):
                # a validation rule names the sex that the code does *not* fit
                out["sex_only"][position] = 2 if rule.sex in ("M", "1") else 1
                sex_reasons.append(f"rule {rule.id}: not for sex {rule.sex}")
        code = out["code"][position]
        out["sex_text"][position] = f"{code} does not fit the patient's sex: {'; '.join(sex_reasons)}"
        out["age_text"][position] = f"{code} does not fit the patient's age: {'; '.join(age_reasons)}"


def _is_code_validation(rule: Rule, error_drg_set: frozenset[str]) -> bool:
    conditions = set(rule.conditions())
    return (
        rule.drg in error_drg_set
        and rule.rtc not in _OK_RTC
        and (rule.agelim is not None or rule.sex != "")
        and conditions <= _CODE_CONDITIONS
        and bool(conditions & ({"mdc", "dgcat", "pdgprop"} | {f"dgprop{i}" for i in range(1, 5)}))
        and not any(value.startswith("-") for value in rule.dgprop)
    )


def _code_part_holds(rule: Rule, properties) -> bool:
    return (
        (not rule.mdc or rule.mdc == properties.mdc)
        and (not rule.dgcat or rule.dgcat == properties.dgcat)
        and (not rule.pdgprop or rule.pdgprop in properties.pdgprop)
        and all(value in properties.dgprop for value in rule.dgprop)
    )


def _diagnosis_findings(table: pa.Table, grouped: pa.Table, facts: _CodeFacts) -> list[_Part]:
    n = len(table)
    offsets, values = list_offsets(table.column("diagnoses"))
    indices, distinct = _distinct(values)
    judged = facts.diagnoses(distinct)
    counts = np.diff(offsets)
    row_of = np.repeat(np.arange(n), counts)
    is_principal = np.zeros(len(indices), bool)
    is_principal[offsets[:-1][counts > 0]] = True
    code = pa.array(judged["code"], pa.string())
    parts: list[_Part] = []

    def part(mask: np.ndarray, kind: str, severity, field, text: pa.Array) -> None:
        elements = np.flatnonzero(mask)
        if len(elements):
            taken = pa.array(indices[elements])
            # severity or field None: the words depend on the position, principal or secondary
            position = pa.array(is_principal[elements].astype(np.int32))
            severity = severity if isinstance(severity, str) else _words(position, ("warning", "error"))
            field = (
                field if isinstance(field, str) else _words(position, ("secondary diagnosis", "principal diagnosis"))
            )
            parts.append(_Part(row_of[elements], kind, severity, field, code.take(taken), text.take(taken)))

    status = judged["status"][indices]
    status_text = pa.array(judged["status_text"], pa.string())
    for value, kind in ((3, "malformed_code"), (1, "unknown_code"), (2, "code_not_valid_in_year")):
        part(status == value, kind, None, None, status_text)

    for kind, rules, position_mask, severity, what in (
        ("blocked_principal", facts.block_list.by_role("principal", "any"), is_principal, "error", "principal"),
        ("blocked_secondary", facts.block_list.by_role("secondary", "any"), ~is_principal, "warning", "secondary"),
    ):
        match = judged[f"{what}_match"]
        parts += _block_parts(
            kind, severity, f"{what} diagnosis", rules, match, indices, row_of, position_mask, code, facts.valid
        )
    parts += _combination_findings(judged, indices, row_of, n, code, facts.block_list, facts.valid)
    parts += _principal_choice_findings(judged, indices, row_of, is_principal, offsets, code)

    # Validation findings the grouper already reports through its return code are not repeated.
    rtc_ok = pc.is_in(pc.fill_null(grouped.column("rtc"), ""), pa.array(list(_OK_RTC))).to_numpy(zero_copy_only=False)
    sex = pc.fill_null(table.column("sex"), 0).to_numpy()[row_of]
    age = pc.fill_null(table.column("age_days"), -1).to_numpy()[row_of]
    sex_only = judged["sex_only"][indices]
    reported = rtc_ok[row_of] | ~is_principal
    sex_conflict = (sex_only != 0) & np.isin(sex, (1, 2)) & (sex != sex_only) & reported
    age_conflict = (age >= 0) & ((age < judged["min_age"][indices]) | (age > judged["max_age"][indices])) & reported
    part(sex_conflict, "implausible_age_sex", "warning", None, pa.array(judged["sex_text"], pa.string()))
    part(
        age_conflict & ~sex_conflict, "implausible_age_sex", "warning", None, pa.array(judged["age_text"], pa.string())
    )

    # The same written diagnosis twice in one episode (distinct index + row identifies it).
    key = row_of.astype(np.int64) * (len(distinct) + 1) + indices
    _, first = np.unique(key, return_index=True)
    repeated = np.ones(len(key), bool)
    repeated[first] = False
    repeated &= judged["status"][indices] != 4
    part(
        repeated,
        "duplicate_code",
        "info",
        "diagnoses",
        pa.array([f"{c} is written more than once" for c in judged["code"]]),
    )
    return parts


def _block_parts(kind, severity, field, rules, match, indices, row_of, position_mask, code, valid) -> list[_Part]:
    """Elements in the position a block-list entry names, matched by its first entry valid on the
    episode's date (entries in layer order); the text names the entry's layer, file and line."""
    chosen = np.full(len(indices), -1, np.int64)
    for index, entry in enumerate(rules):
        hit = (chosen < 0) & position_mask & match[index][indices]
        if hit.any():
            hit &= valid.rows(entry)[row_of]
            chosen[hit] = index
    elements = np.flatnonzero(chosen >= 0)
    if not len(elements):
        return []
    texts = pa.array([f" {_block_phrase(entry, field)}: {_block_text(entry)}" for entry in rules], pa.string())
    codes = code.take(pa.array(indices[elements]))
    text = pc.binary_join_element_wise(codes, texts.take(pa.array(chosen[elements])), "")
    return [_Part(row_of[elements], kind, severity, field, codes, text)]


def _block_phrase(entry: BlockEntry, field: str) -> str:
    if entry.target == "procedure":
        return "must not be the first procedure" if entry.role == "principal" else "must not be coded"
    return f"must not be {field}"


def _block_text(entry: BlockEntry) -> str:
    shown = "asterisk code written alone" if entry.pattern == ASTERISK else entry.pattern
    return f"{entry.reason} (block list: {shown}, {entry.where})"


class _BlockValidity:
    """Which episodes a dated block-list entry applies to: by `date_column` when given (an episode
    without a date: every entry), else by whether the entry's validity overlaps the tables' year."""

    def __init__(self, table: pa.Table, date_column: str | None, year: int | None):
        self.n = len(table)
        self.year = year
        self.days: np.ndarray | None = None
        if date_column is not None:
            if date_column not in table.column_names:
                raise ValueError(f"date column {date_column!r} is not among {', '.join(table.column_names)}")
            dates = as_dates(table.column(date_column), date_column)
            self.days = pc.fill_null(pc.cast(dates, pa.int32()), np.iinfo(np.int32).min).to_numpy(zero_copy_only=False)

    def rows(self, entry: BlockEntry) -> np.ndarray:
        if not entry.dated:
            return np.ones(self.n, bool)
        if self.days is None:
            return np.full(self.n, entry.valid_in_year(self.year))
        undated = self.days == np.iinfo(np.int32).min
        low = (entry.valid_from - _EPOCH).days if entry.valid_from else np.iinfo(np.int32).min
        high = (entry.valid_to - _EPOCH).days if entry.valid_to else np.iinfo(np.int32).max
        return undated | ((self.days >= low) & (self.days <= high))


def _combination_findings(judged, indices, row_of, n, code, block_list, valid) -> list[_Part]:
    parts = []
    for index, entry in enumerate(block_list.by_role("combination")):
        first_side = judged["combination"][index, 0][indices]
        second_side = judged["combination"][index, 1][indices]
        either = np.bincount(row_of[first_side | second_side], minlength=n)
        has_first = np.bincount(row_of[first_side], minlength=n) > 0
        has_second = np.bincount(row_of[second_side], minlength=n) > 0
        rows = np.flatnonzero(has_first & has_second & (either >= 2))
        rows = rows[valid.rows(entry)[rows]]
        if len(rows):
            # name the episode's first code of the pair
            element = _first_per_row(first_side, row_of, n)[rows]
            text = f"{entry.pattern} together with {entry.partner}: {entry.reason} (block list: {entry.where})"
            parts.append(
                _Part(
                    rows,
                    "blocked_combination",
                    "warning",
                    "diagnoses",
                    code.take(pa.array(indices[element])),
                    _repeat(text, len(rows)),
                )
            )
    return parts


def _principal_choice_findings(judged, indices, row_of, is_principal, offsets, code) -> list[_Part]:
    """Symptom and unspecified principal diagnoses, each with the secondary that could replace it."""
    n = len(offsets) - 1
    counts = np.diff(offsets)
    principal_of_row = np.full(n, len(judged["status"]) - 1)
    principal_of_row[counts > 0] = indices[offsets[:-1][counts > 0]]
    category_codes, category = np.unique(judged["category"].astype(str), return_inverse=True)
    del category_codes
    same_category = category[indices] == category[principal_of_row[row_of]]
    specific = ~judged["unspecified"][indices] & ~judged["symptom"][indices] & (judged["status"][indices] == 0)
    better_same = _first_per_row(~is_principal & same_category & specific, row_of, n)
    better_any = _first_per_row(~is_principal & judged["can_be_principal"][indices], row_of, n)
    parts = []
    for kind, flag, what in (
        ("symptom_principal", "symptom", "is a symptom code (R00-R99)"),
        ("unspecified_principal", "unspecified", "is unspecified (4th character 9)"),
    ):
        rows = np.flatnonzero(judged[flag][principal_of_row] & (counts > 0))
        if not len(rows):
            continue
        principal = code.take(pa.array(principal_of_row[rows]))
        same, other = better_same[rows], better_any[rows]
        alternative = np.where(same >= 0, same, other)
        alternative_code = code.take(pa.array(indices[np.maximum(alternative, 0)] if len(indices) else alternative))
        tail = pc.if_else(
            pa.array(same >= 0),
            pc.binary_join_element_wise("; secondary ", alternative_code, " of the same category is more specific", ""),
            pc.if_else(
                pa.array(other >= 0),
                pc.binary_join_element_wise("; secondary ", alternative_code, " could be principal", ""),
                pa.scalar("; no secondary diagnosis could replace it"),
            ),
        )
        text = pc.binary_join_element_wise(principal, pa.scalar(f" {what} as principal diagnosis"), tail, "")
        severity = pc.if_else(pa.array(alternative >= 0), pa.scalar("warning"), pa.scalar("info"))
        parts.append(_Part(rows, kind, severity, "principal diagnosis", principal, text))
    return parts


def _procedure_findings(table: pa.Table, facts: _CodeFacts) -> list[_Part]:
    offsets, values = list_offsets(table.column("procedures"))
    indices, distinct = _distinct(values)
    judged = facts.procedures(distinct)
    row_of = np.repeat(np.arange(len(table)), np.diff(offsets))
    status = judged["status"][indices]
    code, text = pa.array(judged["code"], pa.string()), pa.array(judged["status_text"], pa.string())
    parts = []
    for value, kind in ((3, "malformed_code"), (1, "unknown_code"), (2, "code_not_valid_in_year")):
        elements = np.flatnonzero(status == value)
        if len(elements):
            taken = pa.array(indices[elements])
            parts.append(_Part(row_of[elements], kind, "warning", "procedure", code.take(taken), text.take(taken)))
    rules = facts.block_list.by_role("principal", "any", target="procedure")
    counts = np.diff(offsets)
    first = np.zeros(len(indices), bool)
    first[offsets[:-1][counts > 0]] = True
    for index, entry in enumerate(rules):
        position_mask = first if entry.role == "principal" else np.ones(len(indices), bool)
        match = judged["block_match"][index : index + 1]
        found = ("blocked_procedure", "warning", "procedure", (entry,), match)
        parts += _block_parts(*found, indices, row_of, position_mask, code, facts.valid)
    return parts


def _words(choice: pa.Array, words: tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(choice, pa.array(words)).cast(pa.string())
