"""Coding audit: findings of wrong or doubtful DRG outcomes, quality indicators per unit, care type
and period, a stratified review sample, and the HTML report of all three.

Everything is columnar. The list columns are dictionary-encoded once; each *distinct* written code
is judged once in Python (`_CodeFacts`), and the judgements are taken back to the elements and
episodes with numpy. No Python loop runs per episode. See docs/audit.md for the finding kinds.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup._audit_columns import as_dates, split_keys
from nordgroup._audit_columns import distinct as _distinct
from nordgroup._audit_columns import flat as _flat
from nordgroup._audit_columns import repeat_text as _repeat
from nordgroup._dataframes import arrow_table
from nordgroup.audit_report import audit_report
from nordgroup.audit_sample import review_sample
from nordgroup.blocklist import (
    ASTERISK,
    BlockEntry,
    BlockList,
    asterisk_codes,
    default_block_list,
    layered_block_list,
    load_block_list,
)
from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.episodes import to_canonical
from nordgroup.grouper import Grouper
from nordgroup.money import Financing, WeightTable, as_weight_table, care_types, drg_keys, price_episodes
from nordgroup.tables.model import NO_DAGGER, RETURN_CODE_MEANINGS, DrgTables, Rule

__all__ = [
    "FINDING_KINDS",
    "FINDING_SCHEMA",
    "RETURN_CODE_MEANINGS",
    "audit",
    "audit_report",
    "drg_points",
    "error_drgs",
    "indicators",
    "load_block_list",
    "review_sample",
]

#: kind -> what it means; the order is the order findings of one episode are listed in.
FINDING_KINDS = {
    "error_drg": "the episode grouped to an error DRG (NordDRG 470 series)",
    "return_code": "the grouper returned a non-zero return code outside the error DRGs",
    "malformed_field": "a field is missing or impossible (sex, age, duration, discharge, principal diagnosis)",
    "malformed_code": "a written code does not have the shape of a code",
    "unknown_code": "a well-formed code the tables of the year do not know",
    "code_not_valid_in_year": "a code other table years know, but not the year grouped with",
    "blocked_principal": "a block-listed code as principal diagnosis",
    "blocked_secondary": "a block-listed code as secondary diagnosis",
    "blocked_combination": "two codes the block list forbids together",
    "blocked_procedure": "a block-listed procedure code (as first procedure, or anywhere)",
    "symptom_principal": "a symptom code (R00-R99) as principal diagnosis",
    "unspecified_principal": "an unspecified code (4th character 9) as principal diagnosis",
    "implausible_age_sex": "a code that does not fit the patient's age or sex (the tables' validation rules)",
    "duplicate_episode": "the episode id occurs more than once",
    "duplicate_code": "the same diagnosis is written twice in one episode",
    "drg_mismatch": "the reported DRG differs from the regrouped DRG",
    "amount_mismatch": "the invoiced amount differs from the regrouped DRG's price",
}
SEVERITIES = ("error", "warning", "info")

FINDING_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),  # position of the episode in the input
        ("episode_id", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("field", pa.string()),
        ("code", pa.string()),
        ("text", pa.string()),
        ("drg", pa.string()),  # the regrouped DRG
        ("points", pa.float64()),  # DRG points at stake (money.price_episodes); null without weights
        ("money", pa.float64()),  # the reimbursement at stake; null without weights and financing
    ]
)

_OK_RTC = ("0", "A")
_DIAGNOSIS_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
_PROCEDURE_SHAPE = re.compile(r"^[A-Z0-9]{3,8}$")
_MAX_AGE_DAYS = 125 * 366
_NO_LIMIT = np.iinfo(np.int64).max
# Validation rules read per code: conditions on the code itself plus age/sex, nothing else.
_CODE_CONDITIONS = {"icd", "mdc", "dgcat", "pdgprop", "agelim", "sex"} | {f"dgprop{i}" for i in range(1, 5)}
_SEX_ONLY_MDC = {"12": 1, "13": 2}
_EPOCH = datetime.date(1970, 1, 1)  # male and female reproductive system


# --------------------------------------------------------------------------------------------
# Public functions


def audit(
    episodes: pa.Table,
    grouper: Grouper,
    *,
    weights: WeightTable | Mapping[str, float] | pa.Table | None = None,
    financing: Financing | None = None,
    block_list: BlockList | str | Path | Sequence[str | Path | tuple[str, str | Path]] | None = None,
    reported_drg_column: str | None = None,
    invoiced_amount_column: str | None = None,
    amount_tolerance: float = 0.5,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    grouped: pa.Table | None = None,
    other_years: Sequence[DrgTables] = (),
    date_column: str | None = None,
) -> pa.Table:
    """Findings for a batch of canonical episodes, one row per finding (see `FINDING_SCHEMA`).

    Points and money at stake are priced by `money.price_episodes` with `weights` (a `WeightTable`,
    `{drg: weight}` or Arrow columns) and `financing`: care type, outpatient and day-surgery
    weights and long-stay supplements included. `invoiced_amount_column` (needs both) is compared
    with the regrouped DRG's reimbursement; differences above `amount_tolerance` are findings.
    `block_list`: None for the shipped default; a path, or a sequence of paths or (layer name, path)
    pairs, layered on the default (see `layered_block_list`); a `BlockList` is used as it is.
    `date_column` (dates or YYYY-MM-DD) decides which dated block-list entries apply to an episode;
    without it, an entry applies when its validity overlaps the tables' year. `grouped` is
    `grouper.group(episodes)` when the caller already has it. `other_years` are tables of other
    years, so that a code unknown this year can be told apart from one valid in another year.
    `unit_column` and `period_column` are not needed here; they are accepted so that `audit`,
    `indicators` and `review_sample` take the same arguments.
    """
    del unit_column, period_column
    table = to_canonical(arrow_table(episodes))  # any dataframe exporting __arrow_c_stream__
    grouped = grouped if grouped is not None else grouper.group(table)
    if len(grouped) != len(table):
        raise ValueError(f"grouped has {len(grouped)} rows, the episodes {len(table)}")
    if block_list is None:
        block_list = default_block_list()
    elif not isinstance(block_list, BlockList):
        block_list = layered_block_list([block_list] if isinstance(block_list, str | Path) else block_list)
    facts = _CodeFacts(grouper.tables, block_list, other_years)
    facts.valid = _BlockValidity(table, date_column, grouper.tables.release.year)
    pricing = _Pricing(table, as_weight_table(weights), financing)
    regrouped = pricing.price(grouped.column("drg"))
    n = len(table)
    parts: list[_Part] = []
    parts += _grouping_findings(grouped, grouper.tables)
    parts += _field_findings(table)
    parts += _diagnosis_findings(table, grouped, facts)
    parts += _procedure_findings(table, facts)
    parts += _duplicate_episode_findings(table)
    if reported_drg_column is not None:
        parts += _mismatch_findings(table, grouped, reported_drg_column, pricing, regrouped)
    if invoiced_amount_column is not None:
        parts += _amount_findings(table, grouped, invoiced_amount_column, pricing, regrouped, amount_tolerance)
    return _assemble(parts, table, grouped, regrouped, n)


def drg_points(
    grouped: pa.Table, weights: WeightTable | Mapping[str, float] | pa.Table | None, *, episodes: pa.Table | None = None
) -> np.ndarray:
    """Points of each episode's regrouped DRG as `money.price_episodes` gives them (NaN where the
    weight table has no such DRG). Care type and hospital days come from `episodes` (else from
    `grouped`); without either, every episode counts as an inpatient stay without supplement."""
    source = to_canonical(episodes) if episodes is not None else grouped
    if "duration_days" not in source.column_names:
        source = source.append_column("duration_days", pa.nulls(len(source), pa.int32()))
    return _Pricing(source, as_weight_table(weights), None).price(grouped.column("drg"))[0]


def error_drgs(tables: DrgTables) -> frozenset[str]:
    """The error DRGs: those of the rules for episodes without a principal diagnosis, and their
    sub-groups (NordDRG 470, 470P, ...; the Swedish version's Z-DRGs the same way)."""
    roots = {rule.drg for rule in tables.rules if rule.icd == "-"}
    bases = {drg[:3] for drg in roots}
    return frozenset(roots | {drg for drg in tables.drgs if drg[:3] in bases})


def indicators(
    episodes: pa.Table,
    grouped: pa.Table,
    findings: pa.Table,
    *,
    unit_column: str | Sequence[str] | None = "unit",
    period_column: str | None = "period",
    care_type: bool = True,
    period: str | None = None,
) -> pa.Table:
    """Coding-quality indicators per unit, care type (`money.care_types`) and period.

    `unit_column` may name several columns (`["administration", "coder"]`): one row per
    combination. `period` (`week`, `month`, `quarter`, `year`) cuts a date `period_column`."""
    table = to_canonical(episodes)
    n = len(table)
    keys = _group_keys(table, unit_column, period_column, care_type, period)
    rows = findings.column("row").to_numpy()
    kinds = findings.column("kind").to_numpy(zero_copy_only=False)
    per_kind = {kind: np.bincount(rows[kinds == kind], minlength=n) for kind in FINDING_KINDS}
    offsets, values = _list_offsets(table.column("diagnoses"))
    counts = np.diff(offsets)
    principal = _principal_codes(offsets, values)
    mismatch = kinds == "drg_mismatch"
    mismatch_points = np.bincount(
        rows[mismatch],
        weights=np.nan_to_num(findings.column("points").to_numpy(zero_copy_only=False)[mismatch]),
        minlength=n,
    )
    columns = {
        **keys,
        "episodes": np.ones(n, np.int64),
        "error_drg_share": (per_kind["error_drg"] > 0).astype(np.float64),
        # the `group` summary's "return code" figure: every return code other than 0/A, error DRGs included
        "return_code_share": pc.invert(pc.is_in(pc.fill_null(grouped.column("rtc"), ""), pa.array(list(_OK_RTC))))
        .to_numpy(zero_copy_only=False)
        .astype(np.float64),
        "symptom_principal_share": (per_kind["symptom_principal"] > 0).astype(np.float64),
        "unspecified_principal_share": (per_kind["unspecified_principal"] > 0).astype(np.float64),
        "z_principal_share": pc.starts_with(principal, "Z").to_numpy(zero_copy_only=False).astype(np.float64),
        "mean_secondary_diagnoses": np.maximum(counts - 1, 0).astype(np.float64),
        "cc_share": (pc.fill_null(grouped.column("cc_level"), 0).to_numpy() >= 1).astype(np.float64),
        "findings": np.bincount(rows, minlength=n),
        **{f"findings_{kind}": count for kind, count in per_kind.items()},
        "drg_mismatches": per_kind["drg_mismatch"],
        "mismatch_points": mismatch_points,
    }
    summed = [name for name in columns if name not in keys and not name.endswith(("_share", "_diagnoses"))]
    averaged = [name for name in columns if name.endswith(("_share", "_diagnoses"))]
    aggregated = (
        pa.table(columns)
        .group_by(list(keys))
        .aggregate([(name, "sum") for name in summed] + [(name, "mean") for name in averaged])
    )
    aggregated = aggregated.rename_columns([re.sub(r"_(sum|mean)$", "", name) for name in aggregated.column_names])
    order = [*keys, "episodes", *averaged, *(name for name in summed if name != "episodes")]
    return aggregated.select(order).sort_by([(key, "ascending") for key in keys])


# --------------------------------------------------------------------------------------------
# What one distinct written code is


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


# --------------------------------------------------------------------------------------------
# Findings, kind by kind: each returns `_Part`s of equal-length columns


@frozen(eq=False)
class _Part:
    rows: np.ndarray
    kind: str
    severity: str | pa.Array
    field: str | pa.Array
    code: pa.Array
    text: pa.Array
    points: pa.Array | None = None  # None: the points of the regrouped DRG
    money: pa.Array | None = None  # None: the reimbursement of the regrouped DRG


def _grouping_findings(grouped: pa.Table, tables: DrgTables) -> list[_Part]:
    errors = error_drgs(tables)
    drg = pc.fill_null(grouped.column("drg"), "")
    rtc = pc.fill_null(grouped.column("rtc"), "")
    indices, distinct = _distinct(pc.binary_join_element_wise(drg, rtc, "|"))
    pairs = [value.split("|") for value in distinct] + [["", ""]]
    in_error = np.array([d in errors for d, _ in pairs])
    bad_rtc = np.array([r not in _OK_RTC for _, r in pairs])
    texts = pa.array(
        # the meaning says when it is nordgroup's default rather than the release's own rtc table
        [f"DRG {d or 'none'}, return code {r}: {tables.return_code_meaning(r)}" for d, r in pairs]
    )
    parts = []
    for kind, mask in (("error_drg", in_error), ("return_code", bad_rtc & ~in_error)):
        rows = np.flatnonzero(mask[indices])
        if len(rows):
            picked = pa.array(indices[rows])
            code = pa.array([r for _, r in pairs]).take(picked)
            parts.append(_Part(rows, kind, "error", "rtc", code, texts.take(picked)))
    return parts


def _field_findings(table: pa.Table) -> list[_Part]:
    sex = table.column("sex").to_numpy(zero_copy_only=False)
    age = pc.fill_null(table.column("age_days"), -(2**31)).to_numpy()
    duration = pc.fill_null(table.column("duration_days"), -(2**31)).to_numpy()
    missing = -(2**31)
    discharge = table.column("discharge")
    offsets, values = _list_offsets(table.column("diagnoses"))
    principal = _principal_codes(offsets, values)
    checks = [
        ("sex", pc.is_null(table.column("sex")).to_numpy(zero_copy_only=False), "warning", "sex missing"),
        (
            "sex",
            ~np.isin(np.nan_to_num(sex.astype(float), nan=1), (1, 2)),
            "error",
            "sex is neither 1 (male) nor 2 (female)",
        ),
        ("age_days", age == missing, "warning", "age missing or not a number"),
        ("age_days", (age != missing) & ((age < 0) | (age > _MAX_AGE_DAYS)), "error", "age below 0 or above 125 years"),
        ("duration_days", duration == missing, "warning", "duration missing or not a number"),
        ("duration_days", (duration != missing) & (duration < 0), "error", "duration below 0"),
        (
            "discharge",
            pc.fill_null(pc.invert(pc.is_in(discharge, pa.array(["E", "N", "R"]))), False).to_numpy(
                zero_copy_only=False
            ),
            "error",
            "discharge is not E, N (H) or R",
        ),
        ("diagnoses", pc.equal(principal, "").to_numpy(zero_copy_only=False), "error", "no principal diagnosis"),
    ]
    shown = {
        "sex": pc.cast(table.column("sex"), pa.string()),
        "age_days": pc.cast(table.column("age_days"), pa.string()),
        "duration_days": pc.cast(table.column("duration_days"), pa.string()),
        "discharge": discharge,
        "diagnoses": principal,
    }
    parts = []
    for field, mask, severity, text in checks:
        rows = np.flatnonzero(mask)
        if len(rows):
            code = pc.fill_null(shown[field].take(rows), "")
            parts.append(_Part(rows, "malformed_field", severity, field, _flat(code), _repeat(text, len(rows))))
    return parts


def _diagnosis_findings(table: pa.Table, grouped: pa.Table, facts: _CodeFacts) -> list[_Part]:
    n = len(table)
    offsets, values = _list_offsets(table.column("diagnoses"))
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
    offsets, values = _list_offsets(table.column("procedures"))
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


def _duplicate_episode_findings(table: pa.Table) -> list[_Part]:
    ids = pc.cast(table.column("episode_id"), pa.string())
    indices, _ = _distinct(ids)
    _, first = np.unique(indices, return_index=True)
    repeated = np.ones(len(indices), bool)
    repeated[first] = False
    rows = np.flatnonzero(repeated)
    if not len(rows):
        return []
    times = np.bincount(indices)[indices[rows]]
    text = pc.binary_join_element_wise("episode id occurs ", pc.cast(pa.array(times), pa.string()), " times", "")
    return [_Part(rows, "duplicate_episode", "error", "episode_id", _flat(pc.fill_null(ids.take(rows), "")), text)]


@frozen(eq=False)
class _Pricing:
    """Prices any DRG column for the audited episodes as `money.price_episodes` does."""

    episodes: pa.Table  # canonical: hospital days and care type
    weights: WeightTable | None
    financing: Financing | None

    def price(self, drg: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """Points and reimbursement per episode, NaN where unpriced (money also without financing)."""
        n = len(self.episodes)
        if self.weights is None:
            return np.full(n, np.nan), np.full(n, np.nan)
        columns = {"drg": drg, "duration_days": self.episodes.column("duration_days")}
        if "care_type" in self.episodes.column_names:
            columns["care_type"] = self.episodes.column("care_type")
        financing = self.financing or Financing(price_per_point=0.0, activity_share=1.0)
        priced = price_episodes(pa.table(columns), self.weights, financing)

        def values(name: str) -> np.ndarray:
            return pc.fill_null(priced.column(name), np.nan).to_numpy(zero_copy_only=False).astype(np.float64)

        return values("points"), values("reimbursement") if self.financing else np.full(n, np.nan)


def _numbers_text(points: np.ndarray, money: np.ndarray) -> pa.Array:
    """`: 4.35 points, 97875 in money (regrouped minus reported)` per row, "" where no points."""
    rounded = pc.cast(pa.array(np.round(points, 3), mask=np.isnan(points)), pa.string())
    cash = pc.cast(pa.array(np.round(money), mask=np.isnan(money)), pa.string())
    cash_text = pc.fill_null(pc.binary_join_element_wise(", ", cash, " in money", ""), "")
    text = pc.binary_join_element_wise(": ", rounded, " points", cash_text, " (regrouped minus reported)", "")
    return pc.fill_null(text, "")


def _mismatch_findings(
    table: pa.Table, grouped: pa.Table, column: str, pricing: _Pricing, regrouped: tuple[np.ndarray, np.ndarray]
) -> list[_Part]:
    if column not in table.column_names:
        raise ValueError(f"reported DRG column {column!r} is not among {', '.join(table.column_names)}")
    reported = pc.utf8_trim_whitespace(pc.fill_null(pc.cast(table.column(column), pa.string()), ""))
    regrouped_drg = pc.fill_null(grouped.column("drg"), "")
    reported_key = drg_keys(reported)
    differs = pc.and_(pc.not_equal(reported_key, ""), pc.not_equal(reported_key, drg_keys(regrouped_drg)))
    rows = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
    if not len(rows):
        return []
    points, money = pricing.price(reported)
    delta_points = (regrouped[0] - points)[rows]
    delta_money = (regrouped[1] - money)[rows]
    taken = pa.array(rows)
    code = _flat(reported.take(taken))
    prefix = pc.binary_join_element_wise("reported DRG ", code, ", regrouped ", _flat(regrouped_drg.take(taken)), "")
    text = pc.binary_join_element_wise(prefix, _numbers_text(delta_points, delta_money), "")
    return [
        _Part(
            rows,
            "drg_mismatch",
            "error",
            column,
            code,
            text,
            pa.array(delta_points, mask=np.isnan(delta_points)),
            pa.array(delta_money, mask=np.isnan(delta_money)),
        )
    ]


def _amount_findings(
    table: pa.Table,
    grouped: pa.Table,
    column: str,
    pricing: _Pricing,
    regrouped: tuple[np.ndarray, np.ndarray],
    tolerance: float,
) -> list[_Part]:
    """The invoiced amount against the regrouped DRG's reimbursement."""
    if column not in table.column_names:
        raise ValueError(f"invoiced amount column {column!r} is not among {', '.join(table.column_names)}")
    if pricing.weights is None or pricing.financing is None:
        raise ValueError("comparing invoiced amounts needs weights and financing")
    invoiced = _amounts(table.column(column), column)
    money = regrouped[1]
    given = ~np.isnan(invoiced)
    unpriced = given & np.isnan(money)
    delta = money - invoiced
    rows = np.flatnonzero(unpriced | (given & (np.abs(np.nan_to_num(delta)) > tolerance)))
    if not len(rows):
        return []
    per_point = pricing.financing.price_per_point * pricing.financing.activity_share
    delta_points = delta[rows] / per_point if per_point > 0 else np.full(len(rows), np.nan)
    taken = pa.array(rows)
    drg = _flat(pc.fill_null(grouped.column("drg"), "").take(taken))
    amount = pc.cast(pa.array(invoiced[rows]), pa.string())
    price = pc.cast(pa.array(np.round(money[rows], 2), mask=np.isnan(money[rows])), pa.string())
    text = pc.if_else(
        pa.array(unpriced[rows]),
        pc.binary_join_element_wise(
            "regrouped DRG ", drg, " has no weight: invoiced ", amount, " cannot be checked", ""
        ),
        pc.binary_join_element_wise("invoiced ", amount, ", regrouped DRG ", drg, " is paid ", price, ""),
    )
    return [
        _Part(
            rows,
            "amount_mismatch",
            "error",
            column,
            amount,
            text,
            pa.array(delta_points, mask=np.isnan(delta_points)),
            pa.array(delta[rows], mask=np.isnan(delta[rows])),
        )
    ]


def _amounts(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """An amount column as numbers (NaN where blank); text may use a decimal comma and blanks."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        text = pc.replace_substring_regex(pc.utf8_trim_whitespace(column), r"[\s\x{00A0}]", "")
        text = pc.replace_substring(text, ",", ".")
        column = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"invoiced amount column {name!r}: {error}") from None
    return pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)


def _assemble(
    parts: list[_Part], table: pa.Table, grouped: pa.Table, regrouped: tuple[np.ndarray, np.ndarray], n: int
) -> pa.Table:
    if not parts:
        return FINDING_SCHEMA.empty_table()
    rows = np.concatenate([part.rows for part in parts]).astype(np.int64)
    kind_order = {kind: position for position, kind in enumerate(FINDING_KINDS)}
    drg = pc.fill_null(grouped.column("drg"), "").combine_chunks()
    points, money = regrouped
    points_of_row = pa.array(points, pa.float64(), mask=np.isnan(points))
    money_of_row = pa.array(money, pa.float64(), mask=np.isnan(money))

    def column(values, size: int) -> pa.Array:
        return _repeat(values, size) if isinstance(values, str) else _flat(values)

    findings = pa.table(
        {
            "row": pa.array(rows),
            "episode_id": pc.cast(table.column("episode_id"), pa.string()).take(rows),
            "kind": pa.concat_arrays([_repeat(part.kind, len(part.rows)) for part in parts]),
            "severity": pa.concat_arrays([column(part.severity, len(part.rows)) for part in parts]),
            "field": pa.concat_arrays([column(part.field, len(part.rows)) for part in parts]),
            "code": pa.concat_arrays([_flat(part.code) for part in parts]),
            "text": pa.concat_arrays([_flat(part.text) for part in parts]),
            "drg": drg.take(rows),
            "points": pa.concat_arrays(
                [_flat(part.points) if part.points is not None else points_of_row.take(part.rows) for part in parts]
            ),
            "money": pa.concat_arrays(
                [_flat(part.money) if part.money is not None else money_of_row.take(part.rows) for part in parts]
            ),
        }
    )
    order = np.lexsort((np.concatenate([np.full(len(part.rows), kind_order[part.kind]) for part in parts]), rows))
    return findings.take(pa.array(order)).cast(FINDING_SCHEMA)


# --------------------------------------------------------------------------------------------
# Small columnar helpers


def _list_offsets(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0])
    return offsets - offsets[0], values


def _principal_codes(offsets: np.ndarray, values: pa.Array) -> pa.Array:
    """The written principal diagnosis of each episode, trimmed and upper case ("" when none)."""
    counts = np.diff(offsets)
    if not len(values):
        return pa.array([""] * len(counts), pa.string())
    taken = values.take(pa.array(np.where(counts > 0, offsets[:-1], 0)))
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.fill_null(taken, "")))
    return pc.if_else(pa.array(counts > 0), text, "")


def _first_per_row(mask: np.ndarray, row_of: np.ndarray, n: int) -> np.ndarray:
    """Per row, the index of its first element where `mask` holds, else -1."""
    elements = np.flatnonzero(mask)
    rows, first = np.unique(row_of[elements], return_index=True)
    out = np.full(n, -1, np.int64)
    out[rows] = elements[first]
    return out


def _group_keys(
    table: pa.Table,
    unit_column: str | Sequence[str] | None,
    period_column: str | None,
    care_type: bool,
    period: str | None = None,
) -> dict:
    keys = split_keys(table, unit_column, period_column, period)
    if care_type:
        keys["care_type"] = care_types(table)
    return keys


def _words(choice: pa.Array, words: tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(choice, pa.array(words)).cast(pa.string())
