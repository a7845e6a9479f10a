"""Model selection you can trust: cross-validated trials, refits, promotion by evidence, ensembles.

Real Optuna storage, a real MLflow store and registry in tmp_path, real audio; ``mlflow models
serve`` is started for real on loopback.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app
from speechprint.release.promote import promote
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec

_register_subcommands()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(small_archive: Path) -> Path:
    return small_archive


def cv_spec(archive: Path, name: str, **changes: Any) -> StudySpec:
    raw = {
        "name": name,
        "data": {"archive": str(archive), "min_count": 3},
        "extractors": ["mfcc_deltas"],
        "models": ["logreg", "mlp"],
        "budget": {"n_trials": 3},
        "train": {"epochs": 8, "patience": 3, "max_frames": 100},
        "search_training": False,
        "cv": {"folds": 3, "repeats": 1},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "baselines": [
            {"pair": "mfcc_deltas+logreg", "logreg.C": 1.0},
            {"pair": "mfcc_deltas+mlp", "mlp.hidden": 128, "mlp.layers": 1, "mlp.dropout": 0.1},
        ],
    }
    return StudySpec.from_dict({**raw, **changes})


def client_of(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture()
def cv_study(archive: Path, tracking: str, cache_dir: Path) -> Any:
    return run_study(cv_spec(archive, "cv"), cache_dir=str(cache_dir)).study


def test_cross_validated_trials_log_folds_and_out_of_fold_predictions(
    cv_study: Any, tracking: str
) -> None:
    client = client_of(tracking)
    for trial in cv_study.trials:
        assert trial.state == TrialState.COMPLETE
        assert trial.value == pytest.approx(trial.user_attrs["cv_balanced_accuracy_mean"])
        run_id = trial.user_attrs["mlflow_run_id"]
        folds = client.get_metric_history(run_id, "cv/fold_balanced_accuracy")
        assert [m.step for m in folds] == [1, 2, 3]
        assert np.mean([m.value for m in folds]) == pytest.approx(trial.value)
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"oof_predictions.json", "config.json"} <= artifacts
    oof = json.loads(
        Path(
            client.download_artifacts(
                cv_study.trials[0].user_attrs["mlflow_run_id"], "oof_predictions.json"
            )
        ).read_text()
    )
    speakers = {row["speakerid"] for row in oof["rows"]}
    assert len(oof["rows"]) == len(speakers)  # one repeat: each development speaker once
    assert all(abs(sum(row["proba"]) - 1) < 1e-3 for row in oof["rows"])
    # The experiment declares the metric its trials log, and `speechprint ui` links to them.
    experiment = client.get_experiment_by_name("cv")
    assert experiment.tags["mlflow.experiment.primaryMetric.name"] == "cv/balanced_accuracy_mean"
    from typer.testing import CliRunner

    from speechprint.cli import _register_subcommands, app

    _register_subcommands()
    result = CliRunner().invoke(app, ["ui", "--study", "cv", "--port", "5055"])
    assert result.exit_code == 0, result.output
    link = f"http://127.0.0.1:5055/#/experiments/{experiment.experiment_id}/runs?"
    assert (
        link in result.output.replace("\n", "") and "cv%2Fbalanced_accuracy_mean" in result.output
    )


def test_pruning_stops_a_hopeless_configuration_after_the_first_fold(
    archive: Path, tracking: str, cache_dir: Path
) -> None:
    good = {"pair": "mfcc_deltas+logreg", "logreg.C": 1.0}
    # Regularised into constants (queued trials must differ: Optuna skips a duplicate).
    hopeless = [{"pair": "mfcc_deltas+logreg", "logreg.C": c} for c in (1e-6, 2e-6)]
    spec = cv_spec(
        archive,
        "cv-pruned",
        models=["logreg"],
        budget={"n_trials": 3},
        baselines=[good, *hopeless],
        space={"logreg.C": {"low": 1e-6, "high": 10.0, "log": True}},
        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
    )
    trials = run_study(spec, cache_dir=str(cache_dir)).study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert [t.number for t in pruned] == [1, 2], [
        (t.number, t.state, t.intermediate_values) for t in trials
    ]
    assert all(list(t.intermediate_values) == [1] for t in pruned)  # one fold, not three
    assert all("pruned at fold 1" in t.user_attrs["prune_reason"] for t in pruned)


def test_promotion_refits_on_train_and_val_with_the_cv_epoch_count(
    cv_study: Any, tracking: str
) -> None:
    decision = promote("cv", trial=1)  # the MLP baseline: a torch model with epochs to choose
    client = client_of(tracking)
    version = client.get_model_version(decision.model_name, decision.version)
    trial = cv_study.trials[1]
    assert int(version.tags["refit_epochs"]) == trial.user_attrs["refit_epochs"] > 0
    assert version.tags["selection_metric"] == "cv 3x1 balanced accuracy"
    refit_run = client.get_run(version.run_id)
    assert refit_run.data.tags["trained_on"] == "train+val"
    oof = json.loads(
        Path(
            client.download_artifacts(trial.user_attrs["mlflow_run_id"], "oof_predictions.json")
        ).read_text()
    )
    development = len({row["speakerid"] for row in oof["rows"]})  # every train+val speaker
    assert refit_run.data.metrics["data/train_speakers"] == development
    epochs = client.get_metric_history(version.run_id, "train/loss")
    assert len(epochs) == trial.user_attrs["refit_epochs"]  # no early stopping without val


def test_the_alias_moves_on_cv_evidence_never_on_test(cv_study: Any, tracking: str) -> None:
    client = client_of(tracking)
    first = promote("cv", trial=0)
    assert first.promoted
    # Make the incumbent's recorded CV evidence unbeatable: however good the next model is on
    # test, the alias stays.
    client.set_model_version_tag(first.model_name, first.version, "selection_score", "0.999")
    second = promote("cv", trial=1)
    assert not second.promoted and second.alias == "challenger"
    champion = client.get_model_version_by_alias(first.model_name, "champion")
    assert str(champion.version) == first.version
    # And a worse recorded CV score lets a newcomer through even if its test score is lower.
    client.set_model_version_tag(first.model_name, first.version, "selection_score", "0.0")
    third = promote("cv", trial=2)
    assert third.promoted
    assert (
        str(client.get_model_version_by_alias(first.model_name, "champion").version)
        == third.version
    )
    assert any("previous 'champion' holder" in c.name for c in third.comparisons)


def test_runs_compare_pairs_two_trials_out_of_fold(cv_study: Any, tracking: str) -> None:
    result = CliRunner().invoke(app, ["runs", "compare", "--study", "cv", "--paired", "0", "1"])
    assert result.exit_code == 0, result.output
    assert "out of fold, trial 0 - trial 1:" in result.output and "95% CI" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_and_post(uri: str, tracking: str, records: list[dict[str, Any]], cwd: Path) -> str:
    """Start ``mlflow models serve`` on loopback, post ``records``, return the raw answer."""
    port = free_port()
    # MLflow starts uvicorn by name: the interpreter's own bin folder must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": path}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        body = json.dumps({"dataframe_records": records}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant} in the answer")

    return json.loads(text, parse_constant=refuse)


def test_an_ensemble_and_a_single_model_are_served_to_clients_with_audio(
    cv_study: Any, archive: Path, tracking: str, tmp_path: Path
) -> None:
    ensemble = promote("cv", ensemble=2, alias="ensemble")
    assert ensemble.candidate.startswith("ensemble of trial")
    assert ensemble.selection.metric == "cv 3x1 balanced accuracy"
    single = promote("cv", trial=0, alias="single")
    mp3 = sorted((archive / "recordings").glob("*.mp3"))[0]
    records = [
        {"audio": base64.b64encode(mp3.read_bytes()).decode(), "name": mp3.name},
        {"audio": base64.b64encode(b"not audio at all").decode(), "name": "broken.mp3"},
    ]
    labels = json.loads(
        client_of(tracking).get_model_version(ensemble.model_name, ensemble.version).tags["labels"]
    )
    for alias in ("ensemble", "single"):
        answer = _strict_json(
            serve_and_post(f"models:/speechprint-accent@{alias}", tracking, records, tmp_path)
        )
        good, broken = answer["predictions"]
        assert good["file"] == mp3.name and good["label"] in labels and good["error"] == ""
        assert abs(sum(good["probabilities"].values()) - 1) < 1e-3
        assert broken["file"] == "broken.mp3" and broken["label"] is None and broken["error"]
    # The ensemble loads by alias in this process too and predicts from raw audio.
    model = mlflow.pyfunc.load_model("models:/speechprint-accent@ensemble")
    frame = model.predict([str(mp3)])
    assert frame.iloc[0]["label"] in labels
    assert single.version != ensemble.version


def test_a_trial_scored_over_model_seeds_is_refit_as_their_average(
    archive: Path, tracking: str, cache_dir: Path
) -> None:
    from speechprint.inference.ensemble import EnsembleClassifier
    from speechprint.inference.pyfunc import load_classifier

    mlp = {"pair": "mfcc_deltas+mlp", "mlp.hidden": 128, "mlp.layers": 1, "mlp.dropout": 0.1}
    spec = cv_spec(
        archive,
        "cv-seeds",
        models=["logreg", "mlp"],
        budget={"n_trials": 2},
        cv={"folds": 3, "repeats": 1, "seeds": 2},
        baselines=[{"pair": "mfcc_deltas+logreg", "logreg.C": 1.0}, mlp],
    )
    study = run_study(spec, cache_dir=str(cache_dir)).study
    assert study.trials[1].user_attrs["cv_seeds"] == 2
    client = client_of(tracking)
    decision = promote("cv-seeds", trial=1)
    assert "averaged over 2 model seeds" in decision.summary()
    version = client.get_model_version(decision.model_name, decision.version)
    assert version.tags["model_seeds"] == "2" and version.tags["trained_on"] == "train+val"
    experiment = client.get_experiment_by_name("cv-seeds").experiment_id
    seeds = client.search_runs([experiment], "tags.candidate LIKE '1-seed%'")
    assert sorted(r.data.tags["model_seed"] for r in seeds) == ["0", "1"]
    model = load_classifier(client, version.run_id)
    assert isinstance(model, EnsembleClassifier) and len(model.members) == 2
    first, second = (m.model.state_dict() for m in model.members)
    assert any(not np.allclose(first[k], second[k]) for k in first)  # two seeds, two models
    # The registered model's test answer is the members' average, scored on the same speakers.
    tests = [
        json.loads(Path(client.download_artifacts(r.info.run_id, "test_metrics.json")).read_text())
        for r in seeds
    ]
    average = json.loads(
        Path(client.download_artifacts(version.run_id, "test_metrics.json")).read_text()
    )
    mean = np.mean([t["proba"] for t in tests], axis=0)
    assert np.allclose(average["proba"], mean, atol=1e-5)
    # `runs compare` shows the trial once, its seeds' test scores beside the average's.
    from speechprint.release.compare import test_scores

    table = test_scores("cv-seeds")
    assert list(table["trial"]).count("1") == 1 and not table["trial"].str.contains("seed").any()
    by_seed = sorted(seeds, key=lambda r: int(r.data.tags["model_seed"]))
    expected = " ".join(f"{r.data.metrics['test/balanced_accuracy']:.3f}" for r in by_seed)
    assert table.set_index("trial").loc["1", "seed_test_scores"] == expected
    # Its configuration is logged beside it, so `findings` can retrain it by fold.
    assert "config.json" in {a.path for a in client.list_artifacts(version.run_id)}
    # Findings retrain it by fold as it was made: each fold's model averages the same seeds.
    from speechprint.findings.subject import build_subject, load_config, model_seeds, resolve_run
    from speechprint.inference.ensemble import load_classifier_file

    run_id = resolve_run(f"models:/{decision.model_name}/{decision.version}", None, None)
    assert model_seeds(run_id) == 2
    subject = build_subject(
        run_id,
        load_config(run_id, cache_dir=str(cache_dir)),
        folds=2,
        progress=False,
        seeds=model_seeds(run_id),
    )
    fold_model = load_classifier_file(subject.classifiers[0])
    assert isinstance(fold_model, EnsembleClassifier) and len(fold_model.members) == 2
    rows = np.flatnonzero(subject.frame["fold"].to_numpy() == 0)
    arrays = [subject.features.features[p] for p in subject.frame["path"].iloc[rows]]
    assert np.allclose(subject.proba[rows], fold_model.predict_proba_features(arrays), atol=1e-5)
    # In a top-k ensemble the seed average is one member (nested), still served from audio.
    nested = promote("cv-seeds", ensemble=2, alias="ensemble")
    assert nested.candidate.startswith("ensemble of trial")
    mp3 = sorted((archive / "recordings").glob("*.mp3"))[0]
    frame = mlflow.pyfunc.load_model("models:/speechprint-accent@ensemble").predict([str(mp3)])
    assert frame.iloc[0]["label"] in json.loads(version.tags["labels"])


def test_an_ensemble_by_pair_takes_the_best_trial_of_each_pair(
    cv_study: Any, tracking: str
) -> None:
    from speechprint.core.errors import ConfigError
    from speechprint.release.candidates import choose
    from speechprint.study.summary import pair_of

    client = client_of(tracking)
    ranked = sorted(cv_study.trials, key=lambda t: t.value, reverse=True)
    by_trial = choose(cv_study, client, ensemble=3)
    assert [t.number for t in by_trial.members] == [t.number for t in ranked]
    by_pair = choose(cv_study, client, ensemble=3, ensemble_by="pair")
    pairs = [pair_of(t) for t in by_pair.members]
    assert sorted(pairs) == ["mfcc_deltas+logreg", "mfcc_deltas+mlp"]  # the study's two pairs
    for member in by_pair.members:
        assert member.value == max(t.value for t in ranked if pair_of(t) == pair_of(member))
    with pytest.raises(ConfigError, match="ensemble_by must be one of trial, pair"):
        choose(cv_study, client, ensemble=2, ensemble_by="extractor")


def test_findings_on_an_ensemble_average_its_members_out_of_fold_predictions(
    cv_study: Any, archive: Path, tracking: str, tmp_path: Path
) -> None:
    from speechprint.findings.members import ensemble_subject, member_runs
    from speechprint.findings.run import run_findings
    from speechprint.findings.subject import build_subject, load_config, resolve_run

    ensemble = promote("cv", ensemble=2, alias="ensemble")
    run_id = resolve_run("models:/speechprint-accent@ensemble", None, None)
    members = member_runs(run_id)
    assert members is not None and len(members) == 2 and run_id not in members
    assert member_runs(members[0]) is None  # a single model's run
    subject = ensemble_subject(run_id, members, predictions="oof", folds=3, progress=False)
    alone = [build_subject(m, load_config(m), folds=3, progress=False) for m in members]
    by_path = [dict(zip(s.frame["path"], s.proba)) for s in alone]
    expected = [np.mean([rows[p] for rows in by_path], axis=0) for p in subject.frame["path"]]
    assert len(subject.frame) == len(alone[0].frame)
    np.testing.assert_allclose(subject.proba, expected, atol=1e-9)
    assert subject.description.startswith("ensemble of 2 (mfcc_deltas + ")
    # The page is written for the champion-like URI, with the ensemble named in it.
    findings = run_findings(
        tmp_path / "page",
        model="models:/speechprint-accent@ensemble",
        folds=3,
        calibrate=True,
        progress=False,
    )
    assert findings.run_id == run_id == ensemble.run_id
    assert "ensemble of 2" in findings.page.read_text()
    # The fitted temperature is stored on the ensemble's run and applied by its pyfunc.
    from speechprint.evaluation.metrics import apply_temperature

    temperature = float(client_of(tracking).get_run(run_id).data.tags["temperature"])
    assert temperature != pytest.approx(1.0)
    mp3 = str(sorted((archive / "recordings").glob("*.mp3"))[0])
    plain = mlflow.pyfunc.load_model("models:/speechprint-accent@ensemble")
    tempered = mlflow.pyfunc.load_model(
        "models:/speechprint-accent@ensemble", model_config={"temperature": temperature}
    )
    classifier = plain.unwrap_python_model().classifier
    before, _ = classifier.predict_proba_files([mp3])
    after, _ = tempered.unwrap_python_model().classifier.predict_proba_files([mp3])
    np.testing.assert_allclose(after, apply_temperature(before, temperature), atol=1e-5)
