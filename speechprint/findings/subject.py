"""What the findings are about: a model's run, its data, and honest predictions for each speaker.

A model is a registry URI (``models:/speechprint-accent@champion``) or a study's trial; either way
its MLflow run holds ``config.json``. Predictions are **out of fold** on the development (train +
val) speakers: the run's configuration is retrained on k-1 folds and predicts the held-out fold
(``speechprint.train.cv.fold_datasets``), so every development speaker is scored by a model that never
heard them. With ``predictions="test"`` the registered model itself predicts its test split
instead. Fold models and predictions are cached (retraining is the slow part), keyed by the run,
the data fingerprint, the target and k.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.core.errors import ConfigError
from speechprint.data.archive import load_archive
from speechprint.features.cache import resolve_cache_dir
from speechprint.inference.ensemble import EnsembleClassifier
from speechprint.inference.pyfunc import load_classifier
from speechprint.release.candidates import choose
from speechprint.study.storage import load_study
from speechprint.tracking import store as tracking
from speechprint.train import RunConfig, model_seed_variants, run
from speechprint.train.cv import fold_datasets
from speechprint.train.prepare import prepare_data

logger = logging.getLogger(__name__)
VERSION = 1


@dataclass
class Subject:
    run_id: str
    config: Any  # RunConfig
    labels: tuple[str, ...]
    frame: pd.DataFrame  # one row per recording: path, speakerid, label, y, fold + metadata
    proba: np.ndarray  # (N, C), rows as in frame
    features: Any  # FeatureSet of the model's extractor
    classifiers: list[Path]  # saved classifier per fold (index = frame["fold"])
    folder: Path  # this subject's cache folder
    predictions: str  # "oof" or "test"
    name: str = ""  # what the model is, for the page ("" = its extractor + model)
    words_from: str = ""  # for an ensemble: the member whose inputs have words

    @property
    def description(self) -> str:
        return self.name or f"{self.config.extractor} + {self.config.model}"

    @property
    def predicted(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def resolve_run(
    model: str | None, study: str | None, trial: int | None, storage: str | None = None
) -> str:
    """The MLflow run id behind a registry URI, or behind a study's trial (best if no number)."""
    client = tracking.client()
    tracking.check_reachable(client)
    if study is not None:
        # The trial promotion would choose (or the one named): one rule for both.
        chosen = choose(load_study(study, storage), client, trial=trial).members[0]
        run_id = chosen.user_attrs.get("mlflow_run_id")
        if not run_id:
            raise ConfigError(f"trial {chosen.number} of study {study!r} has no MLflow run id")
        return str(run_id)
    uri = model or "models:/speechprint-accent@champion"
    if uri.startswith("runs:/"):  # a run of `speechprint run` (a fixed experiment)
        run_id = uri[len("runs:/") :].strip("/").split("/")[0]
        try:
            return str(client.get_run(run_id).info.run_id)
        except Exception as error:  # noqa: BLE001 - MLflow raises RestException for "not found"
            raise ConfigError(f"no MLflow run at {uri} ({error})") from None
    if not uri.startswith("models:/"):
        raise ConfigError(
            f"--model must be a registry URI like models:/NAME@ALIAS or runs:/RUN_ID, got {uri!r}"
        )
    name, _, rest = uri[len("models:/") :].partition("@")
    try:
        if rest:
            version = client.get_model_version_by_alias(name, rest)
        else:
            name, _, number = name.partition("/")
            version = client.get_model_version(name, number)
    except Exception as error:  # noqa: BLE001 - MLflow raises RestException for "not found"
        raise ConfigError(f"no registered model at {uri} ({error})") from None
    return str(version.run_id)


def load_config(run_id: str, **overrides: Any) -> Any:
    """The run's ``RunConfig`` (its ``config.json``), with non-None ``overrides`` applied."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracking.client().download_artifacts(run_id, "config.json", tmp)
        except Exception as error:  # noqa: BLE001 - MLflow raises its own types for "missing"
            raise ConfigError(
                f"run {run_id} has no config.json (not a SpeechPrint run?), so its "
                f"configuration cannot be retrained by fold: {error}"
            ) from None
        data = json.loads(Path(path).read_text())
    data.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(data, source=f"config.json of run {run_id}")


def model_seeds(run_id: str) -> int:
    """How many model seeds the run's model averages (its ``model_seeds`` tag; else one)."""
    return int(tracking.client().get_run(run_id).data.tags.get("model_seeds") or 1)


