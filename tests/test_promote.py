"""Promotion by evidence, a self-contained pyfunc, and prediction from raw audio (real MLflow store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import librosa
import mlflow
import numpy as np
import optuna
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app
from speechprint.core.errors import ConfigError
from speechprint.release.promote import promote
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec

_register_subcommands()
# Each test trains, registers and loads models in a real MLflow store: the slow tier.
pytestmark = pytest.mark.slow


def _spec(
    archive: Path,
    name: str,
    model: str = "mlp",
    cv: dict | None = None,
    models: list[str] | None = None,
    n_trials: int = 1,
    **train: object,
) -> StudySpec:
    raw = {
        "name": name,
        "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
        "extractors": ["mfcc_deltas"],
        "models": models or [model],
        "budget": {"n_trials": n_trials},
        "train": {"max_frames": 100, "epochs": train.pop("epochs", 15), **train},
        "search_training": False,
        "pruner": {"name": "none"},
        "sampler": {"name": "random", "seed": 0},
    }
    if cv:
        raw["cv"] = cv
    return StudySpec.from_dict(raw)


@pytest.fixture()
def promoted(small_archive: Path, tracking: str, cache_dir: Path) -> dict:
    """A good study (a class-balanced linear probe) promoted to champion, in a temporary store."""
    run_study(_spec(small_archive, "good", model="logreg"), cache_dir=str(cache_dir))
    decision = promote("good")
    return {"decision": decision, "archive": small_archive, "tracking": tracking}


def client_of(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_first_promotion_refits_registers_and_scores_test_once(promoted: dict) -> None:
    decision = promoted["decision"]
    assert decision.promoted and decision.alias == "champion" and decision.new_version
    client = client_of(promoted["tracking"])
    version = client.get_model_version_by_alias("speechprint-accent", "champion")
    assert str(version.version) == decision.version
    for tag in (
        "study",
        "trial",
        "extractor",
        "model",
        "selection_metric",
        "selection_score",
        "test_balanced_accuracy",
        "test_balanced_accuracy_ci95",
        "data_fingerprint",
        "labels",
        "trained_on",
    ):
        assert version.tags[tag], tag
    assert version.tags["selection_metric"] == "validation balanced accuracy"
    assert version.tags["trained_on"] == "train+val"
    run = client.get_run(version.run_id)  # the refit run, not the trial's
    assert run.data.tags["kind"] == "refit"
    study = optuna.load_study(
        study_name="good", storage=f"sqlite:///{Path('studies/good.db').resolve()}"
    )
    trial_run = client.get_run(study.best_trial.user_attrs["mlflow_run_id"])
    assert run.data.metrics["data/train_speakers"] > trial_run.data.metrics.get(
        "data/train_speakers", 0
    )
    low, high = decision.test_interval
    assert low <= decision.test_balanced_accuracy <= high
    assert decision.test_balanced_accuracy > decision.test_metrics["chance"]  # it learned accents
    assert "measured, not used to choose" in decision.summary()


def test_promoting_twice_registers_nothing_new(promoted: dict) -> None:
    again = promote("good")
    assert not again.new_version and again.version == promoted["decision"].version
    client = client_of(promoted["tracking"])
    assert len(client.search_model_versions("name='speechprint-accent'")) == 1


def test_a_worse_study_leaves_the_alias_where_it_was(promoted: dict, cache_dir: Path) -> None:
    # One epoch at a negligible learning rate: a model near chance on the same split.
    run_study(_spec(promoted["archive"], "worse", lr=1e-7, epochs=1), cache_dir=str(cache_dir))
    decision = promote("worse")
    assert not decision.promoted and decision.alias == "challenger"
    assert decision.incumbent_version == promoted["decision"].version
    client = client_of(promoted["tracking"])
    champion = client.get_model_version_by_alias("speechprint-accent", "champion")
    assert str(champion.version) == promoted["decision"].version
    # Compared on the same test speakers, with the paired difference (and a linear baseline).
    names = [c.name for c in decision.comparisons]
    assert any("previous 'champion' holder" in n for n in names)
    assert all(c.difference.n == decision.test_metrics["n"] for c in decision.comparisons)


def test_runs_compare_shows_the_promoted_trial_on_test(promoted: dict) -> None:
    from speechprint.release.compare import test_scores

    decision = promoted["decision"]
    row = test_scores("good").iloc[0]
    assert row["test_balanced_accuracy"] == round(decision.test_balanced_accuracy, 4)
    low, high = decision.test_interval
    assert row["test_ci95"] == f"{low:.3f}-{high:.3f}"
    assert row["registered_as"] == f"speechprint-accent v{decision.version}"
    result = CliRunner().invoke(app, ["runs", "compare", "--study", "good", "--markdown"])
    assert result.exit_code == 0, result.output
    assert "Test split" in result.output and f"{low:.3f}-{high:.3f}" in result.output
    assert "| best_balanced_accuracy | macro_f1 |" in result.output  # selection, not "val"


def test_a_named_trial_is_promoted_and_bad_trial_numbers_are_clear_errors(
    promoted: dict,
) -> None:
    decision = promote("good", trial=0)  # the only trial: already registered, nothing new
    assert not decision.new_version and decision.version == promoted["decision"].version
    with pytest.raises(ConfigError, match="has no trial 7"):
        promote("good", trial=7)
    result = CliRunner().invoke(app, ["promote", "--study", "good", "--trial", "7"])
    assert result.exit_code != 0 and "has no trial 7" in result.output


def test_a_fresh_process_loads_the_champion_by_alias(promoted: dict) -> None:
    recording = sorted((promoted["archive"] / "recordings").iterdir())[0]
    code = (
        "import mlflow.pyfunc, sys; "
        "m = mlflow.pyfunc.load_model('models:/speechprint-accent@champion'); "
        f"print(m.predict([{str(recording)!r}]).iloc[0]['label'])"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": promoted["tracking"]}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    labels = json.loads(
        mlflow.MlflowClient(promoted["tracking"])
        .get_model_version_by_alias("speechprint-accent", "champion")
        .tags["labels"]
    )
    assert out.stdout.strip().splitlines()[-1] in labels


def test_predict_cli_mp3_stereo_wav_and_a_corrupt_file(promoted: dict, tmp_path: Path) -> None:
    mp3 = sorted((promoted["archive"] / "recordings").glob("*.mp3"))[:2]
    wave, rate = librosa.load(mp3[0], sr=44100, mono=True)
    stereo = tmp_path / "stereo-44k.wav"
    sf.write(stereo, np.stack([wave, 0.8 * wave], axis=1), 44100)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(mp3[1].read_bytes()[:300])
    runner = CliRunner()
    result = runner.invoke(
        app, ["predict", *map(str, mp3), str(stereo), str(corrupt), "--json", "--top-k", "3"]
    )
    assert result.exit_code == 2, result.output  # unreadable input: a user error
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_file = {Path(line["file"]).name: line for line in lines}
    for good in [*mp3, stereo]:
        top = by_file[good.name]["top"]
        assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"]
    assert by_file["corrupt.mp3"]["top"] == [] and "corrupt.mp3" in result.stderr


def test_report_writes_figures_and_summary(promoted: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--study", "good", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {
        "summary.md",
        "optimization_history.png",
        "confusion_test.png",
        "per_class_recall_test.png",
        "pairs.png",
    } <= names
    summary = (out / "summary.md").read_text()
    assert "balanced accuracy" in summary and "chance" in summary


def test_another_alias_is_named_and_an_incumbent_of_other_data_is_not_scored_on_our_test(
    promoted: dict, cache_dir: Path
) -> None:
    from speechprint.release.promote import INCUMBENT

    archive = promoted["archive"]
    run_study(_spec(archive, "staged", model="logreg"), cache_dir=str(cache_dir))
    first = promote("staged", alias="staging")
    # Another split (data.seed 1): the staging holder may have trained on these test speakers.
    other = _spec(archive, "reseeded", model="logreg")
    other = other.model_copy(update={"data": other.data.model_copy(update={"seed": 1})})
    run_study(other, cache_dir=str(cache_dir))
    reseeded = promote("reseeded", alias="staging")
    assert reseeded.alias == "challenger" and reseeded.incumbent_version == first.version
    assert not [c for c in reseeded.comparisons if c.kind == INCUMBENT]
    # The same split under the same alias: compared, and named by the alias it held.
    again = promote("good", alias="staging")
    (incumbent,) = [c for c in again.comparisons if c.kind == INCUMBENT]
    assert incumbent.name == f"v{first.version} (previous 'staging' holder)"


def test_a_registry_that_does_not_answer_is_an_error_not_a_missing_alias(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from speechprint.core.errors import ServiceError
    from speechprint.release import registry

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = mlflow.MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9")
    for look_up in (
        lambda: registry.alias_holder(down, "speechprint-accent", "champion"),
        lambda: registry.version_of_run(down, "speechprint-accent", "0" * 32),
        lambda: registry.ensure_registered_model(down, "speechprint-accent"),
    ):
        with pytest.raises(ServiceError, match="cannot .*nothing was moved"):
            look_up()
    # A registry that answers "not found" is still an answer.
    local = client_of(f"sqlite:///{tmp_path / 'registry.db'}")
    assert registry.alias_holder(local, "speechprint-accent", "champion") is None
    registry.ensure_registered_model(local, "speechprint-accent")
    assert registry.alias_holder(local, "speechprint-accent", "champion") is None
    assert registry.version_of_run(local, "speechprint-accent", "0" * 32) is None
