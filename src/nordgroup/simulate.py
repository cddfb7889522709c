"""What-if simulation: scenarios, recoding, regrouping, before/after money and sample extrapolation.

This module owns the `Scenario` (episode-level corrections, rule-based recodings, another table
release, other weights, other prices), applying it to an episode batch with vectorised edits of the
Arrow list columns, `simulate` (regroup, reprice, compare: per episode, per unit/MDC/DRG/care type,
the DRG migration matrix, an HTML report) and `extrapolate_sample` (a reviewed sample's effect on
the whole population, Horvitz–Thompson weighted, with a bootstrap interval). The formulas are in
`docs/money.md`.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import field, frozen

from nordgroup._dataframes import arrow_table
from nordgroup._toml import tomllib
from nordgroup.codes import NOISE_PATTERN, ROLES, canonical_code
from nordgroup.episodes import CANONICAL_COLUMNS, to_canonical, write_table
from nordgroup.exceptions import NordgroupError, TableFormatError
from nordgroup.grouper import Grouper
from nordgroup.money import (
    Financing,
    WeightTable,
    financing_from_mapping,
    financing_values,
    load_financing,
    load_weights,
    price_episodes,
    with_drg_names,
)
from nordgroup.tables.model import DrgTables

__all__ = [
    "ACTIONS",
    "POSITIONS",
    "ROLES",
    "Baseline",
    "Estimate",
    "Extrapolation",
    "PromoteSpecificSecondary",
    "RemoveCodes",
    "ReplaceCodes",
    "Scenario",
    "SimulationResult",
    "apply_scenario",
    "corrections_table",
    "extrapolate_sample",
    "load_scenario",
    "simulate",
]

ACTIONS = ("add", "remove", "replace")
#: Where an added code goes: after the codes of its role (default), or first in its role (the first
#: procedure, which `secpro` tells apart; the first secondary diagnosis).
POSITIONS = ("last", "first")
_GROUP_COLUMNS = ("drg", "rtc", "mdc", "cc_level")
_FINANCING_KEYS = ("price_per_point", "activity_share", "year", "currency", "demo", "description")


def _canonical_codes(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`codes.canonical_code` over an Arrow column."""
    return pc.utf8_upper(pc.replace_substring_regex(values, NOISE_PATTERN, ""))


# --- scenario -----------------------------------------------------------------------------------


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


# --- vectorised list editing ----------------------------------------------------------------------


@frozen(eq=False)
class _FlatList:
    """A list column as flat elements: values, parent row and position in the row's list."""

    values: pa.Array
    parent: np.ndarray
    position: np.ndarray
    lengths: np.ndarray
    n: int

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> _FlatList:
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        values = array.flatten()
        parent = pc.list_parent_indices(array).to_numpy(zero_copy_only=False).astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        position = np.arange(len(values), dtype=np.int64) - starts[parent] if len(values) else np.zeros(0, np.int64)
        return cls(pc.fill_null(values, ""), parent, position, lengths, len(array))

    def cleaned(self) -> pa.Array:
        return _canonical_codes(self.values)

    def rebuild(self, values: pa.Array, keep: np.ndarray) -> pa.ListArray:
        """The list column from (edited) element values, keeping order, dropping `~keep`."""
        counts = np.bincount(self.parent[keep], minlength=self.n)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(keep)))


def _role_mask(flat: _FlatList, role: str) -> np.ndarray:
    if role == "principal":
        return flat.position == 0
    if role == "secondary":
        return flat.position > 0
    return np.ones(len(flat.parent), bool)


