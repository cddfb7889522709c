"""Synthetic episodes drawn from any table set: demo data, benchmarks and property tests.

Episodes look like a hospital's year: most principal diagnoses are codes that can be principal
(a real MDC), a share are outpatient contacts (duration 0), secondary diagnoses favour codes that
carry a complication category, and a third of inpatient stays have an OR procedure. Extra columns
`unit` and `period` (ISO week) let the audit and the simulation split results. Vectorised with
numpy: a million episodes take about a second.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nordgroup.tables.model import NO_DAGGER, DrgTables

__all__ = ["recode", "synthesize"]


def synthesize(tables: DrgTables, n: int, *, seed: int = 0, units: int = 12, year: int | None = None) -> pa.Table:
    """`n` canonical episodes (see `nordgroup.episodes`) drawn from the codes of `tables`."""
    rng = np.random.default_rng(seed)
    singles = [key for key in tables.diagnoses if key[1] == NO_DAGGER]
    principal_pool = np.array(
        [code for code, _ in singles if tables.diagnoses[(code, NO_DAGGER)].mdc not in ("", "99")]
        or [c for c, _ in singles]
    )
    complicating = np.array(
        [code for code, _ in singles if tables.diagnoses[(code, NO_DAGGER)].compl] or principal_pool
    )
    any_code = np.array([code for code, _ in singles])
    procedures = list(tables.procedures)
    operating = np.array([c for c in procedures if 1 in tables.procedures[c].or_values] or procedures or [""])
    other = np.array([c for c in procedures if 1 not in tables.procedures[c].or_values] or procedures or [""])

    outpatient = rng.random(n) < 0.4
    duration = np.where(outpatient, 0, np.minimum(rng.geometric(0.18, n), 120)).astype(np.int32)
    age_years = np.clip(rng.normal(55, 24, n), 0, 104)
    newborn = rng.random(n) < 0.03
    age = np.where(newborn, rng.integers(0, 28, n), (age_years * 365.25).astype(np.int64)).astype(np.int32)
    sex = rng.integers(1, 3, n).astype(np.int8)
    discharge = rng.choice(np.array(["N", "E", "R"]), n, p=[0.95, 0.02, 0.03])

    n_secondary = np.where(outpatient, rng.poisson(0.6, n), rng.poisson(2.0, n)).clip(0, 12)
    n_diagnoses = 1 + n_secondary
    principal = rng.choice(principal_pool, n)
    # Patients fit their principal diagnosis, as in real data: newborns for MDC 15, women of
    # child-bearing age for MDC 14, the right sex for MDC 12 (male) and 13 (female). A few stay
    # unfitting on purpose, so that the validation rules have something to catch.
    mdc_of = {code: tables.diagnoses[(code, NO_DAGGER)].mdc for code in np.unique(principal)}
    principal_mdc = np.array([mdc_of[code] for code in principal])
    fitted = rng.random(n) < 0.98
    newborn |= fitted & (principal_mdc == "15")
    age = np.where(newborn, rng.integers(0, 28, n), age).astype(np.int32)
    pregnant = fitted & (principal_mdc == "14")
    age = np.where(pregnant, rng.integers(17 * 365, 44 * 365, n), age).astype(np.int32)
    sex = np.where(fitted & np.isin(principal_mdc, ["13", "14"]), 2, sex).astype(np.int8)
    sex = np.where(fitted & (principal_mdc == "12"), 1, sex).astype(np.int8)
    total_secondary = int(n_secondary.sum())
    secondary = np.where(
        rng.random(total_secondary) < 0.5,
        rng.choice(complicating, total_secondary),
        rng.choice(any_code, total_secondary),
    )
    diagnosis_values = np.empty(int(n_diagnoses.sum()), dtype=object)
    offsets = np.concatenate([[0], np.cumsum(n_diagnoses)]).astype(np.int32)
    diagnosis_values[offsets[:-1]] = principal
    is_secondary = np.ones(len(diagnosis_values), bool)
    is_secondary[offsets[:-1]] = False
    diagnosis_values[is_secondary] = secondary

    has_operation = ~outpatient & (rng.random(n) < 0.35)
    n_procedures = rng.poisson(np.where(outpatient, 0.8, 1.5), n).clip(0, 8) + has_operation
    total_procedures = int(n_procedures.sum())
    procedure_values = rng.choice(other, total_procedures).astype(object)
    procedure_offsets = np.concatenate([[0], np.cumsum(n_procedures)]).astype(np.int32)
    first_procedure = procedure_offsets[:-1][has_operation]
    procedure_values[first_procedure] = rng.choice(operating, len(first_procedure))

    year = year or tables.release.year or 2017
    week = rng.integers(1, 53, n)
    return pa.table(
        {
            "episode_id": pa.array(np.char.add("E", np.arange(1, n + 1).astype(str))),
            "sex": pa.array(sex),
            "age_days": pa.array(age),
            "duration_days": pa.array(duration),
            "discharge": pa.array(discharge),
            "diagnoses": pa.ListArray.from_arrays(pa.array(offsets), pa.array(diagnosis_values, pa.string())),
            "procedures": pa.ListArray.from_arrays(
                pa.array(procedure_offsets), pa.array(procedure_values, pa.string())
            ),
            "unit": pa.array(np.char.add("unit-", np.char.zfill(rng.integers(1, units + 1, n).astype(str), 2))),
            "period": pa.array(np.char.add(f"{year}-W", np.char.zfill(week.astype(str), 2))),
        }
    )


def recode(
    episodes: pa.Table,
    tables: DrgTables,
    *,
    drop: float = 0.0,
    add: float = 0.0,
    drop_procedures: float = 0.0,
    add_procedures: float = 0.0,
    seed: int = 0,
) -> pa.Table:
    """Another coding of the same episodes, at known rates: what `compare` should find.

    Each secondary diagnosis is dropped with probability `drop`, and for each one a code drawn
    from the tables is added with probability `add` (so B's recall is about 1 - drop and its
    precision (1 - drop) / (1 - drop + add)); procedures likewise. The principal diagnosis and
    every other column stay as they are.
    """
    rng = np.random.default_rng(seed)
    singles = np.array(sorted(code for code, dagger in tables.diagnoses if dagger == NO_DAGGER))
    procedures = np.array(sorted(tables.procedures) or [""])
    table = episodes
    for name, pool, first_kept, p_drop, p_add in (
        ("diagnoses", singles, True, drop, add),
        ("procedures", procedures, False, drop_procedures, add_procedures),
    ):
        column = table.column(name).combine_chunks()
        offsets = column.offsets.to_numpy().astype(np.int64)
        values = column.values.slice(offsets[0], offsets[-1] - offsets[0])
        offsets -= offsets[0]
        counts = np.diff(offsets)
        row = np.repeat(np.arange(len(table)), counts)
        droppable = (
            np.arange(len(values)) != np.repeat(offsets[:-1], counts) if first_kept else np.ones(len(values), bool)
        )
        # one decision per code and episode, so that a code written twice is dropped as one code
        codes = pc.dictionary_encode(pc.fill_null(values, "")).indices.to_numpy(zero_copy_only=False)
        code_in_row, first_of_code = _factorise(row * (int(codes.max(initial=0)) + 1) + codes)
        keep = ~droppable | (rng.random(int(code_in_row.max(initial=-1)) + 1) >= p_drop)[code_in_row]
        distinct = np.zeros(int(code_in_row.max(initial=-1)) + 1, bool)
        distinct[code_in_row[droppable]] = True  # the episode's droppable codes, each once
        added = rng.binomial(np.bincount(row[first_of_code[distinct]], minlength=len(table)), p_add)
        added_row = np.repeat(np.arange(len(table)), added)
        new_row = np.concatenate([row[keep], added_row])
        order = np.argsort(new_row, kind="stable")  # kept codes first, in their order, then the added
        new_codes = pa.array(_new_codes(pool, values, row, added_row, rng), pa.string())
        new_values = pa.concat_arrays([values.filter(pa.array(keep)), new_codes])
        new_offsets = np.concatenate([[0], np.cumsum(np.bincount(new_row, minlength=len(table)))]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(new_offsets), new_values.take(pa.array(order)))
        table = table.set_column(table.column_names.index(name), name, lists)
    return table


def _new_codes(pool: np.ndarray, values: pa.Array, row: np.ndarray, added_row: np.ndarray, rng) -> np.ndarray:
    """A code of `pool` for each added element that its episode does not have yet (redrawn until so)."""
    existing = pc.fill_null(pc.index_in(values, value_set=pa.array(pool)), -1).to_numpy(zero_copy_only=False)
    existing_keys = (row * len(pool) + existing)[existing >= 0]  # codes outside the pool meet no draw
    drawn = rng.integers(0, len(pool), len(added_row))
    for _ in range(100):
        keys = added_row * len(pool) + drawn
        first = _factorise(keys)[1]
        repeated = np.ones(len(keys), bool)
        repeated[first] = False
        bad = np.flatnonzero(np.isin(keys, existing_keys) | repeated)
        if not len(bad):
            break
        drawn[bad] = rng.integers(0, len(pool), len(bad))
    return pool[drawn]


def _factorise(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per key its distinct key's number (in sorted order), and each distinct key's first position:
    `np.unique(return_inverse, return_index)` by one stable sort (numpy 2's hashing is much slower)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    new = np.concatenate([[True], ordered[1:] != ordered[:-1]]) if len(keys) else np.zeros(0, bool)
    inverse = np.empty(len(keys), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return inverse, order[new]
