"""Applying a scenario to an episode batch: vectorised edits of the Arrow list columns, and which
episodes changed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.codes import NOISE_PATTERN
from nordgroup.episodes.layouts import to_canonical
from nordgroup.money.scenario import Recoding, RemoveCodes, ReplaceCodes, Scenario, _describe_recoding


def _canonical_codes(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`codes.canonical_code` over an Arrow column."""
    return pc.utf8_upper(pc.replace_substring_regex(values, NOISE_PATTERN, ""))


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