def _apply_recoding(table: pa.Table, recoding: Recoding) -> tuple[pa.Table, np.ndarray]:
    """One rule over all episodes; returns the table and which rows it changed."""
    column = "procedures" if getattr(recoding, "role", "") == "procedure" else "diagnoses"
    flat = _FlatList.of(table.column(column))
    cleaned = flat.cleaned()
    keep = np.ones(len(flat.parent), bool)
    values = flat.values
    if isinstance(recoding, RemoveCodes):
        hit = pc.is_in(cleaned, value_set=pa.array(sorted(recoding.codes), pa.string())).to_numpy(zero_copy_only=False)
        hit &= _role_mask(flat, recoding.role)
        if recoding.role == "principal":  # the principal's place stays, empty: "no principal"
            values = pc.replace_with_mask(values, pa.array(hit), pa.array([""] * int(hit.sum()), pa.string()))
        else:
            keep = ~hit
    elif isinstance(recoding, ReplaceCodes):
        keys = pa.array(list(recoding.mapping), pa.string())
        index = pc.index_in(cleaned, value_set=keys)
        hit = index.is_valid().to_numpy(zero_copy_only=False) & _role_mask(flat, recoding.role)
        replacement = pa.array(list(recoding.mapping.values()), pa.string()).take(
            pa.array(pc.fill_null(index, 0).to_numpy()[hit])
        )
        values = pc.replace_with_mask(values, pa.array(hit), replacement)
    else:
        symptom = pc.match_substring_regex(cleaned, recoding.principal_pattern).to_numpy(zero_copy_only=False)
        specific = ~pc.match_substring_regex(cleaned, recoding.not_specific_pattern).to_numpy(zero_copy_only=False)
        principal_index = np.flatnonzero(flat.position == 0)
        candidate = np.flatnonzero(specific & (flat.position > 0))
        # the flat order is row by row, so the first candidate of each row is where its row first appears
        rows, first = np.unique(flat.parent[candidate], return_index=True)
        promoted = candidate[first]
        row_principal = np.full(flat.n, -1, np.int64)
        row_principal[flat.parent[principal_index]] = principal_index
        target = row_principal[rows]
        eligible = (target >= 0) & symptom[np.maximum(target, 0)]
        target, promoted = target[eligible], promoted[eligible]
        source_index = np.arange(len(flat.parent), dtype=np.int64)
        source_index[target] = promoted
        if recoding.keep_old_principal:
            source_index[promoted] = target
        else:
            keep[promoted] = False
        values = values.take(pa.array(source_index))
        hit = np.zeros(len(flat.parent), bool)
        hit[target] = True
    changed = np.bincount(flat.parent[hit], minlength=flat.n) > 0 if len(flat.parent) else np.zeros(flat.n, bool)
    if not changed.any():
        return table, changed
    rebuilt = flat.rebuild(values, keep)
    return table.set_column(table.column_names.index(column), column, rebuilt), changed


