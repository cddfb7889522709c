"""A what-if `Scenario`: episode-level corrections, rule-based recodings, another release, other
weights and prices; read from TOML (`load_scenario`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
from attrs import field, frozen

from nordgroup._toml import tomllib
from nordgroup.codes import ROLES, canonical_code
from nordgroup.exceptions import TableFormatError
from nordgroup.money.financing import Financing, financing_from_mapping, financing_values, load_financing
from nordgroup.money.weights import WeightTable, load_weights
from nordgroup.tables.model import DrgTables

ACTIONS = ("add", "remove", "replace")


#: Where an added code goes: after the codes of its role (default), or first in its role (the first
#: procedure, which `secpro` tells apart; the first secondary diagnosis).
POSITIONS = ("last", "first")


_FINANCING_KEYS = ("price_per_point", "activity_share", "year", "currency", "demo", "description")


@frozen
class RemoveCodes:
    """Remove the listed codes in one role (a block list). A removed principal leaves "no principal"."""

    codes: frozenset[str] = field(converter=lambda codes: frozenset(canonical_code(c) for c in codes))
    role: str = field(default="secondary", validator=attrs.validators.in_(ROLES))


@frozen
class ReplaceCodes:
    """Replace codes in one role by others (`{"I219": "I214"}`)."""

    mapping: Mapping[str, str] = field(converter=lambda m: {canonical_code(k): canonical_code(v) for k, v in m.items()})
    role: str = field(default="principal", validator=attrs.validators.in_(ROLES))


@frozen
class PromoteSpecificSecondary:
    """A principal matching `principal_pattern` (symptom codes R00–R99) is replaced by the first
    secondary matching none of `not_specific_pattern`; that secondary leaves the secondaries. The
    old principal is dropped (ICD: symptoms are not coded beside their explanation), or becomes a
    secondary in the promoted code's place with `keep_old_principal`."""

    principal_pattern: str = r"^R\d"
    not_specific_pattern: str = r"^[RZ]"
    keep_old_principal: bool = False


Recoding = RemoveCodes | ReplaceCodes | PromoteSpecificSecondary


def _recodings(recodings: Iterable[Recoding]) -> tuple[Recoding, ...]:
    return tuple(recodings)


_RECODING_KINDS = {
    "remove_codes": RemoveCodes,
    "replace_codes": ReplaceCodes,
    "promote_specific_secondary": PromoteSpecificSecondary,
}


def corrections_table(table: pa.Table, source: str = "corrections") -> pa.Table:
    """Check and normalise an episode-level corrections table.

    Columns: `episode_id`, `action` (add/remove/replace), `role` (principal/secondary/procedure),
    `code` (the code added, removed, or put in place), for replace `old_code` (the code replaced;
    required for secondary and procedure, optional for the principal) and, optionally, for add
    `position` (`last`, the default, or `first`: see `POSITIONS`). A remove or replace acts on one
    occurrence of its code (the first not taken by an earlier row of the same episode): two rows
    remove a code written twice. Errors name the row (header = row 1).
    """
    missing = [name for name in ("episode_id", "action", "role", "code") if name not in table.column_names]
    if missing:
        raise TableFormatError(
            f"missing column(s); the table has {', '.join(table.column_names)}", path=source, column=missing[0]
        )
    n = len(table)

    def text(name: str) -> list[str]:
        if name not in table.column_names:
            return [""] * n
        return ["" if value is None else str(value).strip() for value in table.column(name).to_pylist()]

    ids, actions, roles, codes, old = text("episode_id"), text("action"), text("role"), text("code"), text("old_code")
    actions = [a.lower() for a in actions]
    roles = [r.lower() for r in roles]
    positions = [p.lower() for p in text("position")]
    for index in range(n):
        row = index + 2
        if not ids[index]:
            raise TableFormatError("empty episode id", path=source, row=row, column="episode_id")
        if actions[index] not in ACTIONS:
            raise TableFormatError(
                f"{actions[index]!r} is not one of {', '.join(ACTIONS)}", path=source, row=row, column="action"
            )
        if roles[index] not in ROLES:
            raise TableFormatError(
                f"{roles[index]!r} is not one of {', '.join(ROLES)}", path=source, row=row, column="role"
            )
        if actions[index] == "add" and roles[index] == "principal":
            raise TableFormatError("a principal is not added: replace it", path=source, row=row, column="action")
        if not codes[index] and not (actions[index] == "remove" and roles[index] == "principal"):
            raise TableFormatError("empty code", path=source, row=row, column="code")
        if actions[index] == "replace" and roles[index] != "principal" and not old[index]:
            raise TableFormatError(
                f"replacing a {roles[index]} code needs old_code", path=source, row=row, column="old_code"
            )
        if positions[index] and (actions[index] != "add" or positions[index] not in POSITIONS):
            raise TableFormatError(
                f"position {positions[index]!r}: an add takes {' or '.join(POSITIONS)}; other actions none",
                path=source,
                row=row,
                column="position",
            )
    return pa.table(
        {
            "episode_id": pa.array(ids, pa.string()),
            "action": pa.array(actions, pa.string()),
            "role": pa.array(roles, pa.string()),
            "code": pa.array(codes, pa.string()),
            "old_code": pa.array(old, pa.string()),
            "position": pa.array(
                [(p or "last") if a == "add" else "" for a, p in zip(actions, positions, strict=True)], pa.string()
            ),
        }
    )


