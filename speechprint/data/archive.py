"""Read an archive folder in the Kaggle layout and clean its metadata as it really comes.

Layout: ``speakers_all.csv`` beside ``recordings/`` (or ``recordings/recordings/``), one audio file
per speaker named ``<filename>.<ext>`` with ext in mp3, wav, flac, ogg. The real CSV has an empty
``Unnamed: 9`` column, stray whitespace, mixed case, missing values and rows whose audio was never
downloaded: those rows are kept (and counted) but have no ``path``. The ``region`` column comes
from a region table (``seed`` unless asked otherwise), which the ``Archive`` keeps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from speechprint.core.errors import DataError, DataWarning
from speechprint.data.audio import decode_failure
from speechprint.data.decoder_notes import decoder_notes_dropped
from speechprint.data.regions import UNCLASSIFIED, RegionTable, region_table

METADATA_FILE = "speakers_all.csv"
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")
REQUIRED_COLUMNS = ("speakerid", "filename", "native_language", "country", "sex", "age")
TEXT_COLUMNS = ("filename", "native_language", "country", "sex", "birthplace")
AGE_BINS = [0, 18, 25, 35, 45, 55, 65, 120]


class ArchiveError(DataError):
    """An archive that cannot be read; the message names the path, file or column."""


@dataclass(frozen=True)
class Archive:
    root: Path
    recordings_dir: Path
    # Every cleaned row: one per speaker here, one per clip in corpora with many clips per
    # speaker (``data.corpora``). ``path`` is None where there is no audio.
    speakers: pd.DataFrame
    unmapped_countries: list[str]  # countries that ``regions`` does not know
    regions: RegionTable  # the table the ``region`` column was computed with
    corpus: str = "saa"  # the reader that made it (``data.corpora.CORPORA``)
    # The corpus's own accent labels that map to no region, with the speakers who carry them.
    unmapped_accents: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # reader-specific counts, for describe

    @property
    def with_audio(self) -> pd.DataFrame:
        return self.speakers[self.speakers["path"].notna()].reset_index(drop=True)

    @property
    def rows_without_audio(self) -> int:
        return int(self.speakers["path"].isna().sum())

    def texts(self) -> dict[str, str | None]:
        """What each recording says (its ``text``) by path; None where there is no transcript,
        for extractors that read the text (``phones``: Whisper recognises those)."""
        rows = self.with_audio
        if "text" not in rows.columns:
            return dict.fromkeys(rows["path"])
        return {
            str(p): t.strip() if isinstance(t, str) and t.strip() else None
            for p, t in zip(rows["path"], rows["text"])
        }


def _recordings_dir(root: Path) -> Path:
    for candidate in (root / "recordings" / "recordings", root / "recordings"):
        if candidate.is_dir() and any(
            p.suffix.lower() in AUDIO_EXTENSIONS for p in candidate.iterdir()
        ):
            return candidate
    if (root / "recordings").is_dir():
        return root / "recordings"
    raise ArchiveError(f"no recordings/ folder in {root}")


def load_archive(path: str | Path, *, regions: str | Path | RegionTable = "seed") -> Archive:
    """Read and clean ``speakers_all.csv``, match each row to its audio file, add ``region``.

    ``regions`` is a packaged table name (``seed``, ``geo``) or a path to a country,region CSV.
    """
    table = region_table(regions)  # first: a bad table name fails before the CSV is parsed
    root = Path(path).expanduser()
    if not root.exists():
        raise ArchiveError(f"archive not found: {root} does not exist")
    if not root.is_dir():
        raise ArchiveError(f"archive must be a folder, got the file {root}")
    csv_path = root / METADATA_FILE
    if not csv_path.exists():
        raise ArchiveError(f"{csv_path} not found (expected {METADATA_FILE} beside recordings/)")
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ArchiveError(f"{csv_path}: cannot parse CSV ({error})") from error
    speakers = clean_metadata(raw, source=str(csv_path))
    recordings = _recordings_dir(root)

    # One directory listing instead of a stat per row per extension.
    available = {
        p.stem.lower(): p
        for p in sorted(recordings.iterdir())
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    }
    paths = [
        str(available[name]) if isinstance(name, str) and name in available else None
        for name in speakers["filename"]
    ]
    # object dtype keeps the contract's None (a string column would turn it into NaN).
    speakers["path"] = pd.Series(paths, index=speakers.index, dtype=object)
    # Every recording of the archive reads the same paragraph: its transcript, as other corpora
    # give theirs (``text``), so alignment and prediction know what was said.
    speakers["text"] = reading_passage()
    unmapped = assign_regions(speakers, table, stacklevel=3)
    return Archive(root, recordings, speakers, unmapped, table)


def reading_passage() -> str:
    """The archive's paragraph (packaged ``paragraph.txt``), whitespace normalised."""
    return " ".join(files("speechprint.data").joinpath("paragraph.txt").read_text("utf-8").split())


