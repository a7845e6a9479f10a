"""Predict from raw audio with a logged or registered model (any MLflow model URI)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechprint.core.errors import ConfigError

DEFAULT_MODEL_URI = "models:/speechprint-accent@champion"


def load_model(uri: str = DEFAULT_MODEL_URI, *, model_config: dict[str, Any] | None = None) -> Any:
    """Load the pyfunc; a missing alias or model is a clear error naming the URI."""
    import mlflow.pyfunc

    from speechprint.tracking import store as tracking

    tracking.client()  # point MLflow at the project's store
    try:
        return mlflow.pyfunc.load_model(uri, model_config=model_config)
    except Exception as error:  # noqa: BLE001 - MLflow raises several types here
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"cannot load model {uri} from {tracking.tracking_uri()}: {first}. "
            "Run `speechprint promote --study NAME` first, or pass --model."
        ) from error


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
