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

from nordgroup.tables.model import NO_DAGGER, DrgTables

__all__ = ["synthesize"]


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
