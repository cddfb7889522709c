"""The reviewer's worklist and its way back: the review sample as an Excel workbook, one sheet per
unit, with empty verdict and corrected-code columns; the filled workbook read back as a corrections
table for `simulate`, each reviewed episode keeping its stratum and inclusion probability.

Writing uses xlsxwriter and reading python-calamine (`pip install nordgroup[excel]`). Every
unreadable cell of a filled workbook is reported at once by sheet, row and column. See docs/audit.md.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from attrs import frozen

from nordgroup.codes import canonical_code, split_written_diagnosis
from nordgroup.episodes.layouts import to_canonical
from nordgroup.exceptions import NordgroupError
from nordgroup.review._columns import unit_columns

__all__ = ["VERDICTS", "Review", "WorklistError", "read_worklist", "write_worklist", "write_xlsx"]

#: What a reviewer writes in the verdict column. Blank: not reviewed yet.
VERDICTS = ("correct", "corrected", "unclear")
_CORRECTED = ("corrected_principal", "corrected_secondary", "corrected_procedures")
_ORIGINAL = ("principal_diagnosis", "secondary_diagnoses", "procedures")
_REQUIRED = ("episode_id", "stratum", "inclusion_probability", "verdict", *_ORIGINAL, *_CORRECTED)
_NO_CODES = "-"  # in a corrected list column: remove them all
_SEPARATORS = re.compile(r"[;,\n]")
_DIAGNOSIS_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
_PROCEDURE_SHAPE = re.compile(r"^[A-Z0-9]{3,8}$")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_ABOUT = "about"
_SAMPLE_OWN = ("row", "episode_id", "stratum", "inclusion_probability", "findings", "points_at_stake")


class WorklistError(NordgroupError):
    """A filled worklist has unreadable cells; `cells` lists each as (sheet, row, column, message)."""

    def __init__(self, path: str, cells: list[tuple[str, int, str, str]]):
        lines = [f"sheet {sheet!r}, row {row}, column {column}: {message}" for sheet, row, column, message in cells]
        shown = "\n  ".join(lines[:50]) + (f"\n  ... and {len(lines) - 50} more" if len(lines) > 50 else "")
        super().__init__(f"{path}: {len(cells)} unreadable cell(s):\n  {shown}")
        self.path = path
        self.cells = cells


@frozen
class Review:
    """A filled worklist read back.

    `corrections`: the corrections table `simulate` takes (episode_id, action, role, code,
    old_code), plus the episode's stratum, inclusion_probability and where it was written (sheet,
    row). `reviewed`: one row per episode with a verdict (episode_id, stratum,
    inclusion_probability, verdict, sheet, row): the sample to extrapolate from. `not_reviewed`:
    episode ids of rows left blank or marked unclear, which the extrapolation leaves out.
    """

    corrections: pa.Table
    reviewed: pa.Table
    not_reviewed: tuple[str, ...]


def write_xlsx(table: pa.Table | dict[str, pa.Table], path: str | os.PathLike[str]) -> Path:
    """An Arrow table (or sheet name -> table) as an .xlsx workbook with a frozen, filtered header.
    List columns are written as `; `-joined text."""
    sheets = table if isinstance(table, dict) else {"table": table}
    workbook = _new_workbook(path)
    for name, part in sheets.items():
        _write_sheet(workbook, name, part)
    workbook.close()
    return Path(path)


def write_worklist(
    path: str | os.PathLike[str],
    episodes: pa.Table,
    grouped: pa.Table,
    findings: pa.Table,
    sample: pa.Table,
    *,
    unit_column: str | Sequence[str] | None = "unit",
    points: np.ndarray | None = None,
    demo_points: bool = False,
) -> Path:
    """The review sample as a workbook, one sheet per unit: the episode's codes, regrouped DRG,
    points, findings, stratum and inclusion probability, then the empty columns the reviewer fills:
    `verdict` (one of `VERDICTS`), `corrected_principal`, `corrected_secondary`,
    `corrected_procedures` (the whole corrected list, `;`-separated; blank: unchanged; `-`: none)
    and `comment`. `demo_points` marks points computed from invented (DEMO) weights."""
    table = to_canonical(episodes)
    rows = sample.column("row").to_numpy()
    taken = pa.array(rows)
    diagnoses = table.column("diagnoses").take(taken).to_pylist()
    texts = _finding_texts(findings, rows)
    columns: dict[str, list] = {
        "episode_id": sample.column("episode_id").to_pylist(),
        # the sample's split columns (units, period) as drawn
        **{name: sample.column(name).to_pylist() for name in sample.column_names if name not in _SAMPLE_OWN},
        "stratum": sample.column("stratum").to_pylist(),
        "inclusion_probability": sample.column("inclusion_probability").to_pylist(),
        "drg": grouped.column("drg").take(taken).to_pylist(),
        "points (DEMO weights)" if demo_points else "points": (
            [None if math.isnan(value) else float(value) for value in np.asarray(points)[rows]]
            if points is not None
            else [None] * len(rows)
        ),
        "sex": table.column("sex").take(taken).to_pylist(),
        "age_days": table.column("age_days").take(taken).to_pylist(),
        "duration_days": table.column("duration_days").take(taken).to_pylist(),
        "principal_diagnosis": [codes[0] if codes else "" for codes in diagnoses],
        "secondary_diagnoses": ["; ".join(codes[1:]) if codes else "" for codes in diagnoses],
        "procedures": ["; ".join(codes or []) for codes in table.column("procedures").take(taken).to_pylist()],
        "findings": texts,
        "verdict": [None] * len(rows),
        **{name: [None] * len(rows) for name in _CORRECTED},
        "comment": [None] * len(rows),
    }
    names = unit_columns(unit_column)
    sheet_of = [
        " · ".join(str(value) for value in values) if names else "episodes"
        for values in zip(*(columns.get(name, [""] * len(rows)) for name in names), strict=True)
    ] or ["episodes"] * len(rows)
    workbook = _new_workbook(path)
    about = workbook.add_worksheet(_ABOUT)
    for line, text in enumerate(_about_lines(demo_points)):
        about.write(line, 0, text)
    about.set_column(0, 0, 120)
    full = pa.table(columns)
    used: set[str] = {_ABOUT}
    for unit in sorted(set(sheet_of)):
        mask = pa.array([value == unit for value in sheet_of])
        sheet = _write_sheet(workbook, _sheet_name(unit, used), full.filter(mask))
        verdict = full.column_names.index("verdict")
        sheet.data_validation(
            1, verdict, max(1, int(pc.sum(mask).as_py() or 0)), verdict, {"validate": "list", "source": list(VERDICTS)}
        )
    workbook.close()
    return Path(path)


def read_worklist(path: str | os.PathLike[str]) -> Review:
    """Read a filled worklist back (see `Review`); raises `WorklistError` naming every unreadable cell."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError as error:
        raise ImportError(
            "reading worklists needs python-calamine: pip install nordgroup[excel]", name=error.name
        ) from error
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as error:  # calamine raises its own error types, one per container format
        raise NordgroupError(f"{path}: not a readable workbook: {error}") from error
    problems: list[tuple[str, int, str, str]] = []
    corrections: list[dict] = []
    reviewed: list[dict] = []
    not_reviewed: list[str] = []
    seen: dict[str, tuple[str, int]] = {}
    sheets = 0
    for sheet_name in workbook.sheet_names:
        rows = workbook.get_sheet_by_name(sheet_name).to_python()
        if not rows or "episode_id" not in [str(cell).strip() for cell in rows[0]]:
            continue  # the about sheet, or one the reviewer added
        sheets += 1
        header = [str(cell).strip() for cell in rows[0]]
        missing = [name for name in _REQUIRED if name not in header]
        if missing:
            problems.append((sheet_name, 1, ", ".join(missing), "column(s) missing from the header"))
            continue
        where = {name: header.index(name) for name in _REQUIRED}
        for number, cells in enumerate(rows[1:], start=2):
            _read_row(sheet_name, number, cells, where, problems, corrections, reviewed, not_reviewed, seen)
    if not sheets:
        raise NordgroupError(f"{path}: no worklist sheet (a sheet whose first row names episode_id)")
    if problems:
        raise WorklistError(str(path), problems)
    correction_names = ["episode_id", "action", "role", "code", "old_code", "position", "stratum"]
    correction_names += ["inclusion_probability"]
    correction_names += ["sheet", "row"]
    reviewed_names = ["episode_id", "stratum", "inclusion_probability", "verdict", "sheet", "row"]
    return Review(
        corrections=_records_table(corrections, correction_names),
        reviewed=_records_table(reviewed, reviewed_names),
        not_reviewed=tuple(not_reviewed),
    )


