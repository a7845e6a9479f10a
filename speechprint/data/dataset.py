"""Targets and speaker-disjoint, stratified train/val/test splits with a content fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from speechprint.core.errors import ConfigError, DataError
from speechprint.data.archive import Archive
from speechprint.data.regions import UNCLASSIFIED
from speechprint.data.targets import TARGETS

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Dataset:
    """One row per recording with its label and split; the fingerprint identifies all of it."""

    target: str
    labels: tuple[str, ...]
    manifest: pd.DataFrame  # speakerid, path, label, y, split
    fingerprint: str
    dropped_classes: dict[str, int] = field(default_factory=dict)
    dropped_rows: int = 0
    # ``name@digest`` of the region table when target is "region" (None otherwise): runs log it,
    # and the fingerprint includes it, so results on two region tables never look comparable.
    regions: str | None = None

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return self.manifest[self.manifest["split"] == name].reset_index(drop=True)

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Speakers per class (not clips: a prolific speaker is still one speaker)."""
        frame = self.manifest if split is None else self.split(split)
        counts = frame.drop_duplicates("speakerid")["label"].value_counts()
        return {label: int(counts.get(label, 0)) for label in self.labels}

    def clip_counts(self, split: str | None = None) -> dict[str, int]:
        """Clips (recordings) per class."""
        frame = self.manifest if split is None else self.split(split)
        counts = frame["label"].value_counts()
        return {label: int(counts.get(label, 0)) for label in self.labels}

    def without(self, paths: list[str] | set[str]) -> Dataset:
        """The same dataset without some files (e.g. unreadable ones); labels stay as they are."""
        drop = {str(p) for p in paths}
        return self.with_manifest(self.manifest[~self.manifest["path"].isin(drop)])

    def with_manifest(self, manifest: pd.DataFrame) -> Dataset:
        """The same dataset over another manifest (a subset, a fold), fingerprinted afresh."""
        manifest = manifest.reset_index(drop=True)
        return replace(
            self, manifest=manifest, fingerprint=fingerprint(manifest, self.target, self.regions)
        )


def fingerprint(manifest: pd.DataFrame, target: str, regions: str | None = None) -> str:
    """sha256 over (speaker, file name, file size, label, split) rows, the target and ``regions``.

    ``regions`` is the region table's ``name@digest``, given for the region target only.
    """
    digest = hashlib.sha256(target.encode())
    if regions is not None:  # absent for other targets: their fingerprints stay as they were
        digest.update(f"|regions={regions}\n".encode())
    for row in manifest.sort_values(["speakerid", "path"]).itertuples(index=False):
        path = Path(row.path)
        size = path.stat().st_size if path.exists() else -1
        digest.update(f"{row.speakerid}|{path.name}|{size}|{row.label}|{row.split}\n".encode())
    return digest.hexdigest()[:16]


