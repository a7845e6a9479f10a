"""Predict from raw audio with a logged or registered model (any MLflow model URI)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechprint.core.errors import ConfigError, DataError
from speechprint.data.archive import AUDIO_EXTENSIONS
from speechprint.tracking import store as tracking

DEFAULT_MODEL_URI = "models:/speechprint-accent@champion"


def load_model(uri: str = DEFAULT_MODEL_URI, *, model_config: dict[str, Any] | None = None) -> Any:
    """Load the pyfunc; a missing alias or model is a clear error naming the URI."""
    import mlflow.pyfunc

    tracking.client()  # point MLflow at the project's store
    try:
        return mlflow.pyfunc.load_model(uri, model_config=model_config)
    except Exception as error:  # noqa: BLE001 - MLflow raises several types here
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"cannot load model {uri} from {tracking.tracking_uri()}: {first}. "
            "Run `speechprint promote --study NAME` first, or pass --model."
        ) from error


def check_inputs(paths: Sequence[str | Path], *, top_k: int) -> list[Path]:
    """The audio files to predict: a folder stands for the audio files in it (sorted, at any
    depth). Missing paths, an empty folder or ``top_k`` below 1 are one ``SpeechPrintError``."""
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DataError(f"file not found: {', '.join(missing)}")
    odd = [str(p) for p in paths if not (Path(p).is_file() or Path(p).is_dir())]
    if odd:  # /dev/null, a pipe, a socket: it exists but holds no recording
        raise DataError(f"not a file (a device or pipe): {', '.join(odd)}")
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
        )
        if not found:
            kinds = ", ".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
            raise DataError(f"{path}: a folder with no audio files ({kinds}) in it")
        files.extend(found)
    return files


def predict_files(
    paths: Sequence[str | Path],
    *,
    model_uri: str = DEFAULT_MODEL_URI,
    top_k: int = 3,
    text: str | None = None,
    listen: bool = True,
) -> list[dict[str, Any]]:
    """One dict per file: ``{"file", "top": [{"label", "probability"}...], "heard", "note"}``
    (``heard``: the transcript used, its source and the share of its words aligned).

    ``text`` is what every file says, when known; otherwise Whisper recognises it (``listen``).
    Unreadable files get an ``error`` and no ``top``; the other files are still predicted.
    """
    paths = check_inputs(paths, top_k=top_k)  # before the model: loading it takes seconds
    import pandas as pd

    model = load_model(model_uri, model_config={"listen": listen})
    inputs = pd.DataFrame({"path": [str(p) for p in paths]})
    if text is not None:
        inputs["text"] = text
    frame = model.predict(inputs)
    results = []
    for row in frame.to_dict(orient="records"):
        if row.get("error"):
            results.append({"file": row["file"], "top": [], "error": row["error"]})
            continue
        ranked = sorted(row["probabilities"].items(), key=lambda item: item[1], reverse=True)
        results.append(
            {
                "file": row["file"],
                "top": [
                    {"label": label, "probability": round(float(p), 4)}
                    for label, p in ranked[:top_k]
                ],
                "heard": {
                    "transcript": row.get("transcript"),
                    "source": row.get("transcript_source"),
                    "aligned_share": row.get("aligned_share"),
                },
                "note": row.get("note") or "",
            }
        )
    return results
