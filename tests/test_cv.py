"""Repeated stratified k-fold over the development speakers: the invariants honest scores rest on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from speechprint.data.archive import load_archive
from speechprint.data.dataset import Dataset, make_dataset
from speechprint.train.cv import cross_validate, fold_datasets


@pytest.fixture(scope="module")
def dataset(tiny_archive: Path) -> Dataset:
    return make_dataset(load_archive(tiny_archive), "region", min_count=3, seed=0)


def speakers(frame) -> set[str]:  # noqa: ANN001
    return set(frame["speakerid"])


@pytest.mark.parametrize(("folds", "repeats"), [(3, 1), (2, 3)])
def test_folds_never_see_test_speakers_and_keep_speakers_disjoint(
    dataset: Dataset, folds: int, repeats: int
) -> None:
    held_out = speakers(dataset.split("test"))
    development = speakers(dataset.manifest[dataset.manifest["split"] != "test"])
    out = fold_datasets(dataset, folds, repeats, seed=0)
    assert len(out) % repeats == 0
    k = len(out) // repeats
    for repeat in range(repeats):
        scored: list[str] = []
        for fold in out[repeat * k : (repeat + 1) * k]:
            parts = {name: speakers(fold.split(name)) for name in ("train", "val", "test")}
            assert not (parts["train"] | parts["val"] | parts["test"]) & held_out
            assert not parts["train"] & parts["val"]  # early stopping never sees training speakers
            assert not parts["test"] & (parts["train"] | parts["val"])  # the scored fold is unseen
            assert parts["train"] | parts["val"] | parts["test"] == development
            scored += sorted(parts["test"])
        assert sorted(scored) == sorted(development)  # each speaker scored exactly once a repeat


def test_folds_are_stratified_by_label(dataset: Dataset) -> None:
    pool = dataset.manifest[dataset.manifest["split"] != "test"]
    totals = Counter(pool.drop_duplicates("speakerid")["label"])
    k = 2
    for fold in fold_datasets(dataset, k, 1, seed=0):
        held = Counter(fold.split("test").drop_duplicates("speakerid")["label"])
        for label, total in totals.items():
            assert abs(held[label] - total / k) <= 1, (label, held[label], total)


def test_repeats_shuffle_differently_and_fingerprints_differ(dataset: Dataset) -> None:
    first, second = fold_datasets(dataset, 2, 2, seed=0)[0::2]
    assert speakers(first.split("test")) != speakers(second.split("test"))
    assert len({f.fingerprint for f in fold_datasets(dataset, 2, 2, seed=0)}) == 4


def test_cross_validate_reports_the_running_mean_after_each_fold(
    tiny_archive: Path, cache_dir: Path
) -> None:
    from speechprint.train import RunConfig
    from speechprint.train.prepare import prepare_data

    config = RunConfig(
        archive=str(tiny_archive),
        extractor="mfcc_mean",
        model="logreg",
        min_count=3,
        cache_dir=str(cache_dir),
    )
    data = prepare_data(config, progress=False)
    reports: list[tuple[int, float]] = []
    result = cross_validate(
        config, data, folds=2, repeats=2, report=lambda s, v: reports.append((s, v))
    )
    assert [step for step, _ in reports] == [1, 2, 3, 4]
    assert reports[-1][1] == pytest.approx(result.mean)
    assert [v for _, v in reports] == pytest.approx(
        [float(np.mean(result.scores[: i + 1])) for i in range(4)]
    )
    # The interval is a bootstrap over speakers of their out-of-fold predictions (repeats
    # averaged): it must hold that pooled score, computed here without the code under test.
    from sklearn.metrics import balanced_accuracy_score

    by_speaker: dict[str, list[dict]] = {}
    for row in result.oof:
        by_speaker.setdefault(row["speakerid"], []).append(row)
    truth = [rows[0]["y_true"] for rows in by_speaker.values()]
    guess = [
        int(np.argmax(np.mean([r["proba"] for r in rows], axis=0))) for rows in by_speaker.values()
    ]
    pooled = balanced_accuracy_score(truth, guess)
    low, high = result.interval
    assert 0 <= low < high <= 1
    assert low <= pooled <= high


def test_model_seeds_average_torch_models_and_leave_deterministic_fits_alone(
    tiny_archive: Path, cache_dir: Path
) -> None:
    from speechprint.train import RunConfig, TrainConfig
    from speechprint.train.prepare import prepare_data

    def config(model: str) -> RunConfig:
        return RunConfig(
            archive=str(tiny_archive),
            extractor="mfcc_mean",
            model=model,
            min_count=3,
            cache_dir=str(cache_dir),
            train=TrainConfig(epochs=3, patience=3),
        )

    data = prepare_data(config("logreg"), progress=False)
    linear = cross_validate(config("logreg"), data, folds=2, repeats=1, seeds=3)
    assert linear.seeds == 1 and len(linear.best_epochs) == 2  # one fit per fold, not three
    assert linear.mean == cross_validate(config("logreg"), data, folds=2, repeats=1).mean
    deep = cross_validate(config("mlp"), data, folds=2, repeats=1, seeds=2)
    assert deep.seeds == 2 and len(deep.best_epochs) == 4  # two seeds in each of two folds
    rows = deep.oof
    assert all(abs(sum(row["proba"]) - 1) < 1e-3 for row in rows)


def test_a_folds_fingerprint_covers_the_region_table_as_the_datasets_does(
    tiny_archive: Path,
) -> None:
    """A fold is the dataset over another manifest: fingerprinted the one way (with_manifest),
    region table included, so folds of two region tables never look like the same data."""
    from speechprint.data.dataset import fingerprint

    dataset = make_dataset(load_archive(tiny_archive), "region", min_count=3)
    assert dataset.regions  # the region target records its table
    for fold in fold_datasets(dataset, folds=2, repeats=1, seed=0):
        assert fold.regions == dataset.regions
        assert fold.fingerprint == fingerprint(fold.manifest, "region", dataset.regions)
        assert fold.fingerprint != fingerprint(fold.manifest, "region")