def _read_row(sheet, number, cells, where, problems, corrections, reviewed, not_reviewed, seen) -> None:
    def cell(name: str) -> str:
        index = where[name]
        value = cells[index] if index < len(cells) else ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # an id or code Excel stored as a number
        return "" if value is None else str(value).strip()

    def fail(name: str, message: str) -> None:
        problems.append((sheet, number, f"{_column_letter(where[name])} ({name})", message))

    if not any(str(value).strip() for value in cells if value is not None):
        return
    episode_id = cell("episode_id")
    if not episode_id:
        fail("episode_id", "empty episode id")
        return
    if episode_id in seen:
        first_sheet, first_row = seen[episode_id]
        fail("episode_id", f"episode {episode_id} is also on sheet {first_sheet!r}, row {first_row}")
        return
    seen[episode_id] = (sheet, number)
    verdict = cell("verdict").lower()
    if verdict not in ("", *VERDICTS):
        fail("verdict", f"{cell('verdict')!r} is not one of {', '.join(VERDICTS)} (or blank: not reviewed)")
        return
    probability_text = cell("inclusion_probability")
    try:
        probability = float(probability_text.replace(",", "."))
    except ValueError:
        probability = math.nan
    if not 0 < probability <= 1:
        fail("inclusion_probability", f"{probability_text!r} is not a probability above 0 and at most 1")
        return
    corrected = {name: cell(name) for name in _CORRECTED}
    if verdict in ("", "unclear"):
        if any(corrected.values()):
            fail("verdict", "corrected codes are written but the verdict is not 'corrected'")
        not_reviewed.append(episode_id)
        return
    if verdict == "correct" and any(corrected.values()):
        fail("verdict", "the verdict is 'correct' but corrected codes are written: write 'corrected'")
        return
    if verdict == "corrected" and not any(corrected.values()):
        fail("verdict", "the verdict is 'corrected' but no corrected code is written")
        return
    base = {"episode_id": episode_id, "stratum": cell("stratum"), "inclusion_probability": probability}
    base |= {"sheet": sheet, "row": number}
    reviewed.append({**base, "verdict": verdict})
    for role, original_name, corrected_name in zip(
        ("principal", "secondary", "procedure"), _ORIGINAL, _CORRECTED, strict=True
    ):
        if not corrected[corrected_name]:
            continue
        before = _codes(cell(original_name), role)
        after, bad = _written_codes(corrected[corrected_name], role)
        if bad:
            fail(
                corrected_name,
                f"{bad!r} is not shaped like a {'procedure' if role == 'procedure' else 'diagnosis'} code",
            )
            continue
        if role == "principal":
            if len(after) != 1:
                fail(corrected_name, "write one principal diagnosis")
            elif [after[0]] != before[:1]:
                corrections.append(
                    {**base, "action": "replace", "role": role, "code": after[0], "old_code": "".join(before[:1])}
                    | {"position": ""}
                )
            continue
        removed, added = Counter(before) - Counter(after), Counter(after) - Counter(before)
        lead = ""  # the procedure the reviewer put first, when appending would not (secpro reads it)
        if role == "procedure" and after and _first_after(before, removed, added) != after[0]:
            lead = after[0]
            if not added[lead]:  # a written procedure moved to the front: taken out, put back first
                removed[lead] += 1
                added[lead] += 1
        for code, times in removed.items():
            corrections += [
                {**base, "action": "remove", "role": role, "code": code, "old_code": "", "position": ""}
            ] * times
        for code, times in added.items():
            first = code == lead
            change = {**base, "action": "add", "role": role, "code": code, "old_code": ""}
            corrections += [{**change, "position": "first"}] if first else []
            corrections += [{**change, "position": "last"}] * (times - first)