def _apply_corrections(table: pa.Table, corrections: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Episode-level corrections; returns the table, the changed rows, and per correction whether
    it was applied (an unknown episode, or a code to remove or replace that is not there, is not)."""
    applied = np.zeros(len(corrections), bool)
    row = pc.index_in(corrections.column("episode_id"), value_set=pc.cast(table.column("episode_id"), pa.string()))
    known = row.is_valid().to_numpy(zero_copy_only=False)
    rows = pc.fill_null(row, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    touched = np.unique(rows[known])
    changed = np.zeros(len(table), bool)
    if len(touched) == 0:
        return table, changed, applied
    # Edit only the touched episodes, then splice them back by index: the rest is not copied.
    subset = table.select(["diagnoses", "procedures"]).take(pa.array(touched))
    local = np.searchsorted(touched, rows)
    action = corrections.column("action").to_numpy(zero_copy_only=False).astype(str)
    role = corrections.column("role").to_numpy(zero_copy_only=False).astype(str)
    code = _canonical_codes(corrections.column("code")).to_numpy(zero_copy_only=False)
    old = _canonical_codes(corrections.column("old_code")).to_numpy(zero_copy_only=False)
    target = np.where(action == "replace", old, np.where(action == "remove", code, "")).astype(str)
    first = corrections.column("position").to_numpy(zero_copy_only=False).astype(str) == "first"

    for column, roles in (("diagnoses", ("principal", "secondary")), ("procedures", ("procedure",))):
        mine = np.flatnonzero(known & np.isin(role, roles))
        if len(mine) == 0:
            continue
        flat = _FlatList.of(subset.column(column))
        values = flat.values.to_numpy(zero_copy_only=False).astype(object)
        is_principal = flat.position == 0 if column == "diagnoses" else np.zeros(len(values), bool)
        principal = role[mine] == "principal"
        adds = mine[action[mine] == "add"]
        applied[adds] = True

        # Corrections naming a code: a sorted join of element keys (row, principal?, code) with
        # correction keys. The k-th correction of a key takes the k-th element of that key (in
        # list order), so each acts on one occurrence; one with no occurrence left is not applied.
        named = mine[(action[mine] != "add") & (target[mine] != "")]
        element_key = _keys(flat.parent, flat.cleaned().to_numpy(zero_copy_only=False), is_principal)
        order = np.argsort(element_key, kind="stable")
        sorted_keys = element_key[order]
        correction_key = _keys(local[named], target[named], role[named] == "principal")
        low = np.searchsorted(sorted_keys, correction_key, "left")
        count = np.searchsorted(sorted_keys, correction_key, "right") - low
        by_key = np.argsort(correction_key, kind="stable")
        rank = np.empty(len(named), np.int64)
        rank[by_key] = np.arange(len(named)) - np.searchsorted(correction_key[by_key], correction_key[by_key], "left")
        taken = rank < count
        match_correction = named[taken]
        match_element = order[low[taken] + rank[taken]]

        # Principal corrections without a code to match act on whatever the principal is.
        unnamed = mine[principal & (action[mine] != "add") & (target[mine] == "")]
        principal_of_row = np.full(len(touched), -1, np.int64)
        principal_of_row[flat.parent[is_principal]] = np.flatnonzero(is_principal)
        found = principal_of_row[local[unnamed]]
        match_correction = np.concatenate([match_correction, unnamed[found >= 0]])
        match_element = np.concatenate([match_element, found[found >= 0]])
        applied[match_correction] = True
        # An episode with no diagnoses at all gets its principal from a replace.
        inserted = unnamed[(found < 0) & (action[unnamed] == "replace")]
        applied[inserted] = True

        replacing = action[match_correction] == "replace"
        values[match_element[replacing]] = code[match_correction[replacing]]
        removed = match_element[~replacing]
        keep = np.ones(len(values), bool)
        keep[removed[~is_principal[removed]]] = False
        values[removed[is_principal[removed]]] = ""  # the principal's place stays, empty: "no principal"

        # Each element's place: (slot, then tie-break). Kept codes keep their position; an add goes
        # after them all, or `first` before the first procedure / right after the principal; adds to
        # one place keep the corrections' order.
        first_slot = 0 if column == "diagnoses" else -1
        add_rows = np.concatenate([local[inserted], local[adds]])
        add_values = np.concatenate([code[inserted], code[adds]]).astype(object)
        add_slot = np.concatenate([np.full(len(inserted), -1), np.where(first[adds], first_slot, len(values))])
        add_tie = np.concatenate([np.zeros(len(inserted)), 1 + adds]).astype(np.int64)
        if column == "diagnoses":
            # a secondary added to an episode with no diagnoses follows an empty principal
            bare = np.setdiff1d(local[adds][flat.lengths[local[adds]] == 0], local[inserted])
            add_rows = np.concatenate([add_rows, bare])
            add_values = np.concatenate([add_values, np.full(len(bare), "", dtype=object)])
            add_slot = np.concatenate([add_slot, np.full(len(bare), -1)])
            add_tie = np.concatenate([add_tie, np.zeros(len(bare), np.int64)])
        all_rows = np.concatenate([flat.parent[keep], add_rows])
        all_slot = np.concatenate([flat.position[keep], add_slot.astype(np.int64)])
        all_tie = np.concatenate([np.zeros(int(keep.sum()), np.int64), add_tie])
        all_values = np.concatenate([values[keep], add_values])
        sort = np.lexsort((all_tie, all_slot, all_rows))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(all_rows, minlength=len(touched)))]).astype(np.int32)
        edited = pa.ListArray.from_arrays(pa.array(offsets), pa.array(all_values[sort], pa.string()))
        changed[touched[np.unique(local[mine[applied[mine]]])]] = True

        take = np.arange(len(table), dtype=np.int64)
        take[touched] = len(table) + np.arange(len(touched))
        original = table.column(column)
        spliced = pa.chunked_array([*original.chunks, edited.cast(original.type)]).take(pa.array(take))
        table = table.set_column(table.column_names.index(column), column, spliced)
    return table, changed, applied


def _keys(rows: np.ndarray, codes: np.ndarray, principal: np.ndarray) -> np.ndarray:
    """`row|P|code` (principal) or `row|S|code`: one sortable key per element or correction."""
    return np.char.add(np.char.add(rows.astype(str), np.where(principal, "|P|", "|S|")), np.asarray(codes).astype(str))


def apply_scenario(episodes: pa.Table, scenario: Scenario) -> tuple[pa.Table, np.ndarray, list[str]]:
    """The episodes with the scenario's corrections and recodings applied.

    Returns the edited canonical table, a boolean mask of the episodes whose codes were edited,
    and notes (corrections that could not be applied, rows each recoding changed).
    """
    table = to_canonical(episodes)
    changed = np.zeros(len(table), bool)
    notes = []
    if scenario.corrections is not None and len(scenario.corrections):
        table, changed_now, applied = _apply_corrections(table, scenario.corrections)
        changed |= changed_now
        notes.append(
            f"corrections: {int(applied.sum())} of {len(applied)} applied to {int(changed_now.sum())} episodes"
        )
        if not applied.all():
            missing = scenario.corrections.filter(pa.array(~applied))
            sample = ", ".join(
                f"{r['episode_id']} {r['action']} {r['role']} {r['code']}" for r in missing.slice(0, 5).to_pylist()
            )
            notes.append(
                f"{int((~applied).sum())} corrections not applied (unknown episode or code not present), e.g. {sample}"
            )
    for recoding in scenario.recodings:
        table, changed_now = _apply_recoding(table, recoding)
        changed |= changed_now
        notes.append(f"recoding ({_describe_recoding(recoding)}): {int(changed_now.sum())} episodes changed")
    return table, changed, notes


# --- simulation -----------------------------------------------------------------------------------


@frozen(eq=False)
class Baseline:
    """The world as it is: a grouper (one table release), its weights and the year's financing."""

    grouper: Grouper
    weights: WeightTable
    financing: Financing

    def price(self, episodes: pa.Table) -> pa.Table:
        """Group and price canonical episodes."""
        table = to_canonical(episodes)
        return price_episodes(
            self.grouper.group(table), self.weights, self.financing, duration_days=table.column("duration_days")
        )


@frozen(eq=False)
class SimulationResult:
    """Before/after per episode and the summaries of one scenario against the baseline."""

    scenario: Scenario
    episodes: pa.Table  # one row per episode: ids, passed-through columns, drg/points/money before and after
    totals: pa.Table  # one row
    by_unit: pa.Table | None
    by_mdc: pa.Table
    by_drg: pa.Table
    by_care_type: pa.Table
    migration: pa.Table  # drg_before, drg_after, episodes, points and money change; diagonal included
    notes: tuple[str, ...]
    labels: Mapping[str, str]  # what "before" and "after" are: tables, weights, financing

    def write_tables(self, out_dir: str | os.PathLike[str], *, episodes_format: str = "parquet") -> list[Path]:
        """Write the per-episode table and every summary into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = _file_stem(self.scenario.name)
        written = []
        parts = {
            "totals": self.totals,
            "by_unit": self.by_unit,
            "by_mdc": self.by_mdc,
            "by_drg": self.by_drg,
            "by_care_type": self.by_care_type,
            "migration": self.migration,
        }
        path = out / f"{stem}_episodes.{episodes_format}"
        write_table(self.episodes, path)
        written.append(path)
        for name, table in parts.items():
            if table is not None:
                path = out / f"{stem}_{name}.csv"
                write_table(table, path)
                written.append(path)
        return written

    def report_sections(self) -> list[tuple[str, str]]:
        """The HTML sections of this result (several results can share one report)."""
        from nordgroup.report import bar_chart, html_table

        total = self.totals.to_pylist()[0]
        labels = "".join(f"<li>{_escape(k)}: {_escape(v)}</li>" for k, v in self.labels.items())
        parts = "".join(f"<li>{_escape(p)}</li>" for p in self.scenario.describe())
        notes = "".join(f"<li>{_escape(n)}</li>" for n in self.notes)
        summary = (
            f"<p>{_escape(self.scenario.description)}</p><ul>{parts}</ul><ul>{labels}</ul>"
            f"<p>Points {total['points_before']:,.2f} → {total['points_after']:,.2f} ({total['points_change']:+,.2f}); "
            f"casemix index {total['casemix_before']:.4f} → {total['casemix_after']:.4f}; reimbursement "
            f"{total['reimbursement_before']:,.0f} → {total['reimbursement_after']:,.0f} "
            f"({total['reimbursement_change']:+,.0f}). {total['drg_changed']:,} of {total['episodes']:,} episodes "
            f"changed DRG.</p>{html_table(self.totals)}<ul class='note'>{notes}</ul>"
        )
        name = self.scenario.name
        sections = [(f"{name}: summary", summary)]
        if self.by_unit is not None:
            units = self.by_unit
            chart = bar_chart(
                "Change in reimbursement by unit",
                [str(v) for v in units.column(units.column_names[0]).to_pylist()],
                {"reimbursement change": units.column("reimbursement_change").to_pylist()},
            )
            sections.append((f"{name}: by unit", chart + html_table(units)))
        mdc = self.by_mdc
        chart = bar_chart(
            "Change in points by MDC",
            [str(v) for v in mdc.column("mdc").to_pylist()],
            {"points change": mdc.column("points_change").to_pylist()},
        )
        sections.append((f"{name}: by MDC", chart + html_table(mdc, max_rows=40)))
        top = self.by_drg.slice(0, 20)
        chart = bar_chart(
            "DRGs with the largest change in reimbursement",
            [str(v) for v in top.column("drg").to_pylist()],
            {"reimbursement change": top.column("reimbursement_change").to_pylist()},
        )
        sections.append((f"{name}: by DRG (largest changes first)", chart + html_table(self.by_drg, max_rows=40)))
        sections.append((f"{name}: by care type", html_table(self.by_care_type)))
        moves = self.migration.filter(
            pc.not_equal(self.migration.column("drg_before"), self.migration.column("drg_after"))
        )
        sections.append(
            (f"{name}: DRG migration (before → after, most episodes first)", html_table(moves, max_rows=40))
        )
        return sections

    def write_report(self, path: str | os.PathLike[str], *, extrapolation: Extrapolation | None = None) -> Path:
        """A self-contained HTML report with charts."""
        from nordgroup.report import write_report

        sections = self.report_sections()
        if extrapolation is not None:
            sections.append(("Extrapolation to the population", extrapolation.html()))
        return write_report(path, f"Simulation: {self.scenario.name}", sections, intro=_demo_warning(self.labels))


def simulate(
    episodes: pa.Table,
    baseline: Baseline,
    scenario: Scenario,
    *,
    baseline_priced: pa.Table | None = None,
    unit: str = "unit",
) -> SimulationResult:
    """Regroup and reprice `episodes` under the baseline and under `scenario`; compare.

    `baseline_priced` (from `baseline.price(episodes)`) saves regrouping the baseline when several
    scenarios run on the same episodes. When the scenario keeps the baseline's tables, only the
    episodes whose codes it edits are regrouped. `unit` names the column summarised per unit.
    """
    table = to_canonical(arrow_table(episodes))  # any dataframe exporting __arrow_c_stream__
    before = baseline_priced if baseline_priced is not None else baseline.price(table)
    if len(before) != len(table):
        raise NordgroupError(f"baseline_priced has {len(before)} rows for {len(table)} episodes")
    edited, changed, notes = apply_scenario(table, scenario)

    grouper = baseline.grouper
    if scenario.tables is not None and scenario.tables is not grouper.tables:
        grouper = Grouper(scenario.tables)
    same_logic = grouper is baseline.grouper
    if same_logic:
        grouped = _regroup_changed(before, edited, changed, grouper)
    else:
        grouped = grouper.group(edited).select(["episode_id", *_GROUP_COLUMNS])
    weights = scenario.weights or baseline.weights
    financing = scenario.financing_for(baseline.financing)
    after = price_episodes(grouped, weights, financing, duration_days=table.column("duration_days"))

    extras = [name for name in table.column_names if name not in CANONICAL_COLUMNS]
    per_episode = _per_episode(table, extras, before, after, changed)
    labels = {
        "before": _label(baseline.grouper, baseline.weights, baseline.financing),
        "after": _label(grouper, weights, financing),
    }
    has_unit = unit in per_episode.column_names
    unpriced = int(pc.sum(pc.invert(after.column("priced"))).as_py() or 0)
    if unpriced:
        notes.append(f"{unpriced} episodes after the scenario fall in DRGs the weight table lacks: not priced")
    return SimulationResult(
        scenario=scenario,
        episodes=per_episode,
        totals=_totals(per_episode),
        by_unit=_compare(per_episode, unit, unit) if has_unit else None,
        by_mdc=_compare(per_episode, "mdc_before", "mdc_after", name="mdc"),
        by_drg=with_drg_names(
            _sort_by_change(_compare(per_episode, "drg_before", "drg_after", name="drg")),
            grouper.tables,
            baseline.grouper.tables,
        ),
        by_care_type=_compare(per_episode, "care_type", "care_type"),
        migration=_migration(per_episode),
        notes=tuple(notes),
        labels=labels,
    )


def _label(grouper: Grouper, weights: WeightTable, financing: Financing) -> str:
    return f"{grouper.tables.release.label}; weights {weights.label}; {financing.label}"


def _regroup_changed(before: pa.Table, edited: pa.Table, changed: np.ndarray, grouper: Grouper) -> pa.Table:
    """Same logic: regroup only the edited episodes and splice their results into the baseline's."""
    base = before.select(["episode_id", *_GROUP_COLUMNS])
    rows = np.flatnonzero(changed)
    if len(rows) == 0:
        return base
    regrouped = grouper.group(edited.take(pa.array(rows)))
    take = np.arange(len(base), dtype=np.int64)
    take[rows] = len(base) + np.arange(len(rows))
    indices = pa.array(take)
    for name in _GROUP_COLUMNS:
        column = base.column(name)
        fresh = regrouped.column(name).cast(column.type)
        base = base.set_column(
            base.column_names.index(name), name, pa.chunked_array([*column.chunks, *fresh.chunks]).take(indices)
        )
    return base


def _per_episode(
    table: pa.Table, extras: list[str], before: pa.Table, after: pa.Table, changed: np.ndarray
) -> pa.Table:
    columns = {"episode_id": table.column("episode_id")}
    columns.update({name: table.column(name) for name in extras})
    columns["care_type"] = after.column("care_type")
    columns["codes_changed"] = pa.array(changed)
    for name in ("drg", "rtc", "mdc"):
        columns[f"{name}_before"] = pc.cast(before.column(name), pa.string())
        columns[f"{name}_after"] = pc.cast(after.column(name), pa.string())
    columns["drg_changed"] = pc.fill_null(pc.not_equal(columns["drg_before"], columns["drg_after"]), True)
    for name in ("priced", "points", "reimbursement"):
        columns[f"{name}_before"] = before.column(name)
        columns[f"{name}_after"] = after.column(name)
        if name != "priced":
            columns[f"{name}_change"] = pc.subtract(after.column(name), before.column(name))
    return pa.table(columns)


_SIDE_SUMS = ("points", "reimbursement")


def _side(per_episode: pa.Table, key: str, side: str, name: str) -> pa.Table:
    work = pa.table(
        {
            name: pc.fill_null(pc.cast(per_episode.column(key), pa.string()), "(none)"),
            "priced": pc.cast(per_episode.column(f"priced_{side}"), pa.int64()),
            **{value: per_episode.column(f"{value}_{side}") for value in _SIDE_SUMS},
        }
    )
    summary = work.group_by(name, use_threads=False).aggregate(
        [("priced", "count"), ("priced", "sum"), *[(value, "sum") for value in _SIDE_SUMS]]
    )
    return pa.table(
        {
            name: summary.column(name),
            f"episodes_{side}": summary.column("priced_count"),
            f"priced_{side}": summary.column("priced_sum"),
            **{f"{value}_{side}": pc.fill_null(summary.column(f"{value}_sum"), 0.0) for value in _SIDE_SUMS},
        }
    )


def _compare(per_episode: pa.Table, key_before: str, key_after: str, *, name: str | None = None) -> pa.Table:
    """Episodes, points, casemix and money per key, before and after, side by side."""
    name = name or key_before
    joined = _side(per_episode, key_before, "before", name).join(
        _side(per_episode, key_after, "after", name), keys=name, join_type="full outer", use_threads=False
    )
    out = {name: joined.column(name)}
    for side in ("before", "after"):
        out[f"episodes_{side}"] = pc.fill_null(joined.column(f"episodes_{side}"), 0)
    for value in _SIDE_SUMS:
        for side in ("before", "after"):
            out[f"{value}_{side}"] = pc.fill_null(joined.column(f"{value}_{side}"), 0.0)
        out[f"{value}_change"] = pc.subtract(out[f"{value}_after"], out[f"{value}_before"])
    for side in ("before", "after"):
        priced = pc.cast(pc.fill_null(joined.column(f"priced_{side}"), 0), pa.float64())
        out[f"casemix_{side}"] = pc.divide(out[f"points_{side}"], pc.if_else(pc.equal(priced, 0.0), None, priced))
    return pa.table(out).sort_by([(name, "ascending")])


def _sort_by_change(table: pa.Table) -> pa.Table:
    size = pc.abs(table.column("reimbursement_change"))
    return table.append_column("_size", size).sort_by([("_size", "descending")]).drop_columns(["_size"])


def _totals(per_episode: pa.Table) -> pa.Table:
    def total(name: str) -> float:
        return float(pc.sum(per_episode.column(name)).as_py() or 0.0)

    def count(mask: pa.ChunkedArray) -> int:
        return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)

    priced_before = count(per_episode.column("priced_before"))
    priced_after = count(per_episode.column("priced_after"))
    points_before, points_after = total("points_before"), total("points_after")
    return pa.table(
        {
            "episodes": [len(per_episode)],
            "codes_changed": [count(per_episode.column("codes_changed"))],
            "drg_changed": [count(per_episode.column("drg_changed"))],
            "unpriced_before": [len(per_episode) - priced_before],
            "unpriced_after": [len(per_episode) - priced_after],
            "points_before": [points_before],
            "points_after": [points_after],
            "points_change": [points_after - points_before],
            "casemix_before": [points_before / priced_before if priced_before else None],
            "casemix_after": [points_after / priced_after if priced_after else None],
            "reimbursement_before": [total("reimbursement_before")],
            "reimbursement_after": [total("reimbursement_after")],
            "reimbursement_change": [total("reimbursement_after") - total("reimbursement_before")],
        }
    )


