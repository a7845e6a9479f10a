"""Region tables: the packaged seed (the notebook's 17) and geo tables, user CSVs, bad CSVs."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from speechprint.core.errors import DataError
from speechprint.data.regions import (
    UNCLASSIFIED,
    RegionTable,
    region_of,
    region_table,
    regions,
)

SEED_REGIONS = {
    "african anglophone",
    "african francophone",
    "african other",
    "british isles",
    "caribbean",
    "central asian",
    "east asian",
    "eastern european",
    "latin american",
    "middle eastern and african arab",
    "north american",
    "oceanian",
    "romance",
    "scandinavian",
    "south asian",
    "southeast asian",
    "western european non-romance",
}
GEO_REGIONS = {
    "north american",
    "british isles",
    "oceania",
    "caribbean",
    "central american",
    "south american",
    "western european",
    "southern european",
    "scandinavian",
    "eastern european",
    "middle eastern",
    "north african",
    "sub-saharan african",
    "south asian",
    "east asian",
    "southeast asian",
    "central asian",
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_seed_is_the_default_and_has_the_notebooks_17_regions() -> None:
    table = region_table()
    assert table is region_table("seed")  # cached
    assert table.name == "seed" and len(table.digest) == 12
    assert table.identity == f"seed@{table.digest}"
    assert set(table.regions()) == set(regions()) == SEED_REGIONS
    assert len(table.mapping) == 176
    assert all(country == country.strip().lower() for country in table.mapping)
    expected = {
        "usa": "north american",
        "uk": "british isles",
        "puerto rico": "latin american",
        "cuba": "caribbean",
        "mexico": "latin american",
        "spain": "romance",
        "germany": "western european non-romance",
        "finland": "scandinavian",
        "turkey": "middle eastern and african arab",
        "mongolia": "east asian",
        "kazakhstan": "central asian",
        "fiji": "oceanian",
        "virginia": "north american",
        "sicily": "romance",
        "tibet": "east asian",
        "us virgin islands": "caribbean",
    }
    assert {country: region_of(country) for country in expected} == expected
    assert region_of(" USA ") == "north american"
    assert region_of(None) == region_of("atlantis") == UNCLASSIFIED


@pytest.mark.shared
def test_packaged_seed_is_the_seed_table_row_for_row(shared_seed_regions: Path) -> None:
    packaged = Path(region_table("seed").source).read_text(encoding="utf-8").splitlines()
    assert packaged[0].startswith("#")  # says what it is
    rows = [line for line in packaged if not line.startswith("#")]
    assert rows == shared_seed_regions.read_text(encoding="utf-8").splitlines()
    with shared_seed_regions.open(newline="", encoding="utf-8") as handle:
        seed = {row["country"]: row["region"] for row in csv.DictReader(handle)}
    assert dict(region_table("seed").mapping) == seed
    # The digest is over the rows, so the shared file read as a user table has the same one.
    assert region_table(shared_seed_regions).digest == region_table("seed").digest


def test_geo_table() -> None:
    table = region_table("geo")
    assert table.name == "geo" and set(table.regions()) == GEO_REGIONS
    assert table.digest != region_table("seed").digest
    assert region_of("spain", table="geo") == "southern european"
    assert region_of("mexico", "geo") == "central american"
    assert region_of("nigeria", table) == "sub-saharan african"


def test_user_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.csv",
        "# my own grouping\nCountry , Region,notes\n USA ,anglo,x\nuk,anglo\n\nspain,other,\n",
    )
    table = region_table(path)
    assert isinstance(table, RegionTable) and table.name == "mine"
    assert dict(table.mapping) == {"usa": "anglo", "uk": "anglo", "spain": "other"}
    assert table.source == str(path.resolve())
    assert region_table(str(path)) is table  # a str path works, and is cached by resolved path
    assert region_of("USA", table=path) == "anglo" and region_of("china", path) == UNCLASSIFIED
    # A repeated country with the same region is harmless; row order does not change the digest.
    same = write(
        tmp_path / "same.csv", "country,region\nspain,other\nuk,anglo\nusa,anglo\nuk,anglo\n"
    )
    assert region_table(same).digest == table.digest


def test_tables_are_read_only_and_picklable() -> None:
    table = region_table("geo")
    with pytest.raises(TypeError):
        table.mapping["usa"] = "elsewhere"  # type: ignore[index]
    again = pickle.loads(pickle.dumps(table))
    assert again == table and dict(again.mapping) == dict(table.mapping)


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "country,region\nusa,a\n")
    assert region_of("usa", path) == "a"
    write(path, "country,region\nusa,bb\n")  # another size, so another cache key
    assert region_of("usa", path) == "bb"


def test_unknown_packaged_name_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match=r"unknown region table 'sead'; valid: seed, geo"):
        region_table("sead")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("country,area\nusa,anglo\n", r"missing column\(s\) region \(found: country, area\)"),
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("country,region\n", "no country,region rows"),
        (
            "country,region\nusa,anglo\nuk,anglo\nusa,other\n",
            r"line 4: 'usa' is 'other' here but 'anglo' on line 2",
        ),
        ("country,region\nusa,\n", "line 2: empty country or region"),
        ("country,region\nusa,unclassified\n", "'unclassified' is reserved"),
    ],
)
def test_bad_csv_errors_name_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=match) as caught:
        region_table(path)
    assert str(path) in str(caught.value) and isinstance(caught.value, ValueError)


def test_missing_file_and_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"region table not found: .*nope\.csv does not exist"):
        region_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="nope.csv does not exist"):
        region_table("nope.csv")  # a name ending in .csv is a path, not a packaged name
    with pytest.raises(DataError, match="is a folder"):
        region_table(tmp_path)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("country,region\ncuraçao,caribbean\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.csv: cannot read it as UTF-8"):
        region_table(latin1)
