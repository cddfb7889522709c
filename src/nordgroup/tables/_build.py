"""Normalising raw table rows into the canonical model, and listing what is inconsistent.

Every layout reader feeds its rows to one `TableBuilder`, so normalisation (numeric `ord`, `15.0`,
padded DRG codes, case) and the consistency findings exist once, whatever the source format.
"""

from __future__ import annotations

import re
from collections import defaultdict

import attrs

from nordgroup.codes import canonical_code
from nordgroup.exceptions import TableFormatError
from nordgroup.tables.model import (
    ComplicationCategory,
    DiagnosisKey,
    DiagnosisProperties,
    DrgInfo,
    DrgTables,
    Finding,
    Limit,
    ProcedureProperties,
    ReleaseInfo,
    Rule,
)

_FLOAT_INTEGER = re.compile(r"^(\d+)\.0+$")
_LIMIT = re.compile(r"^([<>])\s*(\d+)$")

DIAGNOSIS_VARTYPES = {"MDC", "DGCAT", "PDGPRO", "DGPROP", "SDGPRO", "COMPL", "PROCPR", "OR"}
PROCEDURE_VARTYPES = {"OR", "PROCPR", "CC", "DGPROP"}
# Kinds a code normally has one row of: a second row with another value is worth a finding,
# though every row is kept (OR, CC) or the first decides (MDC, DGCAT).
_ONE_VALUE_KINDS = {"MDC", "DGCAT", "OR", "CC"}


def clean_value(text: object) -> str:
    """A table cell as canonical text: stripped, upper case, spreadsheet floats (`15.0`) undone."""
    if text is None:
        return ""
    value = str(text).strip().upper()
    if value in ("NAN", "NONE", "NULL"):
        return ""
    match = _FLOAT_INTEGER.match(value)
    return match.group(1) if match else value


def clean_code(text: object) -> str:
    """A diagnosis or procedure code as the tables key it: no dots, marks, spaces; upper case."""
    return canonical_code(clean_value(text))


def clean_mdc(text: object) -> str:
    """MDCs are two digits (`1` and `1.0` become `01`); non-numeric MDCs are kept as they are."""
    value = clean_value(text)
    return value.zfill(2) if value.isdigit() else value


def clean_drg(text: object) -> str:
    """DRG codes lose the padding of the Norwegian tables (`'  1A'` becomes `1A`)."""
    return clean_value(text).replace(" ", "")


