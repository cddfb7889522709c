"""The errors nordgroup raises: one base class, each error naming what and where."""

from __future__ import annotations

__all__ = ["EpisodeFileError", "EpisodeSchemaError", "NordgroupError", "TableFormatError"]


class NordgroupError(ValueError):
    """Base class of every error nordgroup raises on bad input."""


class TableFormatError(NordgroupError):
    """A definition-table file cannot be read: names the file, and the row and column when known."""

    def __init__(self, message: str, *, path: str, row: int | None = None, column: str | None = None):
        where = path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.row = row
        self.column = column


class EpisodeSchemaError(NordgroupError):
    """An episode batch lacks a required column or has one of an unusable type."""

    @classmethod
    def missing_columns(cls, missing: list[str], available: list[str], source: str) -> EpisodeSchemaError:
        return cls(
            f"{source}: missing column(s) {', '.join(missing)}; the batch has {', '.join(available) or 'no columns'}"
        )


class EpisodeFileError(EpisodeSchemaError):
    """An episode file cannot be read at all (not text, the wrong delimiter everywhere): names the
    file, and the line and column when known. A single unreadable line is a row, never this."""

    def __init__(self, message: str, *, path: str, line: int | None = None, column: int | None = None):
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column