def _migration(per_episode: pa.Table) -> pa.Table:
    work = per_episode.select(["drg_before", "drg_after", "points_change", "reimbursement_change"])
    work = work.set_column(0, "drg_before", pc.fill_null(work.column("drg_before"), "(none)"))
    work = work.set_column(1, "drg_after", pc.fill_null(work.column("drg_after"), "(none)"))
    summary = work.group_by(["drg_before", "drg_after"], use_threads=False).aggregate(
        [([], "count_all"), ("points_change", "sum"), ("reimbursement_change", "sum")]
    )
    table = pa.table(
        {
            "drg_before": summary.column("drg_before"),
            "drg_after": summary.column("drg_after"),
            "episodes": summary.column("count_all"),
            "points_change": pc.fill_null(summary.column("points_change_sum"), 0.0),
            "reimbursement_change": pc.fill_null(summary.column("reimbursement_change_sum"), 0.0),
        }
    )
    return table.sort_by([("episodes", "descending"), ("drg_before", "ascending"), ("drg_after", "ascending")])


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "scenario"


def _escape(value: object) -> str:
    import html

    return html.escape(str(value))


def _demo_warning(labels: Mapping[str, str]) -> str:
    if any("DEMO" in text for text in labels.values()):
        return "DEMO values: some weights or prices here are invented for illustration, not official figures."
    return ""


