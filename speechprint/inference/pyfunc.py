"""The self-contained MLflow model: raw audio in, accent probabilities out.

The model directory carries the trained ``AccentClassifier`` (extractor configuration,
normalisation statistics, label set, weights) and SpeechPrint's own code (``code_paths``), so
``mlflow.pyfunc.load_model("models:/speechprint-accent@champion")`` works in a fresh process.

Input: a DataFrame with a ``path`` column (audio files: mp3, wav, flac, ogg; any rate, mono or
stereo), or ``waveform`` + ``sample_rate`` columns, or a list of paths. Output: one row per input
with ``label`` (top-1), ``top_labels`` and ``top_probabilities`` (``top_k`` from the model config,
default 3), ``probabilities`` (label -> probability) and ``error`` (empty when predicted), then
what the recording said: ``transcript`` (the passage, the row's ``text`` when the input has that
column, else Whisper base's recognition), ``transcript_source`` (passage, given, whisper),
``aligned_share`` (its words found in the recording) and ``note`` (e.g. a model that needs the
passage asked about another text). ``model_config={"listen": False}`` skips the listening.

The model loads on the CPU unless told otherwise: ``mlflow.pyfunc.load_model(uri,
model_config={"device": "cuda"})`` (any ``train.device`` value, ``auto`` included). Calibrated
probabilities when asked: ``model_config={"temperature": T}`` with the ``T`` that ``speechprint
findings --calibrate`` fitted on development speakers (the run's ``temperature`` tag).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc.model import PythonModel

import speechprint
from speechprint.core.errors import ConfigError
from speechprint.core.runtime import resolve_device
from speechprint.inference.answer import ANSWER_COLUMNS, answer_row
from speechprint.inference.ensemble import load_classifier_file

CLASSIFIER_ARTIFACT = "classifier"
OUTPUT_COLUMNS = [
    "file",
    "label",
    "top_labels",
    "top_probabilities",
    "probabilities",
    "error",
    *ANSWER_COLUMNS,
]


# MLflow warns at class definition that ``predict`` has no type hints, inside its own
# ``catch_warnings`` (so filters cannot reach it). Ours has none on purpose: MLflow would try, and
# fail, to infer a schema from them. Keep that noise off every command that imports this module.
with contextlib.redirect_stderr(io.StringIO()):

    class AccentModel(PythonModel):
        def load_context(self, context: Any) -> None:
            config = context.model_config or {}
            device = resolve_device(str(config.get("device", "cpu")))
            self.classifier = load_classifier_file(
                context.artifacts[CLASSIFIER_ARTIFACT], device=device
            )
            self.top_k = int(config.get("top_k", 3))
            self.listen = bool(config.get("listen", True))
            if config.get("temperature") is not None:
                self.classifier.temperature = float(config["temperature"])

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return predict_frame(self.classifier, model_input, top_k=self.top_k, listen=self.listen)


def predict_frame(
    classifier: Any, model_input: Any, *, top_k: int = 3, listen: bool = True
) -> pd.DataFrame:
    """Score files, audio content or waveforms; a bad input gets an ``error`` row (``label``
    None, strict JSON when served), never sinks the batch. With ``listen``, each answer says
    what the recording said (``inference.answer``): a ``text`` column gives it, else Whisper
    recognises it."""
    frame = _as_frame(model_input)
    if "audio" in frame.columns:
        with tempfile.TemporaryDirectory() as tmp:
            return _predict_audio_content(classifier, frame, Path(tmp), top_k, listen)
    rows = [
        answer_row(classifier, record, index, top_k=top_k, listen=listen)
        for index, record in zip(frame.index, frame.to_dict(orient="records"))
    ]
    # object dtype: a missing label stays None (JSON null), never NaN (not JSON at all)
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS, dtype=object)


def _predict_audio_content(
    classifier: Any, frame: pd.DataFrame, folder: Path, top_k: int, listen: bool
) -> pd.DataFrame:
    """Rows of base64 ``audio`` (a client's file content, with an optional ``name``)."""
    paths, names, bad = [], [], {}
    for index, row in enumerate(frame.to_dict(orient="records")):
        name = str(row.get("name") or f"audio-{index}")
        path = folder / f"{index}-{Path(name).name or 'audio'}"
        try:
            path.write_bytes(base64.b64decode(str(row["audio"]), validate=True))
        except (binascii.Error, ValueError) as error:
            bad[str(path)] = f"'audio' is not valid base64: {error}"
        paths.append(str(path))
        names.append(name)
    files = pd.DataFrame({"path": paths})
    if "text" in frame.columns:
        files["text"] = list(frame["text"])
    result = predict_frame(classifier, files, top_k=top_k, listen=listen)
    for position, written in enumerate(paths):
        if written in bad:
            result.loc[position, ["label", "error"]] = [None, bad[written]]
    result["file"] = names
    return result


def _as_frame(model_input: Any) -> pd.DataFrame:
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, str | Path):
        frame = pd.DataFrame({"path": [str(model_input)]})
    elif isinstance(model_input, dict):
        frame = pd.DataFrame(model_input)
    else:
        frame = pd.DataFrame({"path": [str(p) for p in model_input]})
    if not (
        {"path", "audio"} & set(frame.columns) or {"waveform", "sample_rate"} <= set(frame.columns)
    ):
        raise ConfigError(
            "model input needs a 'path' column (audio files on this machine), an 'audio' column "
            "(base64 file content, optional 'name') or 'waveform' and 'sample_rate' columns; "
            f"got {list(frame.columns)}"
        )
    return frame


def load_classifier(client: Any, run_id: str) -> Any:
    """The trained classifier (or ensemble) logged by a run (the pyfunc's own artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, "model", tmp))
        candidates = sorted((local / "artifacts").glob(f"*{CLASSIFIER_ARTIFACT}*"))
        if not candidates:
            raise ConfigError(f"run {run_id} has no classifier in its model artifacts")
        return load_classifier_file(candidates[0])


def save_pyfunc(classifier: Any, path: str | Path) -> Path:
    """Write the classifier as an MLflow pyfunc model directory at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.parent / f"{path.name}-classifier.pt"
    classifier.save(weights)
    package_dir = str(Path(speechprint.__file__).resolve().parent)
    with _quiet_mlflow():
        _save_model(path, weights, package_dir, classifier)
    weights.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow warns about cloudpickle and type hints on every save: known and accepted here
    (the model is our own class, loaded from our own code path)."""
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _save_model(path: Path, weights: Path, package_dir: str, classifier: Any) -> None:
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=AccentModel(),
        artifacts={CLASSIFIER_ARTIFACT: str(weights)},
        code_paths=[package_dir],
        # temperature: None = as trained; a key here so load_model(model_config=) may set it
        # listen: say what each recording said (Whisper base and the phoneme recogniser)
        model_config={"top_k": 3, "device": "cpu", "temperature": None, "listen": True},
        pip_requirements=_requirements(),
        metadata={
            "labels": list(classifier.labels),
            "extractor": classifier.extractor_name,
            "extractor_params": dict(classifier.extractor_params),
        },
    )


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    requirements = []
    for name in ("torch", "numpy", "pandas", "scikit-learn", "librosa", "soundfile", "mlflow"):
        try:
            requirements.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return requirements