def _first_after(before: list[str], removed: Counter, added: Counter) -> str:
    """The first procedure once `removed` are taken out and `added` appended, as simulate applies them."""
    left = Counter(removed)
    kept = []
    for code in before:
        if left[code]:
            left[code] -= 1
        else:
            kept.append(code)
    return [*kept, *added.elements()][0] if kept or added else ""


def _written_codes(text: str, role: str) -> tuple[list[str], str]:
    """The codes of a corrected cell, and the first piece that is not shaped like a code ("" if none)."""
    if text == _NO_CODES:
        return [], ""
    codes = []
    for piece in (piece.strip() for piece in _SEPARATORS.split(text)):
        if not piece:
            continue
        code = _code(piece, role)
        parts = code.split(" ")
        shape = _PROCEDURE_SHAPE if role == "procedure" else _DIAGNOSIS_SHAPE
        if not all(shape.match(part) for part in parts):
            return [], piece
        codes.append(code)
    return codes, ""


def _codes(text: str, role: str) -> list[str]:
    return [_code(piece.strip(), role) for piece in _SEPARATORS.split(text) if piece.strip()]


def _code(piece: str, role: str) -> str:
    if role == "procedure":
        return canonical_code(piece)
    dagger, asterisk, _ = split_written_diagnosis(piece)
    return f"{dagger} {asterisk}" if asterisk else dagger