def build_subject(
    run_id: str,
    config: Any,
    *,
    predictions: str = "oof",
    folds: int = 5,
    progress: bool = True,
    seeds: int = 1,
) -> Subject:
    """Prepare the run's data and predict every speaker honestly (cached); ``seeds`` > 1: each
    fold's model is the average of that many model seeds, as the run's own model is."""
    if predictions not in ("oof", "test"):
        raise ConfigError(f"predictions must be 'oof' or 'test', got {predictions!r}")
    dataset, features = prepare_data(config, progress=progress)
    dataset = dataset.without({s.file for s in features.skipped})
    key = f"{run_id}|{dataset.fingerprint}|{config.target}|{predictions}|{folds}|v{VERSION}"
    key += f"|seeds{seeds}" if seeds > 1 else ""
    folder = (
        resolve_cache_dir(config.cache_dir)
        / "findings"
        / hashlib.sha256(key.encode()).hexdigest()[:16]
    )
    cached = folder / "predictions.pkl"
    if cached.exists():
        frame = pd.read_pickle(cached)
    elif predictions == "oof":
        frame = _out_of_fold(config, dataset, features, folds, folder, seeds)
    else:
        frame = _test_split(run_id, dataset, features, folder)
    if not cached.exists():
        frame.to_pickle(cached)
    proba = np.stack(frame.pop("proba").to_numpy())
    frame = frame.merge(
        _metadata(load_archive(config.archive, regions=config.regions)), on="path", how="left"
    )
    n_folds = int(frame["fold"].max()) + 1
    return Subject(
        run_id,
        config,
        dataset.labels,
        frame,
        proba,
        features,
        [folder / f"fold-{i}.pt" for i in range(n_folds)],
        folder,
        predictions,
    )


def _out_of_fold(
    config: Any, dataset: Any, features: Any, folds: int, folder: Path, seeds: int = 1
) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    fold_config = config.model_copy(update={"evaluate_test": False})
    for index, fold in enumerate(fold_datasets(dataset, folds, 1, config.seed)):
        logger.info("training fold %d (out-of-fold predictions)", index + 1)
        members = [
            run(seeded, (fold, features)).classifier
            for seeded in model_seed_variants(fold_config, seeds)
        ]
        classifier = members[0] if len(members) == 1 else EnsembleClassifier(members)
        classifier.save(folder / f"fold-{index}.pt")
        parts.append(_predict(classifier, fold.split("test"), features, index))
    return pd.concat(parts, ignore_index=True)


def _test_split(run_id: str, dataset: Any, features: Any, folder: Path) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    classifier = load_classifier(tracking.client(), run_id)
    classifier.save(folder / "fold-0.pt")
    return _predict(classifier, dataset.split("test"), features, 0)


def _predict(classifier: Any, split: pd.DataFrame, features: Any, fold: int) -> pd.DataFrame:
    proba = classifier.predict_proba_features([features.features[p] for p in split["path"]])
    out = split[["path", "speakerid", "label", "y"]].copy()
    out["fold"] = fold
    out["proba"] = list(proba.astype(np.float64))
    return out


def _metadata(archive: Any) -> pd.DataFrame:
    """Per recording: who spoke it (age, sex, onset, language, country) and for how long."""
    import soundfile as sf

    rows = archive.with_audio
    keep = [
        c
        for c in ("path", "age", "age_onset", "sex", "native_language", "country")
        if c in rows.columns
    ]
    meta = rows[keep].copy()
    meta["duration"] = [_duration(sf, p) for p in meta["path"]]
    return meta


def _duration(sf: Any, path: str) -> float:
    try:
        return float(sf.info(path).duration)
    except Exception:  # noqa: BLE001 - a header libsndfile cannot read: length unknown
        return float("nan")