def _corrections_converter(table: pa.Table | None) -> pa.Table | None:
    return None if table is None else corrections_table(table)


@frozen(eq=False)
class Scenario:
    """A what-if: any of corrections, recodings, another table release, weights, prices.

    Corrections are applied first, to the codes as they were before review (all corrections of an
    episode act together), then the recodings in order. Unset parts keep the baseline's.
    `financing_changes` overrides single financing values (`{"price_per_point": 46000}`).
    """

    name: str = "scenario"
    description: str = ""
    corrections: pa.Table | None = field(default=None, converter=_corrections_converter)
    recodings: tuple[Recoding, ...] = field(default=(), converter=_recodings)
    tables: DrgTables | None = None
    weights: WeightTable | None = None
    financing: Financing | None = None
    financing_changes: Mapping[str, Any] = field(factory=dict)  # checked values (money.financing_values)

    @property
    def edits_codes(self) -> bool:
        return (self.corrections is not None and len(self.corrections) > 0) or bool(self.recodings)

    def financing_for(self, baseline: Financing) -> Financing:
        financing = self.financing or baseline
        return attrs.evolve(financing, **self.financing_changes) if self.financing_changes else financing

    def describe(self) -> list[str]:
        """The scenario's parts in words, for reports."""
        parts = []
        if self.corrections is not None:
            parts.append(f"{len(self.corrections)} episode-level corrections")
        parts += [f"recoding: {_describe_recoding(recoding)}" for recoding in self.recodings]
        if self.tables is not None:
            parts.append(f"tables {self.tables.release.label}")
        if self.weights is not None:
            parts.append(f"weights {self.weights.label}")
        if self.financing is not None:
            parts.append(f"financing {self.financing.label}")
        if self.financing_changes:
            parts.append("financing changes " + ", ".join(f"{k} = {v}" for k, v in self.financing_changes.items()))
        return parts or ["no change"]


