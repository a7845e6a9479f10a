"""Country -> world region: the seed notebook's 17 regions, kept as a data file in the package."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib.resources import files

UNCLASSIFIED = "unclassified"


@lru_cache(maxsize=1)
def region_table() -> dict[str, str]:
    """``{country: region}`` from ``regions.csv`` (lower-case, trimmed keys)."""
    text = files("speechprint.data").joinpath("regions.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["country"].strip().lower(): row["region"].strip() for row in rows}


def regions() -> list[str]:
    """The region names, sorted."""
    return sorted(set(region_table().values()))


def region_of(country: str | None) -> str:
    """The region of a country, or ``"unclassified"`` when the table does not know it.

    >>> region_of(" USA ")
    'north american'
    >>> region_of("atlantis")
    'unclassified'
    """
    if not isinstance(country, str):
        return UNCLASSIFIED
    return region_table().get(country.strip().lower(), UNCLASSIFIED)
