"""Country -> world region tables: packaged ones (``seed``, ``geo``) or a user's CSV.

``seed`` (the default) is the seed notebook's 17 regions, copied exactly; ``geo`` is a
geographic grouping into 17 other regions. A user table is a CSV with ``country,region`` columns;
``#`` lines are comments. Each table carries a short hash of its content so that results made with
two different tables never share a data fingerprint.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

from speechprint.core.errors import DataError

UNCLASSIFIED = "unclassified"
PACKAGED = ("seed", "geo")
COLUMNS = ("country", "region")


@dataclass(frozen=True)
class RegionTable:
    """A named ``{country: region}`` table; ``digest`` is a hash of its (normalised) rows."""

    name: str  # a packaged name, or the user file's stem
    mapping: Mapping[str, str] = field(repr=False, compare=False)
    digest: str
    source: str  # where it was read from, for messages

    def __post_init__(self) -> None:
        # Read-only: loaded tables are cached and shared by every caller.
        object.__setattr__(self, "mapping", MappingProxyType(dict(self.mapping)))

    def __reduce__(self) -> tuple[type[RegionTable], tuple[str, dict[str, str], str, str]]:
        # A mapping proxy cannot be pickled; a plain dict can (process pools, spawn workers).
        return RegionTable, (self.name, dict(self.mapping), self.digest, self.source)

    @property
    def identity(self) -> str:
        """``name@digest``: what a run logs and what the data fingerprint includes."""
        return f"{self.name}@{self.digest}"

    def regions(self) -> list[str]:
        """The region names, sorted."""
        return sorted(set(self.mapping.values()))

    def region_of(self, country: object) -> str:
        """The region of a country, or ``"unclassified"`` when this table does not know it."""
        if not isinstance(country, str):
            return UNCLASSIFIED
        return self.mapping.get(country.strip().lower(), UNCLASSIFIED)


def region_table(spec: str | Path | RegionTable = "seed") -> RegionTable:
    """The packaged table ``seed`` or ``geo``, or the table in a CSV file at a path.

    >>> region_table().name, len(region_table().regions())
    ('seed', 17)
    """
    if isinstance(spec, RegionTable):
        return spec
    if isinstance(spec, str) and spec in PACKAGED:
        return _load_packaged(spec)
    if isinstance(spec, str) and not _looks_like_path(spec):
        raise DataError(
            f"unknown region table {spec!r}; valid: {', '.join(PACKAGED)}, "
            "or a path to a CSV file with country,region columns"
        )
    path = Path(spec).expanduser()
    if not path.is_file():
        what = "is a folder, not a CSV file" if path.is_dir() else "does not exist"
        raise DataError(f"region table not found: {path} {what}")
    resolved = path.resolve()
    stat = resolved.stat()
    # The file's mtime and size are part of the key, so an edited file is read again.
    return _load_file(str(resolved), stat.st_mtime_ns, stat.st_size)


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.lower().endswith(".csv") or Path(spec).exists()


@lru_cache(maxsize=len(PACKAGED))
def _load_packaged(name: str) -> RegionTable:
    resource = files("speechprint.data").joinpath(f"regions-{name}.csv")
    return parse_table(resource.read_text(encoding="utf-8"), name=name, source=str(resource))


@lru_cache(maxsize=16)
def _load_file(path: str, mtime_ns: int, size: int) -> RegionTable:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # -sig: spreadsheets add a BOM
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"region table {path}: cannot read it as UTF-8 text ({error})") from error
    return parse_table(text, name=Path(path).stem, source=path)


def parse_table(text: str, *, name: str, source: str) -> RegionTable:
    """Parse ``country,region`` CSV text; errors name ``source`` (and the line where it helps)."""
    rows = [
        (number, next(csv.reader([line])))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise DataError(f"region table {source} is empty (expected a country,region header)")
    header = [column.strip().lower() for column in rows[0][1]]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise DataError(
            f"region table {source}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    at = {column: header.index(column) for column in COLUMNS}
    mapping: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, cells in rows[1:]:
        cells = cells + [""] * (len(header) - len(cells))
        country = cells[at["country"]].strip().lower()
        region = cells[at["region"]].strip()
        if not country or not region:
            raise DataError(f"region table {source}, line {number}: empty country or region")
        if region == UNCLASSIFIED:  # reserved: it means "no region" and is dropped as a label
            raise DataError(f"region table {source}, line {number}: {UNCLASSIFIED!r} is reserved")
        if country in mapping and mapping[country] != region:
            raise DataError(
                f"region table {source}, line {number}: {country!r} is {region!r} here but "
                f"{mapping[country]!r} on line {first_line[country]}"
            )
        mapping.setdefault(country, region)
        first_line.setdefault(country, number)
    if not mapping:
        raise DataError(f"region table {source} has a header but no country,region rows")
    return RegionTable(name, mapping, _digest(mapping), source)


def _digest(mapping: Mapping[str, str]) -> str:
    # Over the sorted rows, not the bytes: comments, order and spacing do not change the table.
    rows = "".join(f"{country},{region}\n" for country, region in sorted(mapping.items()))
    return hashlib.sha256(rows.encode()).hexdigest()[:12]


def regions(table: str | Path | RegionTable = "seed") -> list[str]:
    """The region names of a table, sorted."""
    return region_table(table).regions()


def region_of(country: str | None, table: str | Path | RegionTable = "seed") -> str:
    """The region of a country, or ``"unclassified"`` when the table does not know it.

    >>> region_of(" USA ")
    'north american'
    >>> region_of("spain"), region_of("spain", table="geo")
    ('romance', 'southern european')
    >>> region_of("atlantis")
    'unclassified'
    """
    return region_table(table).region_of(country)