def _describe_recoding(recoding: Recoding) -> str:
    if isinstance(recoding, RemoveCodes):
        return f"remove {len(recoding.codes)} code(s) as {recoding.role}"
    if isinstance(recoding, ReplaceCodes):
        return f"replace {len(recoding.mapping)} code(s) as {recoding.role}"
    keep = "kept as secondary" if recoding.keep_old_principal else "dropped"
    return (
        f"principal matching {recoding.principal_pattern} replaced by the first secondary not matching "
        f"{recoding.not_specific_pattern} (old principal {keep})"
    )


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read a scenario TOML file; file paths in it are relative to the TOML file.

    Keys: `name`, `description`, `corrections` (CSV/Parquet/Arrow), `tables` (a release, as
    `load_tables` reads), `weights`, `financing` (a TOML path, or an inline table of values that
    override the baseline's), and `[[recode]]` tables with `kind` = `remove_codes` (`role`,
    `codes` and/or `codes_file`, one code a line), `replace_codes` (`role`, `mapping`) or
    `promote_specific_secondary` (`principal_pattern`, `not_specific_pattern`, `keep_old_principal`).
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TableFormatError("no such file", path=source)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise TableFormatError(f"not valid TOML: {error}", path=source) from error
    known = {"name", "description", "corrections", "tables", "weights", "financing", "recode"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TableFormatError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", path=source)

    def relative(key: str) -> Path:
        value = data[key]
        if not isinstance(value, str):
            raise TableFormatError(f"{value!r} is not a file path", path=source, column=key)
        return path.parent / value

    corrections = None
    if "corrections" in data:
        corrections_path = relative("corrections")
        corrections = corrections_table(_read_any_table(corrections_path), source=str(corrections_path))
    tables = None
    if "tables" in data:
        from nordgroup.tables import load_tables

        tables = load_tables(relative("tables"), cache=True)
    weights = load_weights(relative("weights")) if "weights" in data else None
    financing, changes = None, {}
    if isinstance(data.get("financing"), Mapping):
        changes = dict(data["financing"])
        unknown = sorted(set(changes) - set(_FINANCING_KEYS))
        if unknown:
            raise TableFormatError(f"unknown financing key(s) {', '.join(unknown)}", path=source, column="financing")
        if all(key in changes for key in ("price_per_point", "activity_share", "year")):
            financing, changes = financing_from_mapping(changes, source=f"{source} [financing]"), {}
        else:
            changes = financing_values(changes, source=f"{source} [financing]")
    elif "financing" in data:
        financing = load_financing(relative("financing"))
    recodings = [_recoding_from_toml(entry, index, path) for index, entry in enumerate(data.get("recode", []), start=1)]
    return Scenario(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        corrections=corrections,
        recodings=tuple(recodings),
        tables=tables,
        weights=weights,
        financing=financing,
        financing_changes=changes,
    )


def _recoding_from_toml(entry: Mapping[str, object], index: int, path: Path) -> Recoding:
    where = f"{path} [[recode]] #{index}"
    entry = dict(entry)
    kind = entry.pop("kind", None)
    if kind not in _RECODING_KINDS:
        raise TableFormatError(f"kind {kind!r} is not one of {', '.join(_RECODING_KINDS)}", path=where, column="kind")
    if kind == "remove_codes":
        listed = entry.pop("codes", [])
        if not isinstance(listed, list):
            raise TableFormatError(f"{listed!r} is not a list of codes", path=where, column="codes")
        codes = [str(code) for code in listed]
        if "codes_file" in entry:
            codes_path = path.parent / str(entry.pop("codes_file"))
            if not codes_path.exists():
                raise TableFormatError("no such file", path=str(codes_path))
            codes += [line.split(",")[0].strip() for line in codes_path.read_text(encoding="utf-8-sig").splitlines()]
            codes = [code for code in codes if code and not code.startswith("#")]
        entry["codes"] = codes
    try:
        return _RECODING_KINDS[kind](**entry)
    except (TypeError, ValueError) as error:
        raise TableFormatError(str(error), path=where) from error


def _read_any_table(path: Path) -> pa.Table:
    if not path.exists():
        raise TableFormatError("no such file", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as feather

        return feather.read_table(path)
    with path.open(newline="", encoding="utf-8-sig") as source:
        sample = source.readline()
        source.seek(0)
        reader = csv.DictReader(source, delimiter=";" if sample.count(";") > sample.count(",") else ",")
        rows = list(reader)
        names = [name.strip().lower() for name in reader.fieldnames or []]
    return pa.table(
        {
            name: pa.array([row[raw] for row in rows], pa.string())
            for name, raw in zip(names, reader.fieldnames or [], strict=True)
        }
    )
