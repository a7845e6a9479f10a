"""A study on a synthetic Common Voice layout (several clips per speaker): the split is
speaker-disjoint and the objective is the per-speaker balanced accuracy the study file asks for."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_corpora import write_commonvoice

from speechprint.data.corpora import load_corpus
from speechprint.data.dataset import make_dataset
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def commonvoice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speakers = {}
    for accent, voice in (
        ("United States English", "en-us"),
        ("England English", "en"),
        ("Australian English", "en-029"),
    ):
        for i in range(5):
            speakers[f"{voice}-{i}".ljust(16, "x")] = (accent, "female", "twenties", voice)
    return write_commonvoice(tmp_path_factory.mktemp("cv"), clips_per_speaker=4, speakers=speakers)


def test_study_on_commonvoice_is_speaker_disjoint_and_scores_speakers(
    commonvoice: Path, tracking: str, cache_dir: Path
) -> None:
    from speechprint.train import run
    from speechprint.train.prepare import prepare_data

    data = {
        "archive": str(commonvoice),
        "corpus": "commonvoice",
        "unit": "speaker",
        "min_count": 3,
        "max_clips_per_speaker": 3,
        "seed": 0,
    }
    spec = StudySpec.from_dict(
        {
            "name": "cv-speakers",
            "data": data,
            "extractors": ["mfcc_mean"],
            "models": ["logreg"],
            "budget": {"n_trials": 2},
            "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
            "pruner": {"name": "none"},
        }
    )
    outcome = run_study(spec, cache_dir=str(cache_dir))
    assert outcome.ran == 2

    dataset = make_dataset(
        load_corpus(commonvoice, "commonvoice"),
        "region",
        min_count=3,
        seed=0,
        max_clips_per_speaker=3,
    )
    assert {t.user_attrs["data_fingerprint"] for t in outcome.study.trials} == {dataset.fingerprint}
    assert len(dataset.manifest) == 45 and dataset.manifest.groupby("speakerid").size().max() == 3
    splits = {s: set(dataset.split(s)["speakerid"]) for s in ("train", "val", "test")}
    assert not (
        splits["train"] & splits["val"]
        or splits["train"] & splits["test"]
        or splits["val"] & splits["test"]
    )

    # The objective is the speaker-level score: one row per validation speaker, clips averaged.
    import optuna

    from speechprint.study.space import suggest_config

    trial = outcome.study.best_trial
    config = suggest_config(optuna.trial.FixedTrial(trial.params), spec)
    config = config.model_copy(update={"cache_dir": str(cache_dir)})
    result = run(config, prepare_data(config, progress=False))
    assert result.val["unit"] == "speaker" and result.val["n"] == len(splits["val"])
    assert result.val["clip"]["n"] == len(dataset.split("val"))
    assert result.val["balanced_accuracy"] == pytest.approx(trial.value)
    assert result.val["speakers"] == sorted(splits["val"])