def _split_speakers(
    speaker_labels: pd.Series, kept: list[str], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """``{speaker: split}``, each kept class split on its own with one seeded generator."""
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for label in kept:
        speakers = np.array(sorted(speaker_labels[speaker_labels == label].index))
        rng.shuffle(speakers)
        n = len(speakers)
        # At least one speaker in each split, and never so many held out that train is empty.
        n_test = min(max(1, int(round(n * test_fraction))), n - 2)
        n_val = min(max(1, int(round(n * val_fraction))), n - 1 - n_test)
        for i, speaker in enumerate(speakers):
            split_of[speaker] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return split_of


def _majority(values: pd.Series) -> str:
    """The most frequent value (ties: the smallest), the speaker's label over their clips."""
    counts = values.astype(str).value_counts()
    return str(min(counts[counts == counts.max()].index))


def cap_clips(rows: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most ``cap`` clips per speaker: a seeded sample, the same for the same rows and seed."""
    if rows.groupby("speakerid").size().max() <= cap:
        return rows
    # Random keys drawn in (speaker, path) order: the sample does not depend on row order.
    ordered = rows.sort_values(["speakerid", "path"], kind="stable")
    keys = pd.Series(np.random.default_rng(seed).random(len(ordered)), index=ordered.index)
    keep = keys.groupby(ordered["speakerid"]).rank(method="first") <= cap
    return ordered[keep].sort_index()


def _check_options(
    target: str,
    min_count: int,
    val_fraction: float,
    test_fraction: float,
    max_clips_per_speaker: int | None,
) -> None:
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; valid: {', '.join(TARGETS)}")
    if min_count < 3:
        raise ConfigError(f"min_count must be at least 3 (one speaker per split), got {min_count}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"invalid split fractions val={val_fraction}, test={test_fraction}")
    if max_clips_per_speaker is not None and max_clips_per_speaker < 1:
        raise ConfigError(f"max_clips_per_speaker must be at least 1, got {max_clips_per_speaker}")


def _manifest(
    labelled: pd.DataFrame, target: str, kept: list[str], split_of: dict[str, str]
) -> pd.DataFrame:
    """One row per kept recording: speaker, path, label, class index and split, sorted."""
    rows = labelled[labelled[target].isin(kept)]
    manifest = pd.DataFrame(
        {
            "speakerid": rows["speakerid"].astype(str).to_numpy(),
            "path": rows["path"].astype(str).to_numpy(),
            "label": rows[target].astype(str).to_numpy(),
        }
    )
    index = {label: i for i, label in enumerate(kept)}
    manifest["y"] = manifest["label"].map(index).astype(int)
    manifest["split"] = manifest["speakerid"].map(split_of)
    return manifest.sort_values(["split", "label", "speakerid"]).reset_index(drop=True)


class SplitFields(Protocol):
    """What a split is made of, as a study's ``data:`` section and a run's configuration say it."""

    target: str
    min_count: int
    seed: int
    val_fraction: float
    test_fraction: float
    max_clips_per_speaker: int | None


def dataset_for(archive: Archive, fields: SplitFields) -> Dataset:
    """``make_dataset`` with the fields of a ``data:`` section or a run configuration: the one
    place both build their split, so the two cannot drift apart."""
    return make_dataset(
        archive,
        fields.target,
        min_count=fields.min_count,
        seed=fields.seed,
        val_fraction=fields.val_fraction,
        test_fraction=fields.test_fraction,
        max_clips_per_speaker=fields.max_clips_per_speaker,
    )


def make_dataset(
    archive: Archive,
    target: str = "region",
    *,
    min_count: int = 5,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    max_clips_per_speaker: int | None = None,
) -> Dataset:
    """Label the recordings and split speakers (never recordings) into train/val/test.

    Corpora with many clips per speaker: a speaker's label is the one most of their clips carry
    (every clip gets it), classes are counted and stratified by speakers, and
    ``max_clips_per_speaker`` keeps a seeded sample of at most that many clips per speaker.

    Each class is split on its own (exact stratification) so that even a class of ``min_count``
    speakers has at least one speaker in every split; classes smaller than ``min_count`` are
    dropped and reported in ``dropped_classes``. Rows whose target is missing (or whose region is
    ``unclassified``) are dropped and counted in ``dropped_rows``. For the region target, the
    archive's region table (``archive.regions``) is recorded in ``regions`` and the fingerprint.

    Splitting per class with a seeded shuffle (instead of two stratified ``train_test_split``
    calls) is what guarantees every class in every split: sklearn's rounding can leave a
    3-speaker class out of val or test.
    """
    _check_options(target, min_count, val_fraction, test_fraction, max_clips_per_speaker)
    rows = archive.with_audio
    labelled = rows[rows[target].notna() & (rows[target] != UNCLASSIFIED)]
    dropped_rows = len(rows) - len(labelled)
    speaker_labels = labelled.groupby("speakerid", sort=True)[target].agg(_majority)
    labelled = labelled.assign(**{target: labelled["speakerid"].map(speaker_labels)})
    if max_clips_per_speaker is not None:
        labelled = cap_clips(labelled, max_clips_per_speaker, seed)
    counts = speaker_labels.value_counts()
    kept = sorted(str(c) for c in counts[counts >= min_count].index)
    dropped = {str(c): int(n) for c, n in counts[counts < min_count].items()}
    if len(kept) < 2:
        raise DataError(
            f"target {target!r} has {len(kept)} class(es) with at least {min_count} speakers; "
            "need 2 or more (lower min_count or use more data)"
        )

    split_of = _split_speakers(speaker_labels, kept, seed, val_fraction, test_fraction)
    manifest = _manifest(labelled, target, kept, split_of)
    regions = archive.regions.identity if target == "region" else None
    return Dataset(
        target=target,
        labels=tuple(kept),
        manifest=manifest,
        fingerprint=fingerprint(manifest, target, regions),
        dropped_classes=dropped,
        dropped_rows=dropped_rows,
        regions=regions,
    )
