"""Financing parameters of a year: price per point, activity share, currency (`load_financing`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from nordgroup._toml import tomllib
from nordgroup.exceptions import NordgroupError, TableFormatError

if TYPE_CHECKING:
    pass


@frozen
class Financing:
    """How points become money in one year: price per point and the activity-based share.

    Norway's ISF pays `activity_share` (e.g. 0.5) of points x the national unit price; a Swedish
    region paying another for out-of-region care pays the whole, `activity_share = 1`.
    """

    price_per_point: float = field(converter=float)
    activity_share: float = field(converter=float)
    year: int | None = None
    currency: str = ""
    demo: bool = False
    description: str = ""
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.activity_share <= 1.0:
            raise NordgroupError(f"{self.source or 'financing'}: activity_share {self.activity_share} is not in 0..1")
        if self.price_per_point < 0:
            raise NordgroupError(f"{self.source or 'financing'}: price_per_point {self.price_per_point} is negative")

    @property
    def label(self) -> str:
        text = f"{self.price_per_point:,.0f} {self.currency}/point x share {self.activity_share:g}"
        if self.year:
            text += f" ({self.year})"
        return text + (" DEMO values" if self.demo else "")


def load_financing(path: str | os.PathLike[str]) -> Financing:
    """Read financing parameters from TOML: `price_per_point`, `activity_share` and `year` are
    required; `currency`, `description` and `demo = true` (for invented values) are optional."""
    path = Path(path)
    if not path.exists():
        raise TableFormatError("no such file", path=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise TableFormatError(f"not valid TOML: {error}", path=str(path)) from error
    return financing_from_mapping(data, source=str(path))


def financing_from_mapping(data: Mapping[str, object], *, source: str = "financing") -> Financing:
    """`Financing` from a parsed TOML table (also the inline `[financing]` of a scenario)."""
    for required in ("price_per_point", "activity_share", "year"):
        if required not in data:
            raise TableFormatError("missing key", path=source, column=required)
    known = {"price_per_point", "activity_share", "year", "currency", "demo", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TableFormatError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", path=source)
    return Financing(**financing_values(data, source=source), source=source)


def financing_values(data: Mapping[str, object], *, source: str) -> dict[str, Any]:
    """The financing values `data` gives, checked: numbers, a whole year, text (a scenario may give
    only some of them)."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("price_per_point", "activity_share"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TableFormatError(f"{value!r} is not a number", path=source, column=name)
            values[name] = float(value)
        elif name == "year":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TableFormatError(f"{value!r} is not a year", path=source, column=name)
            values[name] = value
        elif name == "demo":
            values[name] = bool(value)
        else:
            values[name] = str(value)
    return values
