"""The canonical, typed model of one NordDRG definition-table release.

Every loader (Norwegian JSON, NDMS CSV, Excel) produces a `DrgTables`; everything downstream
(compiling, the reference grouper, explaining) reads only this model. Values are normalised by the
loaders, so the model never holds `15.0`, padded DRG codes or text-sorted `ord` values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs
from attrs import field, frozen

__all__ = [
    "NO_DAGGER",
    "RETURN_CODE_MEANINGS",
    "ComplicationCategory",
    "DiagnosisKey",
    "DiagnosisProperties",
    "DrgInfo",
    "DrgTables",
    "Finding",
    "Limit",
    "ProcedureProperties",
    "PropertyRow",
    "ReleaseInfo",
    "ReturnCodeMeaning",
    "Rule",
]

NO_DAGGER = ""
#: A diagnosis as the tables key it: (code, dagger code); the dagger is "" for a plain code.
DiagnosisKey = tuple[str, str]


@frozen
class Limit:
    """An `agelim` or `dur` condition: `<N` or `>N`, compared with a whole number of days."""

    op: str = field(validator=attrs.validators.in_(("<", ">")))
    days: int

    def holds(self, value: int) -> bool:
        return value < self.days if self.op == "<" else value > self.days

    def __str__(self) -> str:
        return f"{self.op}{self.days}"


@frozen
class Rule:
    """One row of `drg_logic`; empty text means "no condition" for that column."""

    position: int  # 0-based place in first-match order
    id: str  # the rule identifier as the tables give it (Norwegian `ord`, NDMS `id`)
    drg: str
    rtc: str
    icd: str = ""
    mdc: str = ""
    dgcat: str = ""
    pdgprop: str = ""
    compl: str = ""
    or_proc: str = ""
    procpro: str = ""
    secpro: str = ""
    dgprop: tuple[str, ...] = ()
    agelim: Limit | None = None
    sex: str = ""
    dur: Limit | None = None
    disch: str = ""

    def conditions(self) -> dict[str, str]:
        """The filled condition columns, by their `drg_logic` names, as text."""
        named = {
            "icd": self.icd,
            "mdc": self.mdc,
            "dgcat": self.dgcat,
            "pdgprop": self.pdgprop,
            "compl": self.compl,
            "or_proc": self.or_proc,
            "procpro": self.procpro,
            "secpro": self.secpro,
            **{f"dgprop{i + 1}": value for i, value in enumerate(self.dgprop)},
            "agelim": str(self.agelim) if self.agelim else "",
            "sex": self.sex,
            "dur": str(self.dur) if self.dur else "",
            "disch": self.disch,
        }
        return {name: value for name, value in named.items() if value}


#: One property row of a code as the tables write it: (vartype, varval), e.g. ("OR", "1").
PropertyRow = tuple[str, str]


@frozen
class DiagnosisProperties:
    """What `dg_feat` says of one diagnosis code or asterisk/dagger pair.

    Every row of the code is kept: a value set per property kind holds each row's value (a code
    listed twice with OR gives both OR values; see docs/semantics.md, "Codes with several rows").
    MDC and DGCAT place the diagnosis in one chapter and are one value each; a second, different
    row is a table finding and the first is kept.
    """

    mdc: str = ""
    dgcat: str = ""
    pdgprop: frozenset[str] = frozenset()
    dgprop: frozenset[str] = frozenset()
    sdgprop: frozenset[str] = frozenset()
    compl: frozenset[str] = frozenset()
    # Older Norwegian tables give a handful of diagnoses procedure properties too.
    procpr: frozenset[str] = frozenset()
    or_values: frozenset[int] = frozenset()

    def rows(self) -> tuple[PropertyRow, ...]:
        """The code's property rows, one per value, in a fixed order (what an export writes)."""
        rows = [("MDC", self.mdc)] if self.mdc else []
        rows += [("DGCAT", self.dgcat)] if self.dgcat else []
        for vartype, values in (
            ("PDGPRO", self.pdgprop),
            ("DGPROP", self.dgprop),
            ("SDGPRO", self.sdgprop),
            ("COMPL", self.compl),
            ("PROCPR", self.procpr),
        ):
            rows += [(vartype, value) for value in sorted(values)]
        return tuple(rows + [("OR", str(value)) for value in sorted(self.or_values)])


@frozen
class ProcedureProperties:
    """What `proc_feat` says of one procedure code; like a diagnosis, every row of the code is kept.

    2017 Norwegian `LFB30` has two OR rows (1 and 2): `or_values` is {1, 2}, so the code meets
    `or_proc S` (an OR 1 row) and does not meet `or_proc N`.
    """

    or_values: frozenset[int] = frozenset()
    procpr: frozenset[str] = frozenset()
    cc_values: frozenset[int] = frozenset()
    dgprop: frozenset[str] = frozenset()

    @property
    def cc(self) -> int:
        """The CC level the procedure gives: the highest of its CC rows (0 without one)."""
        return max(self.cc_values, default=0)

    def rows(self) -> tuple[PropertyRow, ...]:
        """The code's property rows, one per value, in a fixed order (what an export writes)."""
        rows = [("OR", str(value)) for value in sorted(self.or_values)]
        rows += [("PROCPR", value) for value in sorted(self.procpr)]
        rows += [("DGPROP", value) for value in sorted(self.dgprop)]
        return tuple(rows + [("CC", str(value)) for value in sorted(self.cc_values)])


