"""Block lists ("spärrlistor"): the codes a unit does not accept as principal or secondary diagnosis,
or not together in one episode.

A block list is a plain file the unit maintains, CSV or TOML, one entry per line (CSV) or per
`[[block]]` table (TOML): a code pattern, a role and a reason. This module owns reading, checking
and matching those files; `nordgroup.review.findings` applies them to episodes.

Patterns (dots, spaces and case are ignored):

| pattern | matches |
|---|---|
| `I219` | exactly that code |
| `I21*` | every code starting with `I21` |
| `V01-Y98` | every code whose first characters fall in that range (inclusive) |
| `@asterisk` | a manifestation (asterisk) code written alone, without its etiology (dagger) code |

Roles: `principal`, `secondary`, `any` (either position), `combination` (the code together with
the pattern in `with`, anywhere in the same episode). `target = "procedure"` makes an entry match
procedure codes (roles `principal`: the first procedure, and `any`). `valid_from` and `valid_to`
(dates, inclusive) limit an entry to episodes of those dates.

Lists come in layers: the shipped default, then for example a regional and a unit list. They
combine (`layered_block_list`); every entry remembers its layer, file and line, and every finding
names them.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import re
from collections.abc import Collection, Sequence
from importlib import resources
from pathlib import Path

from attrs import frozen

from nordgroup.exceptions import NordgroupError

__all__ = [
    "ASTERISK",
    "ROLES",
    "BlockEntry",
    "BlockList",
    "BlockListError",
    "asterisk_codes",
    "default_block_list",
    "layered_block_list",
    "load_block_list",
]

ROLES = ("principal", "secondary", "any", "combination")
TARGETS = ("diagnosis", "procedure")
_PROCEDURE_ROLES = ("principal", "any")
#: The pattern naming asterisk (manifestation) codes written without their dagger code.
ASTERISK = "@asterisk"
_PATTERN = re.compile(r"^(?:[A-Z0-9]+\*?|[A-Z0-9]+-[A-Z0-9]+)$")
_DEFAULT = "default_block_list.toml"


class BlockListError(NordgroupError):
    """A block-list file cannot be read: names the file and the line."""

    def __init__(self, message: str, *, path: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


@frozen
class BlockEntry:
    """One rule of a block list; `where` is `layer L: file, line N` for messages."""

    pattern: str
    role: str
    reason: str
    partner: str = ""  # the other pattern of a `combination`
    where: str = ""
    target: str = "diagnosis"  # or "procedure"
    valid_from: datetime.date | None = None
    valid_to: datetime.date | None = None
    layer: str = ""

    def matches(self, code: str, *, alone_asterisk: bool = False) -> bool:
        return pattern_matches(self.pattern, code, alone_asterisk=alone_asterisk)

    def partner_matches(self, code: str, *, alone_asterisk: bool = False) -> bool:
        return pattern_matches(self.partner, code, alone_asterisk=alone_asterisk)

    @property
    def dated(self) -> bool:
        return self.valid_from is not None or self.valid_to is not None

    def valid_in_year(self, year: int | None) -> bool:
        """Whether the entry's validity overlaps a calendar year (always, for an undated entry or no year)."""
        if year is None:
            return True
        return (self.valid_from is None or self.valid_from.year <= year) and (
            self.valid_to is None or self.valid_to.year >= year
        )


@frozen
class BlockList:
    """The entries of one block-list file, or of several layered ones, in order."""

    entries: tuple[BlockEntry, ...]
    source: str

    def by_role(self, *roles: str, target: str = "diagnosis") -> tuple[BlockEntry, ...]:
        return tuple(entry for entry in self.entries if entry.role in roles and entry.target == target)


def pattern_matches(pattern: str, code: str, *, alone_asterisk: bool = False) -> bool:
    """Whether a cleaned code matches a checked pattern (see the module docstring)."""
    if pattern == ASTERISK:
        return alone_asterisk
    if pattern.endswith("*"):
        return code.startswith(pattern[:-1])
    if "-" in pattern:
        low, high = pattern.split("-")
        return code[: len(low)] >= low and code[: len(high)] <= high
    return code == pattern


def load_block_list(path: str | os.PathLike[str], *, layer: str | None = None) -> BlockList:
    """Read a block list from a `.csv` or `.toml` file; errors name the file and the line.
    `layer` names it in findings (default: the file's name without suffix)."""
    path = Path(path)
    if not path.exists():
        raise BlockListError("no such file", path=str(path))
    text = path.read_text(encoding="utf-8-sig")
    name = layer or path.stem
    if path.suffix.lower() == ".toml":
        return _parse_toml(text, str(path), name)
    if path.suffix.lower() == ".csv":
        return _parse_csv(text, str(path), name)
    raise BlockListError(f"unknown block-list format {path.suffix!r}; use .csv or .toml", path=str(path))


def default_block_list() -> BlockList:
    """The shipped default, built from the classification's own rules (see docs/audit.md)."""
    text = resources.files("nordgroup.data").joinpath(_DEFAULT).read_text(encoding="utf-8")
    return _parse_toml(text, f"nordgroup/data/{_DEFAULT}", "default")


def layered_block_list(
    layers: Sequence[BlockList | str | os.PathLike[str] | tuple[str, str | os.PathLike[str]]],
    *,
    default: bool = True,
) -> BlockList:
    """Layers combined in order: the shipped default first (unless `default=False`), then each layer,
    given as a loaded list, a path, or a (layer name, path) pair such as `("regional", "vgr.toml")`.
    Every entry of every layer applies; a finding names the entry's layer, file and line."""
    lists = [default_block_list()] if default else []
    for layer in layers:
        if isinstance(layer, BlockList):
            lists.append(layer)
        elif isinstance(layer, tuple):
            lists.append(load_block_list(layer[1], layer=layer[0]))
        else:
            lists.append(load_block_list(layer))
    return BlockList(
        tuple(entry for part in lists for entry in part.entries), " + ".join(part.source for part in lists) or "none"
    )