class TableBuilder:
    """Collects raw rows of one release, normalises them and builds `DrgTables` with findings."""

    def __init__(self, source: str):
        self.source = source
        self._rules: list[tuple[tuple[int, int], dict]] = []
        self._diagnoses: dict[DiagnosisKey, dict] = defaultdict(_new_diagnosis)
        self._procedures: dict[str, dict] = defaultdict(_new_procedure)
        self._categories: dict[str, set[str]] = {}
        self._exclusions: dict[str, set[DiagnosisKey]] = defaultdict(set)
        self._drgs: dict[str, DrgInfo] = {}
        self._return_codes: dict[str, str] = {}
        # (table, code, vartype) -> {value: the first row giving it}: names both rows of a conflict
        self._first_rows: dict[tuple[str, object, str], dict[str, int]] = defaultdict(dict)
        self.findings: list[Finding] = []

    def finding(self, table: str, kind: str, message: str, row: int | None = None) -> None:
        self.findings.append(Finding(table=table, kind=kind, message=message, row=row))

    def add_rule(self, row: int, order: int, values: dict[str, object]) -> None:
        """One `drg_logic` row; `order` sorts the rules (file position or numeric `ord`)."""
        self._rules.append(((order, row), {"row": row, **values}))

    def add_diagnosis_property(self, row: int, code: object, dagger: object, vartype: object, value: object) -> None:
        key = (clean_code(code), clean_code(dagger))
        kind, value = clean_value(vartype), clean_value(value)
        if not key[0] or not value:
            self.finding("dg", "empty-cell", f"diagnosis row without code or value: {key}", row)
            return
        kind = {"PDGPROP": "PDGPRO", "SDGPROP": "SDGPRO"}.get(kind, kind)
        if kind in DIAGNOSIS_VARTYPES:
            self._note_row("dg", key, kind, value, row)
        entry = self._diagnoses[key]
        if kind == "MDC":
            self._set_single(entry, "mdc", clean_mdc(value), "dg", key, row)
        elif kind == "DGCAT":
            self._set_single(entry, "dgcat", value, "dg", key, row)
        elif kind == "PDGPRO":
            entry["pdgprop"].add(value)
        elif kind == "DGPROP":
            entry["dgprop"].add(value)
        elif kind == "SDGPRO":
            entry["sdgprop"].add(value)
        elif kind == "COMPL":
            entry["compl"].add(value)
        elif kind == "PROCPR":
            entry["procpr"].add(value)
        elif kind == "OR":
            entry["or_values"].add(_int_or_zero(value))
        else:
            self.finding("dg", "unknown-vartype", f"{key[0]}: vartype {kind!r} is not a diagnosis property", row)

    def add_procedure_property(self, row: int, code: object, vartype: object, value: object) -> None:
        code, kind, value = clean_code(code), clean_value(vartype), clean_value(value)
        if not code:
            self.finding("proc", "empty-cell", "procedure row without code", row)
            return
        kind = "PROCPR" if kind == "PROCPRO" else kind
        if kind in PROCEDURE_VARTYPES:
            self._note_row("proc", code, kind, value, row)
        entry = self._procedures[code]
        if kind == "OR":
            entry["or_values"].add(_int_or_zero(value))
        elif kind == "PROCPR":
            entry["procpr"].add(value)
        elif kind == "CC":
            entry["cc_values"].add(_int_or_zero(value))
        elif kind == "DGPROP":
            entry["dgprop"].add(value)
        else:
            self.finding("proc", "unknown-vartype", f"{code}: vartype {kind!r} is not a procedure property", row)

    def _note_row(self, table: str, code: object, kind: str, value: str, row: int) -> None:
        """Every row is kept; a repeated row, or a second value of a one-value kind, is a finding."""
        seen = self._first_rows[(table, code, kind)]
        name = "/".join(filter(None, code)) if isinstance(code, tuple) else code
        if value in seen:
            self.finding(table, "duplicate-row", f"{name}: {kind} {value} in rows {seen[value]} and {row}", row)
            return
        if seen and kind in _ONE_VALUE_KINDS:
            first_value, first_row = next(iter(seen.items()))
            self.finding(
                table,
                f"two-{kind.lower()}",
                f"{name}: {kind} {first_value} in row {first_row} and {kind} {value} in row {row}",
                row,
            )
        seen[value] = row

    def add_complication_category(self, row: int, compl: object, inclprop: object) -> None:
        code, activating = clean_value(compl), clean_value(inclprop)
        activators = self._categories.setdefault(code, set())
        if activating:
            activators.add(activating)

    def add_exclusion(self, row: int, compl: object, code: object, dagger: object) -> None:
        self._exclusions[clean_value(compl)].add((clean_code(code), clean_code(dagger)))

    def add_drg(self, row: int, drg: object, mdc: object, name: object = "") -> None:
        code = clean_drg(drg)
        if code in self._drgs:
            self.finding("drg_name", "duplicate-drg", f"DRG {code} is listed twice", row)
        self._drgs[code] = DrgInfo(drg=code, mdc=clean_mdc(mdc), name=str(name or "").strip())

    def add_return_code(self, code: object, text: object) -> None:
        self._return_codes[clean_value(code)] = str(text or "").strip()

    def build(self, release: ReleaseInfo) -> DrgTables:
        ordered = [raw for _, raw in sorted(self._rules, key=lambda item: item[0])]
        rules = tuple(self._make_rule(position, raw) for position, raw in enumerate(ordered))
        self._rule_rows = [raw["row"] for raw in ordered]  # findings name the row of the file
        # Most codes share their properties with others (20 000 Norwegian diagnoses, 2 200 distinct
        # property sets): one object per distinct value keeps memory down and the table cache
        # quick to read back (pickle writes a shared object once).
        interned: dict = {}
        diagnoses = {key: _freeze(DiagnosisProperties, raw, interned) for key, raw in self._diagnoses.items()}
        procedures = {code: _freeze(ProcedureProperties, raw, interned) for code, raw in self._procedures.items()}
        categories = {
            code: ComplicationCategory(code=code, activating_dgprop=frozenset(activators))
            for code, activators in self._categories.items()
        }
        exclusions = {code: frozenset(keys) for code, keys in self._exclusions.items()}
        tables = DrgTables(
            release=release,
            rules=rules,
            diagnoses=diagnoses,
            procedures=procedures,
            complication_categories=categories,
            exclusions=exclusions,
            drgs=dict(self._drgs),
            return_codes=dict(self._return_codes),
        )
        self._check(tables)
        return attrs.evolve(tables, findings=tuple(self.findings))

    def _set_single(self, entry: dict, name: str, value: str, table: str, key: DiagnosisKey, row: int) -> None:
        # A second MDC or DGCAT row is already a finding (`_note_row`): the first row decides.
        entry[name] = entry[name] or value

    def _make_rule(self, position: int, raw: dict) -> Rule:
        row = raw["row"]
        return Rule(
            position=position,
            id=clean_value(raw.get("id")),
            drg=clean_drg(raw.get("drg")),
            rtc=clean_value(raw.get("rtc")) or "0",
            icd=clean_value(raw.get("icd")),
            mdc=clean_mdc(raw.get("mdc")),
            dgcat=clean_value(raw.get("dgcat")),
            pdgprop=clean_value(raw.get("pdgprop")),
            compl=clean_value(raw.get("compl")),
            or_proc=clean_value(raw.get("or_proc")),
            procpro=clean_value(raw.get("procpro")),
            secpro=clean_value(raw.get("secpro")),
            dgprop=tuple(v for v in (clean_value(x) for x in raw.get("dgprop", ())) if v),
            agelim=self._limit(raw.get("agelim"), row, "agelim"),
            sex=clean_value(raw.get("sex")),
            dur=self._limit(raw.get("dur"), row, "dur"),
            disch=clean_value(raw.get("disch")),
        )

    def _limit(self, text: object, row: int, column: str) -> Limit | None:
        value = clean_value(text)
        if not value:
            return None
        match = _LIMIT.match(value)
        if not match:
            raise TableFormatError(
                f"{value!r} is not a limit like <29 or >6574", path=self.source, row=row, column=column
            )
        return Limit(op=match.group(1), days=int(match.group(2)))

    def _check(self, tables: DrgTables) -> None:
        """Inconsistencies a table owner wants to know of; none of them stops grouping."""
        carried: dict[str, set[str]] = defaultdict(set)
        for props in tables.diagnoses.values():
            carried["mdc"].add(props.mdc)
            carried["dgcat"].add(props.dgcat)
            carried["pdgprop"] |= props.pdgprop
            carried["dgprop"] |= props.dgprop | props.sdgprop
            carried["procpro"] |= props.procpr
        for procedure in tables.procedures.values():
            carried["procpro"] |= procedure.procpr
            carried["dgprop"] |= procedure.dgprop
        for name in ("mdc", "dgcat", "dgprop"):
            # Sex recoding turns 98.. into 12../13.., so a rule may name a value no code carries as such.
            carried[name] |= {_sex_variant(value, prefix) for value in carried[name] for prefix in ("12", "13")}
        seen_ids: set[str] = set()
        for rule, row in zip(tables.rules, self._rule_rows, strict=True):
            if rule.id in seen_ids:
                self.finding("drg_logic", "duplicate-rule-id", f"rule id {rule.id} appears twice", row)
            seen_ids.add(rule.id)
            if rule.drg not in tables.drgs:
                self.finding(
                    "drg_logic", "drg-without-name", f"rule {rule.id} leads to DRG {rule.drg}, not in the DRG list", row
                )
            wanted = [("mdc", rule.mdc), ("dgcat", rule.dgcat), ("pdgprop", rule.pdgprop), ("procpro", rule.procpro)]
            wanted += [("procpro", rule.secpro.lstrip("-+"))] + [("dgprop", value.lstrip("-")) for value in rule.dgprop]
            for name, value in wanted:
                if value and value not in carried[name]:
                    self.finding(
                        "drg_logic", "property-never-carried", f"rule {rule.id}: no code carries {name} {value}", row
                    )
        for key, props in tables.diagnoses.items():
            for category in props.compl:
                if category not in tables.complication_categories:
                    self.finding("dg", "unknown-complication-category", f"{key[0]}: COMPL {category} not in compl_name")
            if not props.mdc and not key[1]:
                self.finding("dg", "diagnosis-without-mdc", f"{key[0]} has properties but no MDC")
        for category in tables.exclusions:
            if category not in tables.complication_categories:
                self.finding(
                    "compl_excl", "unknown-complication-category", f"exclusions for unknown category {category}"
                )
        for drg in tables.drgs.values():
            if not drg.mdc:
                self.finding("drg_name", "drg-without-mdc", f"DRG {drg.drg} has no MDC")


def _sex_variant(value: str, prefix: str) -> str:
    return prefix + value[2:] if value.startswith("98") else value


def _int_or_zero(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _new_diagnosis() -> dict:
    return {"mdc": "", "dgcat": "", "pdgprop": set(), "dgprop": set(), "sdgprop": set(), "compl": set(),
            "procpr": set(), "or_values": set()}  # fmt: skip


def _new_procedure() -> dict:
    return {"or_values": set(), "procpr": set(), "cc_values": set(), "dgprop": set()}


def _freeze(cls: type, raw: dict, interned: dict):
    """`cls` made of `raw` (sets frozen), the same object as an equal one made before."""
    value = cls(**{k: frozenset(v) if isinstance(v, set) else v for k, v in raw.items()})
    return interned.setdefault(value, value)