# --- from a reviewed sample to the population -----------------------------------------------------------


@frozen
class Estimate:
    """An estimated population total change with its bootstrap percentile interval."""

    change: float
    low: float
    high: float
    baseline_total: float  # estimated population total before the corrections

    @property
    def relative_change(self) -> float:
        return self.change / self.baseline_total if self.baseline_total else math.nan

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@frozen
class Extrapolation:
    """A reviewed sample's effect on the whole population, and whether it supports a conclusion."""

    points: Estimate
    money: Estimate
    sample_size: int
    changed_in_sample: int
    population_size: float  # sum of 1 / inclusion probability
    level: float
    replicates: int
    conclusive: bool
    verdict: str  # the conclusion in one plain sentence

    def html(self) -> str:
        from nordgroup.report import html_table

        table = pa.table(
            {
                "quantity": ["points", "money"],
                "estimated change": [self.points.change, self.money.change],
                f"{self.level:.0%} low": [self.points.low, self.money.low],
                f"{self.level:.0%} high": [self.points.high, self.money.high],
                "relative change": [self.points.relative_change, self.money.relative_change],
            }
        )
        return (
            f"<p><strong>{_escape(self.verdict)}</strong></p>{html_table(table)}<p class='note'>Sample of "
            f"{self.sample_size} reviewed episodes ({self.changed_in_sample} changed), standing for about "
            f"{self.population_size:,.0f} episodes; {self.replicates} bootstrap replicates.</p>"
        )


