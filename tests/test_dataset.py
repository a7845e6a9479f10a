"""Targets, speaker-disjoint stratified splits and the data fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_archive import write_archive

from speechprint.core.errors import ConfigError, DataError
from speechprint.data.archive import Archive, load_archive
from speechprint.data.dataset import TARGETS, Dataset, make_dataset
from speechprint.data.regions import region_table

SPLITS = ("train", "val", "test")


@pytest.fixture()
def archive(tmp_path: Path) -> Archive:
    """Three regions of 10 speakers, one of 3 (the smallest splittable), one of 2 (too small)."""
    rows = []
    for country, language, n in (
        ("usa", "english", 10),
        ("china", "mandarin", 10),
        ("india", "hindi", 10),
        ("brazil", "portuguese", 3),
        ("iceland", "icelandic", 2),
    ):
        rows += [(f"{language}{i}", language, country) for i in range(1, n + 1)]
    rows.append(("#nofile1", "english", "usa"))  # no audio: never in the manifest
    rows.append(("lost1", "atlantean", "atlantis"))  # unclassified region: dropped, counted
    with pytest.warns(UserWarning, match="atlantis"):
        return load_archive(write_archive(tmp_path / "many", rows))


def speakers(dataset: Dataset, split: str) -> set[str]:
    return set(dataset.split(split)["speakerid"])


def test_labels_manifest_and_dropped(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=3, seed=0)
    assert dataset.target == "region" and TARGETS == ("region", "native_language", "country", "sex")
    assert dataset.labels == ("east asian", "latin american", "north american", "south asian")
    assert dataset.dropped_classes == {"scandinavian": 2}
    assert dataset.dropped_rows == 1  # the unclassified speaker
    manifest = dataset.manifest
    assert list(manifest.columns) == ["speakerid", "path", "label", "y", "split"]
    assert len(manifest) == 33 and manifest["path"].map(lambda p: Path(p).exists()).all()
    assert all(dataset.labels[y] == label for y, label in zip(manifest["y"], manifest["label"]))
    assert len(dataset.fingerprint) == 16 and int(dataset.fingerprint, 16) >= 0


def test_split_is_speaker_disjoint_and_stratified(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=3, seed=0)
    train, val, test = (speakers(dataset, s) for s in SPLITS)
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == len(dataset.manifest)
    for split in SPLITS:  # every class, even the 3-speaker one, in every split
        assert min(dataset.class_counts(split).values()) >= 1
    # Stratified: each 10-speaker class splits the same way (70/15/15 rounds to 7/2/1 or so).
    shares = {label: dataset.class_counts("train")[label] for label in dataset.labels}
    assert shares["east asian"] == shares["north american"] == shares["south asian"] >= 6
    assert dataset.class_counts() == {
        "east asian": 10,
        "latin american": 3,
        "north american": 10,
        "south asian": 10,
    }


def test_split_is_deterministic_per_seed(archive: Archive) -> None:
    first = make_dataset(archive, "region", min_count=3, seed=0)
    again = make_dataset(archive, "region", min_count=3, seed=0)
    assert again.fingerprint == first.fingerprint and again.manifest.equals(first.manifest)
    other = make_dataset(archive, "region", min_count=3, seed=1)
    assert speakers(other, "test") != speakers(first, "test")
    assert other.fingerprint != first.fingerprint  # the split changed, so must the fingerprint


def test_other_targets(archive: Archive) -> None:
    assert make_dataset(archive, "native_language", min_count=3).labels == (
        "english",
        "hindi",
        "mandarin",
        "portuguese",
    )
    countries = make_dataset(archive, "country", min_count=3).labels
    assert countries == ("brazil", "china", "india", "usa")
    assert set(make_dataset(archive, "sex", min_count=3).labels) == {"female", "male"}
    fingerprints = {make_dataset(archive, t, min_count=3).fingerprint for t in TARGETS}
    assert len(fingerprints) == 4  # the target is part of the fingerprint


def test_min_count_drops_small_classes(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=5)
    assert dataset.dropped_classes == {"latin american": 3, "scandinavian": 2}
    assert "latin american" not in dataset.labels


def test_validation(archive: Archive) -> None:
    with pytest.raises(ConfigError, match="unknown target 'shoe_size'"):
        make_dataset(archive, "shoe_size")
    with pytest.raises(ConfigError, match="min_count must be at least 3"):
        make_dataset(archive, min_count=2)
    with pytest.raises(ConfigError, match="split fractions"):
        make_dataset(archive, min_count=3, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(DataError, match="need 2 or more"):
        make_dataset(archive, min_count=11)
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)


def test_large_held_out_fractions_still_leave_train(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=3, val_fraction=0.3, test_fraction=0.5)
    for split in SPLITS:
        assert min(dataset.class_counts(split).values()) >= 1


def test_without_drops_files_keeps_labels(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=3)
    first = dataset.manifest["path"].iloc[0]
    smaller = dataset.without([first])
    assert len(smaller.manifest) == len(dataset.manifest) - 1
    assert first not in set(smaller.manifest["path"])
    assert smaller.labels == dataset.labels and smaller.target == dataset.target
    assert smaller.fingerprint != dataset.fingerprint
    assert dataset.without([]).fingerprint == dataset.fingerprint
    assert len(dataset.manifest) == 33  # the original is untouched


def test_fingerprint_follows_file_content(archive: Archive) -> None:
    dataset = make_dataset(archive, "region", min_count=3)
    path = Path(dataset.manifest["path"].iloc[0])
    path.write_bytes(path.read_bytes() + b"\x00" * 64)  # a re-encoded file: different size
    assert make_dataset(archive, "region", min_count=3).fingerprint != dataset.fingerprint


def reload(archive: Archive, regions: str | Path) -> Archive:
    with pytest.warns(UserWarning, match="atlantis"):  # unmapped in every table here
        return load_archive(archive.root, regions=regions)


def test_region_table_is_part_of_the_fingerprint(archive: Archive, tmp_path: Path) -> None:
    seed = make_dataset(archive, "region", min_count=3)
    assert seed.regions == region_table("seed").identity == f"seed@{region_table().digest}"
    # The same labels under another table's name and digest must not look comparable.
    relabelled = tmp_path / "seedlike.csv"
    relabelled.write_text(
        "country,region\nusa,north american\nchina,east asian\n"
        "india,south asian\nbrazil,latin american\niceland,scandinavian\n"
    )
    same_labels = make_dataset(reload(archive, relabelled), "region", min_count=3)
    assert same_labels.manifest.equals(seed.manifest)
    assert same_labels.regions.startswith("seedlike@")
    assert same_labels.fingerprint != seed.fingerprint
    geo = make_dataset(reload(archive, "geo"), "region", min_count=3)
    assert geo.regions.startswith("geo@") and geo.fingerprint != seed.fingerprint
    assert geo.without([]).fingerprint == geo.fingerprint  # re-fingerprinting keeps the table
    # Other targets do not depend on the region table.
    geo_archive = reload(archive, "geo")
    for target in ("country", "native_language", "sex"):
        a = make_dataset(archive, target, min_count=3)
        b = make_dataset(geo_archive, target, min_count=3)
        assert a.regions is None and a.fingerprint == b.fingerprint


@pytest.mark.shared
def test_real_archive_split_keeps_all_17_regions(shared_archive: Path) -> None:
    dataset = make_dataset(load_archive(shared_archive), "region", min_count=5, seed=0)
    assert len(dataset.labels) == 17 and dataset.dropped_classes == {}
    assert len(dataset.manifest) == 1079
    train, val, test = (speakers(dataset, s) for s in SPLITS)
    assert not (train & val or train & test or val & test)
    for split in SPLITS:
        assert min(dataset.class_counts(split).values()) >= 1


# --- many clips per speaker (a synthetic Common Voice layout) -------------------------------------


@pytest.fixture(scope="module")
def commonvoice(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """Three accents of four speakers, 2 to 6 clips each (one prolific speaker per accent)."""
    from test_corpora import write_commonvoice

    from speechprint.data.corpora import load_corpus

    root = tmp_path_factory.mktemp("cv")
    speakers = {}
    for accent, voice in (
        ("United States English", "en-us"),
        ("England English", "en"),
        ("Australian English", "en-029"),
    ):
        for i in range(4):
            speakers[f"{voice}-{i}".ljust(16, "x")] = (accent, "female", "twenties", voice)
    write_commonvoice(root, clips_per_speaker=2, speakers=speakers)
    prolific = {
        f"{v}-9".ljust(16, "x"): (a, "male", "thirties", v)
        for a, v in (("United States English", "en-us"), ("England English", "en"))
    }
    write_commonvoice(root / "more", clips_per_speaker=6, speakers=prolific, first_seed=1000)
    for clip in (root / "more" / "clips").iterdir():  # same layout, one validated.tsv
        clip.rename(root / "clips" / clip.name)
    extra = (root / "more" / "validated.tsv").read_text().splitlines(keepends=True)[1:-1]
    with open(root / "validated.tsv", "a") as handle:
        handle.writelines(extra)
    return load_corpus(root, "commonvoice")


def test_many_clips_split_by_speaker(commonvoice: Archive) -> None:
    dataset = make_dataset(commonvoice, "region", min_count=3, seed=1)
    manifest = dataset.manifest
    assert len(manifest) == 36 and manifest["speakerid"].nunique() == 14
    splits_of = manifest.groupby("speakerid")["split"].nunique()
    assert (splits_of == 1).all()  # every clip of a speaker in the same split
    # Class balance counts speakers: the prolific speakers weigh one each.
    assert dataset.class_counts() == {"british isles": 5, "north american": 5, "oceanian": 4}
    assert dataset.clip_counts() == {"british isles": 14, "north american": 14, "oceanian": 8}
    for split in SPLITS:
        assert min(dataset.class_counts(split).values()) >= 1


def test_max_clips_per_speaker(commonvoice: Archive) -> None:
    capped = make_dataset(commonvoice, "region", min_count=3, seed=1, max_clips_per_speaker=3)
    clips = capped.manifest.groupby("speakerid").size()
    assert clips.max() == 3 and len(capped.manifest) == 8 * 2 + 4 * 2 + 2 * 3 and len(clips) == 14
    again = make_dataset(commonvoice, "region", min_count=3, seed=1, max_clips_per_speaker=3)
    assert again.fingerprint == capped.fingerprint  # seeded: the same sample
    other = make_dataset(commonvoice, "region", min_count=3, seed=2, max_clips_per_speaker=3)
    assert set(other.manifest["path"]) != set(capped.manifest["path"])
    uncapped = make_dataset(commonvoice, "region", min_count=3, seed=1)
    assert capped.fingerprint != uncapped.fingerprint
    with pytest.raises(ConfigError, match="max_clips_per_speaker"):
        make_dataset(commonvoice, "region", min_count=3, max_clips_per_speaker=0)


def test_speaker_metrics_average_clips() -> None:
    import numpy as np

    from speechprint.evaluation.units import with_units

    # Speaker a: clips right, wrong, right (mean right); speaker b: one wrong clip.
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.7, 0.3]])
    clip = {
        "labels": ["x", "y"],
        "y_true": [0, 0, 0, 1],
        "proba": proba.tolist(),
        "balanced_accuracy": 0.25,
    }
    speakers = ["a", "a", "a", "b"]
    chosen = with_units(clip, speakers, unit="speaker")
    assert chosen["unit"] == "speaker" and chosen["n"] == 2
    assert chosen["y_pred"] == [0, 0] and chosen["balanced_accuracy"] == 0.5
    assert chosen["clip"] is clip
    default = with_units(clip, speakers)
    assert default["balanced_accuracy"] == 0.25 and default["speaker"]["balanced_accuracy"] == 0.5
    np.testing.assert_allclose(default["speaker"]["proba"][0], [0.7, 0.3])


def test_early_stopping_scores_speakers_when_the_unit_is_speaker() -> None:
    import numpy as np
    import torch

    from speechprint.train.batches import ValidationSet
    from speechprint.train.loop import validate

    # Logits in, so the "model" is the identity. Speaker a (class x): one clip right, one wrong,
    # right on average; speaker b (class y): both right. Clips: recall 1/2 and 1; speakers: 1, 1.
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 2.0]])
    y = np.array([0, 0, 1, 1])
    counts = {"x": 2, "y": 2}
    clips = validate(torch.nn.Identity(), ValidationSet(y, vectors=logits), ("x", "y"), counts, 1)
    speakers = ValidationSet(y, vectors=logits, speakers=["a", "a", "b", "b"])
    by_speaker = validate(torch.nn.Identity(), speakers, ("x", "y"), counts, 1)
    assert clips["val/balanced_accuracy"] == 0.75
    assert by_speaker["val/balanced_accuracy"] == 1.0
    assert by_speaker["val/loss"] == clips["val/loss"]  # the loss stays per clip
