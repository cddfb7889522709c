"""Reader of the Norwegian `DefinitionData` JSON (zipped or not), exactly as Helsedirektoratet ships it.

The files start with a UTF-8 BOM, close lists and objects with trailing commas and carry raw
control characters inside strings (a newline in a key): all read as they are, never edited by hand.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from nordgroup.exceptions import TableFormatError
from nordgroup.tables._build import TableBuilder

__all__ = ["read_norwegian_json", "read_norwegian_source"]

_TRAILING_COMMA = re.compile(rb",(\s*[}\]])")
_RELEASE_NAME = re.compile(r"DefinitionData_([A-Za-z]+)_(\d{4})_([A-Za-z0-9]+)", re.IGNORECASE)
_TABLES = ("drglogic", "dg", "proc", "complcat", "complexcl", "drgnames")


def read_norwegian_source(path: Path) -> tuple[bytes, str]:
    """The JSON bytes and the name they came from (the one .json member of a zip, or the file)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".json")]
            if len(members) != 1:
                raise TableFormatError(f"expected one .json file in the zip, found {members}", path=str(path))
            return archive.read(members[0]), f"{path}!{members[0]}"
    return path.read_bytes(), str(path)


def release_from_name(name: str) -> tuple[str, int | None, str]:
    """(country, year, release) from a file name like `DefinitionData_NOR_2017_PR1aN.json`."""
    match = _RELEASE_NAME.search(name)
    if not match:
        return "nor", None, Path(name).stem
    return match.group(1).lower(), int(match.group(2)), match.group(3)


def read_norwegian_json(data: bytes, source: str) -> TableBuilder:
    """Feed every table of one DefinitionData JSON document to a `TableBuilder`."""
    try:
        text = _TRAILING_COMMA.sub(rb"\1", data).decode("utf-8-sig")
        document = json.loads(text, strict=False)  # strict=False: raw control characters in strings
    except UnicodeDecodeError as error:
        raise TableFormatError(f"not UTF-8 ({error.reason} at byte {error.start})", path=source) from error
    except json.JSONDecodeError as error:
        raise TableFormatError(
            f"broken JSON: {error.msg} (line {error.lineno}, column {error.colno})", path=source
        ) from error
    missing = [name for name in _TABLES if name not in document]
    if missing:
        raise TableFormatError(f"missing table(s) {', '.join(missing)}; found {', '.join(document)}", path=source)

    builder = TableBuilder(source)
    for row, raw in _rows(document, "drglogic", source):
        builder.add_rule(
            row,
            order=row,  # the Norwegian file is in first-match order; its `ord` is the rule's identifier
            values={
                "id": raw.get("ord"),
                "drg": raw.get("drg"),
                "rtc": raw.get("rtc"),
                "icd": raw.get("icd"),
                "mdc": raw.get("mdc"),
                "dgcat": raw.get("dgcat1"),
                "pdgprop": raw.get("pdgprop"),
                "compl": raw.get("compl"),
                "or_proc": raw.get("or"),
                "procpro": raw.get("procpro1"),
                "secpro": raw.get("secproc1"),
                "dgprop": [raw.get(f"dgprop{i}") for i in range(1, 5)],
                "agelim": raw.get("agelim"),
                "sex": raw.get("sex"),
                "dur": raw.get("dur"),
                "disch": raw.get("disch"),
            },
        )
    for row, raw in _rows(document, "dg", source):
        builder.add_diagnosis_property(row, raw.get("code"), raw.get("d_code"), raw.get("vartype"), raw.get("varval"))
    for row, raw in _rows(document, "proc", source):
        builder.add_procedure_property(row, raw.get("code"), raw.get("vartype"), raw.get("varval"))
    for row, raw in _rows(document, "complcat", source):
        builder.add_complication_category(row, raw.get("compl"), raw.get("inclprop"))
    for row, raw in _rows(document, "complexcl", source):
        builder.add_exclusion(row, raw.get("compl"), raw.get("code"), raw.get("d_code"))
    for row, raw in _rows(document, "drgnames", source):
        builder.add_drg(row, raw.get("drg"), raw.get("mdc"), raw.get("name", ""))
    return builder


def _rows(document: dict, table: str, source: str):
    rows = document[table]
    if not isinstance(rows, list):
        raise TableFormatError(f"table {table} is not a list", path=source)
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            raise TableFormatError(
                f"table {table}: entry is {type(raw).__name__}, not an object", path=source, row=number
            )
        yield number, raw