def _strata(table: pa.Table, columns: list[str]) -> np.ndarray:
    """The stratum number of each row: one per distinct combination of `columns` (none: one stratum)."""
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise NordgroupError(f"the sample has no stratum column {', '.join(map(repr, missing))}")
    codes = np.zeros(len(table), np.int64)
    for name in columns:
        text = pc.fill_null(pc.cast(table.column(name), pa.string()), "").to_numpy(zero_copy_only=False)
        values = np.unique(text, return_inverse=True)[1].reshape(-1)
        codes = codes * (int(values.max(initial=0)) + 1) + values
    return np.unique(codes, return_inverse=True)[1].reshape(-1)


def extrapolate_sample(
    sample: SimulationResult | pa.Table,
    *,
    inclusion_probability: str = "inclusion_probability",
    stratum: str | Sequence[str] | None = None,
    replicates: int = 2000,
    level: float = 0.95,
    min_sample: int = 30,
    min_changed: int = 5,
    seed: int = 0,
) -> Extrapolation:
    """Estimate the population change in points and money from a reviewed sample.

    `sample` is the result of `simulate` on the sampled episodes with the review's corrections
    (or its `episodes` table), carrying each episode's inclusion probability π. The change is the
    Horvitz–Thompson total Σ (after − before) / π; the interval resamples episodes with replacement
    (within `stratum` when given: a column, or several whose combinations are the strata)
    `replicates` times and takes percentiles. The result says plainly
    that the sample is too small when it has fewer than `min_sample` episodes or fewer than
    `min_changed` episodes whose points changed, and that it is inconclusive when the interval
    includes no change.
    """
    table = sample.episodes if isinstance(sample, SimulationResult) else sample
    if inclusion_probability not in table.column_names:
        raise NordgroupError(
            f"the sample has no {inclusion_probability!r} column (the probability each episode had of being reviewed)"
        )
    probability = pc.cast(table.column(inclusion_probability), pa.float64()).to_numpy(zero_copy_only=False)
    if len(probability) and not (np.all(np.isfinite(probability)) and np.all((probability > 0) & (probability <= 1))):
        raise NordgroupError(f"{inclusion_probability} must be in (0, 1] for every reviewed episode")
    weight = 1.0 / probability if len(probability) else np.zeros(0)

    def values(name: str) -> np.ndarray:
        return pc.fill_null(table.column(name), 0.0).to_numpy(zero_copy_only=False).astype(np.float64)

    points_before, points_change = values("points_before"), values("points_change")
    money_before, money_change = values("reimbursement_before"), values("reimbursement_change")
    n = len(table)
    changed = int(np.count_nonzero(points_change))
    strata = _strata(table, [stratum] if isinstance(stratum, str) else list(stratum or ()))
    rng = np.random.default_rng(seed)
    weighted = np.column_stack([weight * points_change, weight * money_change]) if n else np.zeros((0, 2))
    replicate_totals = np.zeros((replicates, 2))
    for group in np.unique(strata):
        members = np.flatnonzero(strata == group)
        # replicates x members draws, in blocks so a 100 000-episode sample stays within memory
        block = max(1, 2_000_000 // max(1, len(members)))
        for start in range(0, replicates, block):
            stop = min(replicates, start + block)
            draws = members[rng.integers(0, len(members), size=(stop - start, len(members)))]
            replicate_totals[start:stop] += weighted[draws].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(replicate_totals, [tail, 1 - tail], axis=0) if n else (np.zeros(2), np.zeros(2))
    points = Estimate(float(weighted[:, 0].sum()), float(low[0]), float(high[0]), float((weight * points_before).sum()))
    money = Estimate(float(weighted[:, 1].sum()), float(low[1]), float(high[1]), float((weight * money_before).sum()))

    if n < min_sample:
        verdict = f"Too small to conclude: {n} reviewed episodes, at least {min_sample} are needed."
    elif changed < min_changed:
        verdict = (
            f"Too small to conclude: only {changed} of {n} reviewed episodes changed points; at least {min_changed} "
            "are needed to estimate the effect."
        )
    elif not points.excludes_zero:
        verdict = (
            f"Inconclusive: the {level:.0%} interval of the change in points "
            f"({points.low:+,.1f} to {points.high:+,.1f}) includes no change."
        )
    else:
        direction = "raise" if points.change > 0 else "lower"
        verdict = (
            f"The corrections {direction} the population's points by about {abs(points.change):,.1f} "
            f"({level:.0%} interval {points.low:+,.1f} to {points.high:+,.1f}) and its money by about "
            f"{abs(money.change):,.0f} ({money.low:+,.0f} to {money.high:+,.0f})."
        )
    conclusive = n >= min_sample and changed >= min_changed and points.excludes_zero
    return Extrapolation(
        points=points,
        money=money,
        sample_size=n,
        changed_in_sample=changed,
        population_size=float(weight.sum()),
        level=level,
        replicates=replicates,
        conclusive=conclusive,
        verdict=verdict,
    )
