"""`load_tables`: read any supported release layout, detected from the path, into `DrgTables`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nordgroup._memo import pickled
from nordgroup.exceptions import TableFormatError
from nordgroup.tables._ndms import CODE_SYSTEMS, Reading, read_ndms_folder
from nordgroup.tables._norwegian import read_norwegian_json, read_norwegian_source, release_from_name
from nordgroup.tables.model import DrgTables, ReleaseInfo

__all__ = ["default_cache_dir", "load_tables"]

_CACHE_VERSION = "4"  # 3: ReleaseInfo names the national version and codes read; 4: every property row of a code kept


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
    national_version: str | None = None,
    codes: str | None = None,
    country: str | None = None,
    year: int | None = None,
    cache: bool | str | os.PathLike[str] = False,
) -> DrgTables:
    """Load one release of NordDRG definition tables.

    `path` is a Norwegian `DefinitionData` JSON (or a zip holding it), a folder of NDMS CSV files
    (`drg_logic.csv`, `dg_feat.csv`, ...), or an Excel workbook with one sheet per table.

    `national_version` (`swe`, `fin`, `nor`, ...) keeps only the rows whose `nat_ver` names that
    version: a Combined release, which holds every version's rules, cannot be read without it.
    `codes` chooses the code columns of an NDMS release: `"national"` (`code_nat`) or `"plus"`
    (`code_plus`, the common ICD-10+/NCSP+ codes); by default the national codes when the code
    tables carry them, else the plus codes.

    `country` and `year` override what the file names say. With `cache` (True for the default
    folder, or a folder), the parsed tables are kept on disk keyed by a hash of the source bytes and
    of the choices above, so that the next load of the same release skips parsing.
    """
    path = Path(path)
    if not path.exists():
        raise TableFormatError("no such file or folder", path=str(path))
    if codes is not None and codes not in CODE_SYSTEMS:
        raise ValueError(f"codes={codes!r}: choose one of {', '.join(map(repr, CODE_SYSTEMS))}")
    national_version = national_version.strip().lower() if national_version else None
    if cache:
        folder = default_cache_dir() if cache is True else Path(cache)
        choice = f"{_CACHE_VERSION}:{national_version}:{codes}:{country}:{year}:"
        key = hashlib.sha256(choice.encode() + _raw_digest(path)).hexdigest()[:32]
        return pickled(
            folder / f"tables-{key}.pickle",
            lambda: load_tables(path, national_version=national_version, codes=codes, country=country, year=year),
        )
    reading = Reading()
    if path.is_dir():
        builder, files, release, reading = read_ndms_folder(path, national_version, codes)
        layout = "ndms-csv"
    elif path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        from nordgroup.tables._excel import read_excel_workbook

        builder, files, release, reading = read_excel_workbook(path, national_version, codes)
        layout = "excel"
    else:
        if national_version not in (None, "nor") or codes not in (None, "national"):
            raise TableFormatError(
                "a Norwegian DefinitionData release holds the national version nor with national codes only "
                f"(asked for national_version={national_version!r}, codes={codes!r})",
                path=str(path),
            )
        data, source = read_norwegian_source(path)
        builder = read_norwegian_json(data, source)
        files = {source: data}
        release = release_from_name(path.name)
        layout = "nor-json"
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(Path(name).name.encode() + b"\0" + files[name])
    if reading != Reading():
        # One Combined release yields different tables per version and code system: the compiled
        # tables and the explorer's formulas are cached by this hash, so it must tell them apart.
        digest.update(f"\0reading:{reading.national_version}:{reading.codes}".encode())
    found_country, found_year, found_release = release
    info = ReleaseInfo(
        country=country or found_country,
        year=year if year is not None else found_year,
        release=found_release,
        layout=layout + ("-combined" if reading.combined else ""),
        source_hash=digest.hexdigest(),
        source_files=tuple(sorted(files)),
        national_version=reading.national_version,
        codes=reading.codes,
    )
    return builder.build(info)
