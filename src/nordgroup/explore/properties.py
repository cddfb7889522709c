"""`code_info`: what a code is in a release — every property, with its name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import frozen

from nordgroup.codes import clean_written_code
from nordgroup.explore._shared import _arrow_table, _index
from nordgroup.tables.model import (
    NO_DAGGER,
    DrgTables,
)

if TYPE_CHECKING:
    import pyarrow as pa


@frozen
class CodeInfo:
    """Every property the tables give a code, as (where, property, value) rows."""

    code: str
    properties: tuple[tuple[str, str, str], ...]

    @property
    def known(self) -> bool:
        return bool(self.properties)

    def to_arrow(self) -> pa.Table:
        where, name, value = zip(*self.properties, strict=True) if self.properties else ((), (), ())
        return _arrow_table({"where": list(where), "property": list(name), "value": list(value)})

    def __str__(self) -> str:
        if not self.properties:
            return f"{self.code}: not in the tables"
        lines = [self.code]
        for where, name, value in self.properties:
            lines.append(f"  {where:<22} {name:<10} {value}")
        return "\n".join(lines)


def code_info(tables: DrgTables, code: str) -> CodeInfo:
    """The properties of a diagnosis or procedure code, including the pair rows it appears in."""
    code = clean_written_code(code).cleaned
    rows: list[tuple[str, str, str]] = []
    for key in _index(tables).diagnosis_rows_of.get(code, ()):
        where = "diagnosis" if key[1] == NO_DAGGER else f"pair {key[1]}†{key[0]}*"
        rows.extend((where, name, value) for name, value in tables.diagnoses[key].rows())
    for category in sorted(_index(tables).excluding_categories.get(code, ())):
        rows.append(("diagnosis", "COMPL_EXCL", category))
    procedure = tables.procedures.get(code)
    if procedure is not None:
        rows.extend(("procedure", name, value) for name, value in procedure.rows())
    return CodeInfo(code, tuple(rows))