def assign_regions(frame: pd.DataFrame, table: RegionTable, *, stacklevel: int = 2) -> list[str]:
    """Add ``region`` from ``country`` (in place), warn about and return the unmapped countries.

    A ``region`` column already present (a corpus whose accent names a region but no country)
    is kept where the country gives none, if it is one of ``table``'s regions.
    """
    known = frame["region"] if "region" in frame.columns else pd.Series(UNCLASSIFIED, frame.index)
    mapped = [table.region_of(c) for c in frame["country"]]
    valid = set(table.regions())
    frame["region"] = [k if r == UNCLASSIFIED and k in valid else r for r, k in zip(mapped, known)]
    unmapped = sorted(
        {
            c
            for c, r in zip(frame["country"], mapped)
            if r == UNCLASSIFIED and isinstance(c, str) and c
        }
    )
    if unmapped:
        warnings.warn(
            f"{len(unmapped)} countries have no region in the {table.name!r} region table and "
            f"become '{UNCLASSIFIED}': " + ", ".join(unmapped),
            DataWarning,
            stacklevel=stacklevel,
        )
    return unmapped


def clean_metadata(raw: pd.DataFrame, *, source: str = METADATA_FILE) -> pd.DataFrame:
    """Drop empty ``Unnamed:`` columns, trim and lower-case text, make ages numeric."""
    frame = raw.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    empty_unnamed = [c for c in frame.columns if c.startswith("Unnamed:") and frame[c].isna().all()]
    frame = frame.drop(columns=empty_unnamed)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ArchiveError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns)})"
        )
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype).startswith("str"):
            frame[column] = frame[column].str.strip()
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].str.lower().replace("", np.nan)
    for column in ("age", "age_onset"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["speakerid"] = frame["speakerid"].astype(str)
    return frame.reset_index(drop=True)


def check_readable(path: str | Path) -> str | None:
    """A cheap readability check (header only): the reason a file is unusable, or None."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with decoder_notes_dropped():  # the caller reports the file once, in its words
            info = sf.info(str(path))
    except FileNotFoundError:
        return "file not found"
    except Exception as error:  # noqa: BLE001 - any failure means unreadable
        return decode_failure(error)
    if info.frames == 0 or info.duration <= 0:
        return "no audio frames"
    return None


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.fillna("unknown").value_counts().items()}


def _per_speaker(archive: Archive) -> pd.DataFrame:
    """Rows with audio, one per speaker: counts are of speakers, whatever their number of clips."""
    with_audio = archive.with_audio
    if archive.corpus == "saa":  # the archive's own rows, as they always were counted
        return with_audio
    return with_audio.drop_duplicates("speakerid").reset_index(drop=True)


def describe_archive(archive: Archive, *, check_audio: bool = True) -> dict[str, Any]:
    """Counts over rows with audio, rows without audio, unreadable files (JSON-ready).

    Readability is checked from each file's header (``soundfile.info``) plus a zero-byte test: a
    full decode of every recording would take minutes; extraction reports what decoding finds.
    """
    clips = archive.with_audio
    unreadable = []
    if check_audio:
        for path in clips["path"]:
            reason = check_readable(path)
            if reason:
                unreadable.append({"file": Path(path).name, "reason": reason})
    with_audio = _per_speaker(archive)
    ages = pd.cut(with_audio["age"], bins=AGE_BINS, right=False)
    by_age = {
        f"{int(b.left)}-{int(b.right) - 1}": int(n)
        for b, n in ages.value_counts(sort=False).items()
    }
    if ages.isna().any():  # missing or out-of-range ages are counted, not lost
        by_age["unknown"] = int(ages.isna().sum())
    classified = with_audio["region"][with_audio["region"] != UNCLASSIFIED]
    summary = {
        "archive": str(archive.root),
        "corpus": archive.corpus,
        "rows": len(archive.speakers),
        "with_audio": len(clips),
        "speakers": int(with_audio["speakerid"].nunique()),
        "without_audio": archive.rows_without_audio,
        "unreadable": unreadable,
        "region_table": {
            "name": archive.regions.name,
            "digest": archive.regions.digest,
            "source": archive.regions.source,
        },
        "regions": int(classified.nunique()),  # "unclassified" is not a region
        "by_region": _counts(with_audio["region"]),
        "by_native_language": _counts(with_audio["native_language"]),
        "by_country": _counts(with_audio["country"]),
        "by_sex": _counts(with_audio["sex"]),
        "by_age": by_age,
        "unmapped_countries": archive.unmapped_countries,
    }
    if "accent" in with_audio.columns:
        summary["by_accent"] = _counts(with_audio["accent"])
        summary["unmapped_accents"] = dict(archive.unmapped_accents)
    if archive.notes:
        summary["notes"] = dict(archive.notes)
    return summary


def plot_overview(archive: Archive, out_dir: str | Path, *, top: int = 30) -> list[Path]:
    """The notebook's overview plots as PNG: speakers per country, language, sex, age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = archive.with_audio
    written = []
    for column, title in (("country", "country"), ("native_language", "native language")):
        counts = data[column].value_counts().head(top)[::-1]
        figure, axes = plt.subplots(figsize=(8, 0.28 * len(counts) + 1.5))
        axes.barh(counts.index, counts.values, color="tab:blue")
        axes.set_title(f"Speakers per {title} (top {len(counts)}, with audio)")
        axes.set_xlabel("speakers")
        written.append(_save(figure, out / f"speakers_per_{column}.png"))
    figure, axes = plt.subplots(figsize=(4, 3.5))
    counts = data["sex"].value_counts()
    axes.bar(counts.index, counts.values, color=["tab:orange", "tab:green"][: len(counts)])
    axes.set_title("Speakers per sex")
    written.append(_save(figure, out / "speakers_per_sex.png"))
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(data["age"].dropna(), bins=30, color="tab:purple")
    axes.set_title("Age of speakers")
    axes.set_xlabel("age (years)")
    written.append(_save(figure, out / "age_histogram.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
