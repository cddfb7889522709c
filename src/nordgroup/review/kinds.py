"""What a finding is: the finding kinds and their severity, the findings' schema, the DRGs that mean
a coding error, and how the parts of findings become one table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.review._columns import flat as _flat
from nordgroup.review._columns import repeat_text as _repeat
from nordgroup.tables.model import DrgTables

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


def error_drgs(tables: DrgTables) -> frozenset[str]:
    """The error DRGs: those of the rules for episodes without a principal diagnosis, and their
    sub-groups (NordDRG 470, 470P, ...; the Swedish version's Z-DRGs the same way)."""
    roots = {rule.drg for rule in tables.rules if rule.icd == "-"}
    bases = {drg[:3] for drg in roots}
    return frozenset(roots | {drg for drg in tables.drgs if drg[:3] in bases})


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
