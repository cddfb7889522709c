"""The small pieces every table question uses: the code index, code and episode texts, Arrow tables
of rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from nordgroup._memo import per_object
from nordgroup.engine.reference import (
    Episode,
    recode_sex,
)
from nordgroup.tables.model import (
    DiagnosisKey,
    DiagnosisProperties,
    DrgTables,
    Rule,
)

if TYPE_CHECKING:
    import pyarrow as pa


_ADULT_AGE_DAYS = 40 * 365  # far from every age limit the releases use


_SEXES = (1, 2, None)


@frozen(eq=False)
class _Index:
    diagnosis_rows_of: Mapping[str, tuple[DiagnosisKey, ...]]
    excluding_categories: Mapping[str, frozenset[str]]
    procedures_by_procpr: Mapping[str, tuple[str, ...]]
    procedures_by_dgprop: Mapping[str, tuple[str, ...]]
    procedures_by_or: Mapping[int, tuple[str, ...]]


@per_object
def _index(tables: DrgTables) -> _Index:
    rows_of: dict[str, list[DiagnosisKey]] = defaultdict(list)
    for key in tables.diagnoses:
        rows_of[key[0]].append(key)
        if key[1]:
            rows_of[key[1]].append(key)
    excluding: dict[str, set[str]] = defaultdict(set)
    for category, keys in tables.exclusions.items():
        for code, _ in keys:
            excluding[code].add(category)
    by_procpr: dict[str, list[str]] = defaultdict(list)
    by_dgprop: dict[str, list[str]] = defaultdict(list)
    by_or: dict[int, list[str]] = defaultdict(list)
    for code in sorted(tables.procedures):
        props = tables.procedures[code]
        for or_value in props.or_values or {0}:
            by_or[or_value].append(code)
        for value in props.procpr:
            by_procpr[value].append(code)
        for value in props.dgprop:
            by_dgprop[value].append(code)
    freeze = lambda d: {k: tuple(v) for k, v in d.items()}  # noqa: E731
    return _Index(
        diagnosis_rows_of=freeze(rows_of),
        excluding_categories={k: frozenset(v) for k, v in excluding.items()},
        procedures_by_procpr=freeze(by_procpr),
        procedures_by_dgprop=freeze(by_dgprop),
        procedures_by_or=freeze(by_or),
    )


def _principal_columns_hold(rule: Rule, props: DiagnosisProperties | None, sex: int | None) -> bool:
    if rule.icd == "+" and props is None:
        return False
    if rule.icd == "-" and props is not None:
        return False
    if rule.sex and {"M": 1, "F": 2}.get(rule.sex, -1) != sex and not (rule.sex == "-" and sex is None):
        return False
    mdc = recode_sex(props.mdc, sex) if props else ""
    dgcat = recode_sex(props.dgcat, sex) if props else ""
    pdgprop = props.pdgprop if props else frozenset()
    return (
        (not rule.mdc or rule.mdc == mdc)
        and (not rule.dgcat or rule.dgcat == dgcat)
        and (not rule.pdgprop or rule.pdgprop in pdgprop)
    )


def _code_text(written: tuple[str, str]) -> str:
    return f"{written[0]} {written[1]}".strip()


def _episode_text(episode: Episode) -> str:
    dx = ",".join(_code_text(d) for d in episode.diagnoses)
    px = ",".join(episode.procedures)
    return (
        f"dx={dx} px={px or '-'} sex={episode.sex} age={episode.age_days} "
        f"dur={episode.duration_days} disch={episode.discharge}"
    )


def _drg_sort_key(drg: str) -> tuple[int, str]:
    digits = "".join(ch for ch in drg if ch.isdigit())
    return (int(digits) if digits else 0, drg)


def _arrow_table(columns: dict[str, list[Any]]) -> pa.Table:
    # Arrow is imported on demand: the interactive table questions answer in text and should not
    # pay for loading it.
    import pyarrow as pa

    return pa.table(columns)
