"""The compiled rule bitsets narrow the search without hiding a rule that holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nordgroup.engine.compile import LIMIT_OPS, _limit_bands
from nordgroup.engine.encode import MISSING

limits = st.lists(
    st.one_of(st.just((0, 0)), st.tuples(st.sampled_from(sorted(LIMIT_OPS.values())), st.integers(0, 50_000))),
    min_size=1,
    max_size=40,
)


def _holds(op: int, days: int, value: int) -> bool:
    if op == 0:
        return True
    if value == MISSING:
        return False
    return value < days if op == LIMIT_OPS["<"] else value > days


@settings(deadline=None)
@given(limits, st.lists(st.one_of(st.integers(-5, 60_000), st.just(MISSING)), min_size=1, max_size=20))
def test_a_values_band_holds_exactly_the_rules_whose_limit_it_meets(limit_list, values):
    breaks, band_rules = _limit_bands(limit_list)
    for value in values:
        # the kernel's band: how many breaks are <= the value (it counts them), the last if unknown
        band = len(breaks) + 1 if value == MISSING else int(np.searchsorted(breaks, value, side="right"))
        words = band_rules[band]
        for rule, (op, days) in enumerate(limit_list):
            in_band = bool((int(words[rule >> 6]) >> (rule & 63)) & 1)
            assert in_band == _holds(op, days, value), (rule, op, days, value)


def test_a_pickled_value_is_built_once_and_read_back(tmp_path):
    from nordgroup._memo import pickled

    builds = []

    def build():
        builds.append(1)
        return {"rules": [1, 2, 3]}

    path = tmp_path / "sub" / "value.pickle"
    assert pickled(path, build) == {"rules": [1, 2, 3]}
    assert pickled(path, build) == {"rules": [1, 2, 3]}
    assert len(builds) == 1
    assert [p.name for p in path.parent.iterdir()] == ["value.pickle"]  # no temporary file left


def test_compiled_arrays_do_not_depend_on_the_hash_seed():
    """Two processes with different hash seeds compile the same bytes (sets iterate differently)."""
    import os
    import subprocess
    import sys

    from tests.conftest import DEMO_TABLES

    code = (
        "import hashlib; from nordgroup import load_tables; from nordgroup.engine.compile import compile_tables; "
        f"arrays = compile_tables(load_tables({str(DEMO_TABLES)!r})).kernel_arrays(); "
        "print(hashlib.sha256(b''.join(getattr(a, 'tobytes', lambda: repr(a).encode())() for a in arrays)).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1 and "" not in digests


def test_codes_the_kernel_cannot_tell_apart_share_one_row_and_rows_are_one_per_kind(nor_grouper):
    """One row per distinct (properties, exclusions): the per-code arrays stay small enough for
    the core's cache (see docs/performance.md), and no code reads another kind's row."""
    grouper = nor_grouper(2017)
    tables, compiled = grouper.tables, grouper.compiled
    excluded_from: dict = {}
    for category, keys in tables.exclusions.items():
        for key in keys:
            excluded_from.setdefault(key, set()).add(category)
    kinds = [
        ({key: (tables.diagnoses.get(key), frozenset(excluded_from.get(key, ()))) for key in compiled.diagnosis_index},
         compiled.diagnosis_index, len(compiled.key_record)),
        ({code: tables.procedures[code] for code in compiled.procedure_index},
         compiled.procedure_index, len(compiled.procedure_record)),
    ]  # fmt: skip
    for kind_of, row_of, rows in kinds:
        row_of_kind: dict = {}
        for code, kind in kind_of.items():
            assert row_of_kind.setdefault(kind, row_of[code]) == row_of[code]
        assert sorted(row_of_kind.values()) == list(range(rows))  # distinct kinds, distinct rows, all used
        assert rows < len(row_of) / 5