@frozen
class ComplicationCategory:
    """A COMPL category; an inactive (`I`) one is activated by any of `activating_dgprop`."""

    code: str
    activating_dgprop: frozenset[str] = frozenset()

    @property
    def kind(self) -> str:
        """`C`, `G` or `I`: the letter in the middle of the category code."""
        return self.code[2:3]


@frozen
class DrgInfo:
    """A DRG's MDC and name (the name may be empty: the Norwegian tables carry none)."""

    drg: str
    mdc: str
    name: str = ""


@frozen
class Finding:
    """An inconsistency found in the tables while loading; listed, never raised."""

    table: str
    kind: str
    message: str
    row: int | None = None


@frozen
class ReleaseInfo:
    """Which release the tables are, and a hash of exactly the bytes they were read from."""

    country: str
    year: int | None
    release: str
    layout: str  # "nor-json", "ndms-csv", "ndms-csv-combined", "excel" or "excel-combined"
    source_hash: str
    source_files: tuple[str, ...] = ()
    # The national version whose rows were kept (`nat_ver`), None when every row was read.
    national_version: str | None = None
    codes: str = "national"  # the code columns read: "national" (`code_nat`) or "plus" (`code_plus`)

    @property
    def label(self) -> str:
        """The tables as people name them; a release without a known year says so in words."""
        if self.year:
            return f"{self.country.upper()} {self.year} {self.release}".strip()
        return f"{self.country.upper()} {self.release} (year unknown)".strip()


#: Meanings of the NordDRG return codes, used when the tables carry no `rtc` table (the Norwegian
#: JSON releases do not). Read from the NDMS `rtc` table and the validation rules of drg_logic.
RETURN_CODE_MEANINGS = {
    "0": "grouping completed",
    "A": "grouping completed",
    "1": "no principal diagnosis, or one the tables do not accept",
    "2": "sex of the patient is missing",
    "3": "sex of the patient does not fit the diagnosis",
    "4": "patient is too young for the principal diagnosis",
    "5": "patient is too old for the principal diagnosis",
    "6": "age of the patient is invalid (over 125 years)",
    "7": "OR procedure unrelated to the principal diagnosis",
    "8": "principal diagnosis not acceptable as principal diagnosis",
    "9": "procedure or diagnosis combination not acceptable for this principal diagnosis",
    "NO_RULE": "no grouping rule matched",
}


@frozen
class ReturnCodeMeaning:
    """What a return code means, and where that meaning comes from."""

    rtc: str
    text: str
    # "tables": the release's own `rtc` table; "default": nordgroup's RETURN_CODE_MEANINGS, as the
    # release has no meaning for it; "none": neither knows the code
    source: str

    def __str__(self) -> str:
        if self.source == "default":
            return f"{self.text} [nordgroup's default meaning: the release's rtc table does not give one]"
        return self.text if self.source == "tables" else "meaning not in the tables"


@frozen(eq=False)
class DrgTables:
    """One complete release: rules in first-match order, code properties, CC and DRG tables."""

    release: ReleaseInfo
    rules: tuple[Rule, ...]
    diagnoses: Mapping[DiagnosisKey, DiagnosisProperties]
    procedures: Mapping[str, ProcedureProperties]
    complication_categories: Mapping[str, ComplicationCategory]
    # complication category -> principal diagnoses (code, dagger) it cannot complicate
    exclusions: Mapping[str, frozenset[DiagnosisKey]]
    drgs: Mapping[str, DrgInfo]
    return_codes: Mapping[str, str] = field(factory=dict)
    findings: tuple[Finding, ...] = ()

    def export(self, path: str | os.PathLike[str], format: str = "ndms") -> Path:
        """Write these tables in the NDMS layout: a folder of CSV files, or one workbook (`format="excel"`).

        Returns the path written; `load_tables` reads it back into equal tables (see docs/tables.md).
        """
        from nordgroup.tables._export import export_tables

        return export_tables(self, path, format=format)

    def return_code_meaning(self, rtc: str) -> ReturnCodeMeaning:
        """The meaning of `rtc`: from the release's `rtc` table, else nordgroup's default table."""
        if self.return_codes.get(rtc):
            return ReturnCodeMeaning(rtc, self.return_codes[rtc], "tables")
        if rtc in RETURN_CODE_MEANINGS:
            return ReturnCodeMeaning(rtc, RETURN_CODE_MEANINGS[rtc], "default")
        return ReturnCodeMeaning(rtc, "", "none")

    def __repr__(self) -> str:
        return (
            f"<DrgTables {self.release.label}: {len(self.rules)} rules, {len(self.diagnoses)} diagnoses, "
            f"{len(self.procedures)} procedures, {len(self.drgs)} DRGs, {len(self.findings)} findings>"
        )