def _finding_texts(findings: pa.Table, rows: np.ndarray) -> list[str]:
    position = {int(row): index for index, row in enumerate(rows)}
    texts: list[list[str]] = [[] for _ in rows]
    wanted = pc.is_in(findings.column("row"), pa.array(rows, pa.int64()))
    chosen = findings.filter(wanted)
    for row, kind, text in zip(
        chosen.column("row").to_pylist(),
        chosen.column("kind").to_pylist(),
        chosen.column("text").to_pylist(),
        strict=True,
    ):
        texts[position[row]].append(f"{kind}: {text}")
    return ["\n".join(items) for items in texts]


def _about_lines(demo_points: bool) -> list[str]:
    lines = [
        "Review worklist written by nordgroup audit --worklist. One sheet per unit, one row per sampled episode.",
        f"verdict: {', '.join(VERDICTS)}; blank means not reviewed. Only 'corrected' rows may carry corrected codes.",
        "corrected_principal: the right principal diagnosis (blank: unchanged).",
        "corrected_secondary, corrected_procedures: the whole corrected list, separated by ';' "
        f"(blank: unchanged; '{_NO_CODES}': none). A dagger/asterisk pair is written 'E114 G632'.",
        "Do not edit episode_id, stratum or inclusion_probability: the extrapolation weights each episode by "
        "1 / inclusion_probability.",
        "Read it back with: nordgroup corrections review.xlsx --out corrections.csv",
    ]
    if demo_points:
        lines.append("DEMO: the points come from invented demo weights, not an official weight list.")
    return lines


def _new_workbook(path: str | os.PathLike[str]):
    try:
        import xlsxwriter
    except ImportError as error:
        raise ImportError("writing .xlsx needs xlsxwriter: pip install nordgroup[excel]", name=error.name) from error
    return xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})


def _write_sheet(workbook, name: str, table: pa.Table):
    sheet = workbook.add_worksheet(name)
    bold = workbook.add_format({"bold": True, "bg_color": "#F3F3F3"})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
    for column, field in enumerate(table.schema):
        sheet.write_string(0, column, field.name, bold)
        values = table.column(column).to_pylist()
        if pa.types.is_list(field.type):
            values = ["; ".join(str(v) for v in value) if value else "" for value in values]
        elif pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
            values = [None if value is None else value.isoformat() for value in values]
        for row, value in enumerate(values, start=1):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, bool | int | float | np.integer | np.floating):
                sheet.write_number(row, column, float(value))
            else:
                sheet.write_string(row, column, str(value), wrap if "\n" in str(value) else None)
        width = max([len(field.name), *(len(str(v)) for v in values[:200] if v is not None)], default=8)
        sheet.set_column(column, column, min(60, max(8, width + 2)))
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(1, len(table)), max(0, table.num_columns - 1))
    return sheet


def _sheet_name(unit: str, used: set[str]) -> str:
    base = _SHEET_FORBIDDEN.sub("_", unit).strip("'")[:31] or "unit"
    name, number = base, 2
    while name.lower() in {item.lower() for item in used}:
        suffix = f" ({number})"
        name, number = base[: 31 - len(suffix)] + suffix, number + 1
    used.add(name)
    return name


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _records_table(records: list[dict], names: list[str]) -> pa.Table:
    types = {"inclusion_probability": pa.float64(), "row": pa.int64()}
    return pa.table({name: pa.array([r[name] for r in records], types.get(name, pa.string())) for name in names})
