"""`load_tables`: read any supported release layout, detected from the path, into `DrgTables`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nordgroup._memo import pickled
from nordgroup.exceptions import TableFormatError
from nordgroup.tables._norwegian import read_norwegian_json, read_norwegian_source, release_from_name
from nordgroup.tables.model import DrgTables, ReleaseInfo

__all__ = ["default_cache_dir", "load_tables"]

_CACHE_VERSION = "3"  # 3: every property row of a code kept (or_values, cc_values)


def default_cache_dir() -> Path:
    """Where parsed and compiled tables are cached: `$NORDGROUP_CACHE`, else the user's cache folder."""
    configured = os.environ.get("NORDGROUP_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nordgroup"


def _raw_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.digest()


def load_tables(
    path: str | os.PathLike[str],
    *,
    country: str | None = None,
    year: int | None = None,
    cache: bool | str | os.PathLike[str] = False,
) -> DrgTables:
    """Load one release of NordDRG definition tables.

    `path` is a Norwegian `DefinitionData` JSON (or a zip holding it), a folder of NDMS CSV files
    (`drg_logic.csv`, `dg_feat.csv`, ...), or an Excel workbook with one sheet per table. `country`
    and `year` override what the file names say. With `cache` (True for the default folder, or a
    folder), the parsed tables are kept on disk keyed by a hash of the source bytes, so that the
    next load of the same release skips parsing.
    """
    path = Path(path)
    if not path.exists():
        raise TableFormatError("no such file or folder", path=str(path))
    if cache:
        folder = default_cache_dir() if cache is True else Path(cache)
        key = hashlib.sha256(f"{_CACHE_VERSION}:{country}:{year}:".encode() + _raw_digest(path)).hexdigest()[:32]
        return pickled(folder / f"tables-{key}.pickle", lambda: load_tables(path, country=country, year=year))
    if path.is_dir():
        from nordgroup.tables._ndms import read_ndms_folder

        builder, files, release = read_ndms_folder(path)
        layout = "ndms-csv"
    elif path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        from nordgroup.tables._excel import read_excel_workbook

        builder, files, release = read_excel_workbook(path)
        layout = "excel"
    else:
        data, source = read_norwegian_source(path)
        builder = read_norwegian_json(data, source)
        files = {source: data}
        release = release_from_name(path.name)
        layout = "nor-json"
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(Path(name).name.encode() + b"\0" + files[name])
    found_country, found_year, found_release = release
    info = ReleaseInfo(
        country=country or found_country,
        year=year if year is not None else found_year,
        release=found_release,
        layout=layout,
        source_hash=digest.hexdigest(),
        source_files=tuple(sorted(files)),
    )
    return builder.build(info)