_FIELDS = ("code", "role", "reason", "with", "target", "valid_from", "valid_to")


def _entry(fields: dict, source: str, line: int | None, layer: str) -> BlockEntry:
    def fail(message: str) -> BlockListError:
        return BlockListError(message, path=source, line=line)

    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)}; an entry has {', '.join(_FIELDS)}")
    values = {}
    for name in ("code", "role", "reason", "with", "target"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise fail(f"{name} must be text, not {value!r}")
        values[name] = (value or "").strip()
    pattern = _checked_pattern(values["code"], fail)
    role = values["role"].lower()
    if role not in ROLES:
        raise fail(f"role {values['role']!r} is not one of {', '.join(ROLES)}")
    target = values["target"].lower() or "diagnosis"
    if target not in TARGETS:
        raise fail(f"target {values['target']!r} is not one of {', '.join(TARGETS)}")
    if target == "procedure" and role not in _PROCEDURE_ROLES:
        raise fail(f"a procedure entry has role {' or '.join(_PROCEDURE_ROLES)}, not {role}")
    if target == "procedure" and pattern == ASTERISK:
        raise fail(f"{ASTERISK} names diagnoses, not procedures")
    if not values["reason"]:
        raise fail("reason is empty: say why the code is blocked, coders read it")
    partner = ""
    if role == "combination":
        if not values["with"]:
            raise fail("a combination needs the other code pattern in 'with'")
        partner = _checked_pattern(values["with"], fail)
    elif values["with"]:
        raise fail(f"'with' only belongs to role combination, not {role}")
    valid_from, valid_to = (_date(fields.get(name), name, fail) for name in ("valid_from", "valid_to"))
    if valid_from and valid_to and valid_from > valid_to:
        raise fail(f"valid_from {valid_from} is after valid_to {valid_to}")
    where = f"{layer} layer: {source}" + (f", line {line}" if line is not None else "")
    return BlockEntry(
        pattern=pattern,
        role=role,
        reason=values["reason"],
        partner=partner,
        where=where,
        target=target,
        valid_from=valid_from,
        valid_to=valid_to,
        layer=layer,
    )


def _date(value, name: str, fail) -> datetime.date | None:
    """A TOML date, or a YYYY-MM-DD text (CSV); blank: no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise fail(f"{name} {value!r} is not a date YYYY-MM-DD")


def _checked_pattern(text: str, fail) -> str:
    if not text:
        raise fail("code pattern is empty")
    if text.lower() == ASTERISK:
        return ASTERISK
    pattern = re.sub(r"[\s.]", "", text).upper()
    if not _PATTERN.match(pattern):
        raise fail(f"code pattern {text!r} is not a code, a prefix ending in *, a range A00-B99 or {ASTERISK}")
    if "-" in pattern:
        low, high = pattern.split("-")
        if low[: len(high)] > high[: len(low)]:
            raise fail(f"code range {text!r} runs backwards")
    return pattern


def _parse_csv(text: str, source: str, layer: str) -> BlockList:
    lines = [line if not line.lstrip().startswith("#") else "" for line in text.splitlines()]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header: list[str] | None = None
    entries = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            missing = [name for name in ("code", "role", "reason") if name not in header]
            if missing:
                raise BlockListError(
                    f"header lacks column(s) {', '.join(missing)}; expected code,role,reason[,with]",
                    path=source,
                    line=reader.line_num,
                )
            continue
        if len(row) > len(header):
            raise BlockListError(
                f"{len(row)} fields but the header names {len(header)} (quote a reason that holds a comma)",
                path=source,
                line=reader.line_num,
            )
        fields = {name: cell for name, cell in zip(header, row, strict=False) if cell.strip() or name == "code"}
        entries.append(_entry(fields, source, reader.line_num, layer))
    if header is None:
        raise BlockListError("empty file: expected a header code,role,reason[,with]", path=source)
    return BlockList(tuple(entries), source)


def _parse_toml(text: str, source: str, layer: str) -> BlockList:
    from nordgroup._toml import tomllib

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+)", str(error))
        raise BlockListError(
            f"not valid TOML: {error}", path=source, line=int(found.group(1)) if found else None
        ) from None
    unknown = sorted(set(document) - {"block"})
    if unknown:
        raise BlockListError(
            f"unknown top-level key(s) {', '.join(unknown)}; entries go in [[block]] tables", path=source
        )
    blocks = document.get("block", [])
    if not isinstance(blocks, list):
        raise BlockListError("'block' must be an array of tables: write each entry as [[block]]", path=source)
    # tomllib keeps no positions, so each entry's line is that of its [[block]] header.
    header_lines = [
        number for number, line in enumerate(text.splitlines(), 1) if re.match(r"^\s*\[\[\s*block\s*\]\]", line)
    ]
    entries = []
    for position, fields in enumerate(blocks):
        line = header_lines[position] if position < len(header_lines) else None
        if not isinstance(fields, dict):
            raise BlockListError("each block entry must be a table", path=source, line=line)
        entries.append(_entry(fields, source, line, layer))
    return BlockList(tuple(entries), source)


def asterisk_codes(diagnosis_keys: Collection[tuple[str, str]]) -> frozenset[str]:
    """The codes the tables use as the manifestation (asterisk) of an asterisk/dagger pair."""
    return frozenset(code for code, dagger in diagnosis_keys if dagger)
