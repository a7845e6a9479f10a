"""A trained classifier that stands on its own: extractor config + normalisation + labels + model.

It predicts from features, from waveforms or from audio files, and saves to one file that loads
anywhere (a plain dict of parameters and weights; the model class is rebuilt from the registry).
Sequence models see fixed-length segments: a long recording is cut into segments of
``segment_frames`` and their probabilities are averaged (speaker-level aggregation).
Inference runs on the model's device (``to(device)``); the saved form always loads on the CPU
first, so a model trained on a GPU loads on a machine without one.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from speechprint.core.errors import DataError
from speechprint.data.audio import AudioError, load_audio, prepare_waveform
from speechprint.evaluation.metrics import apply_temperature
from speechprint.features.base import make_extractor, pool_statistics
from speechprint.models import build_model, family

FORMAT_VERSION = 1
# The floor training adds to every feature's standard deviation. A feature constant over the
# training split (a phoneme the archive's passage never has: zeros in every ``phones`` vector)
# is stored with exactly this std; dividing by it would make any value another text gives 1e5
# times larger. Such a feature is centred, not scaled, as scikit-learn's StandardScaler treats
# constant features: training saw it as 0 either way, so old models keep their behaviour.
STD_FLOOR = 1e-5


@dataclass
class AccentClassifier:
    extractor_name: str
    extractor_params: dict[str, Any]
    labels: tuple[str, ...]
    model_name: str
    model_params: dict[str, Any]
    input_dim: int
    pooled: bool  # features reach the model as one vector per recording
    mean: np.ndarray
    std: np.ndarray
    segment_frames: int = 400
    max_segments: int = 8  # evenly spaced segments per recording: long files cost no more
    # A pooled model trained on crop statistics (``train.crop_frames``) scores a recording as the
    # mean probability of the statistics of its evenly spaced windows of this many frames.
    crop_frames: int = 0
    # Calibration (speechprint findings --calibrate): probabilities become softmax(log p / T).
    # 1.0 leaves them as trained; fitted on development speakers only, never on test.
    temperature: float = 1.0
    model: Any = None  # torch module (eval mode) or fitted sklearn estimator
    _extractor: Any = field(default=None, repr=False, compare=False)

    # -- device ----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where inference runs: the torch model's device (the CPU for scikit-learn models)."""
        return module_device(self.model)

    def to(self, device: torch.device | str) -> AccentClassifier:
        """Move a torch model to ``device`` (batches follow it); scikit-learn stays on the CPU."""
        if isinstance(self.model, torch.nn.Module):
            self.model = self.model.to(torch.device(device))
        return self

    # -- features -> probabilities ---------------------------------------------------------------
    def normalise(self, array: np.ndarray) -> np.ndarray:
        return ((array - self.mean) / self.scale).astype(np.float32)

    @property
    def scale(self) -> np.ndarray:
        """``std``, with 1 for the features that were constant in training (``STD_FLOOR``)."""
        return np.where(self.std <= STD_FLOOR * 1.001, np.float32(1.0), self.std)

    def vectors(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Pooled, normalised ``(N, D)`` inputs for vector models."""
        return self.normalise(np.stack([pool_statistics(f) for f in features]))

    def crop_vectors(self, features: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised statistics of each recording's scoring windows and their recording."""
        stats, owners = segment_statistics(features, self.crop_frames, self.max_segments)
        return self.normalise(stats), owners

    def predict_proba_features(
        self, features: Sequence[np.ndarray], batch_size: int = 64
    ) -> np.ndarray:
        """``(N, C)`` probabilities for extracted features of any length (after ``temperature``)."""
        return apply_temperature(self._proba_features(features, batch_size), self.temperature)

    def _proba_features(self, features: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        if not features:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.pooled and self.crop_frames:
            x, owners = self.crop_vectors(features)
            return average_by_owner(self._proba_vectors(x), owners, len(features))
        if self.pooled:
            return self._proba_vectors(self.vectors(features))
        segments, owners = segment_sequences(
            [self.normalise(f) for f in features], self.segment_frames, self.max_segments
        )
        probs = predict_segments(self.model, segments, batch_size)
        return average_by_owner(probs, owners, len(features))

    def _proba_vectors(self, x: np.ndarray) -> np.ndarray:
        if family(self.model_name) == "sklearn":
            return self.model.predict_proba(x).astype(np.float32)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x).to(self.device))
            return torch.softmax(logits, -1).cpu().numpy()

    # -- audio -> probabilities ------------------------------------------------------------------
    @property
    def extractor(self) -> Any:
        if self._extractor is None:
            self._extractor = make_extractor(self.extractor_name, self.extractor_params)
        return self._extractor

    def predict_proba_waveform(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        wave = prepare_waveform(wave, sample_rate, self.extractor.sample_rate)
        return self.predict_proba_features([self.extractor.transform(wave)])[0]

    def predict_proba_files(
        self, paths: list[str | os.PathLike[str]]
    ) -> tuple[np.ndarray, dict[str, str]]:
        """Probabilities for the readable files (in order) and ``{file: reason}`` for the rest."""
        features, errors = [], {}
        for path in paths:
            try:
                wave = load_audio(path, self.extractor.sample_rate)
                features.append(self.extractor.transform(wave))
            except AudioError as error:
                errors[str(path)] = error.reason
        return self.predict_proba_features(features), errors

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        if family(self.model_name) == "sklearn":
            weights: Any = pickle.dumps(self.model)
        else:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save(
            {
                "format": FORMAT_VERSION,
                "extractor_name": self.extractor_name,
                "extractor_params": dict(self.extractor_params),
                "labels": list(self.labels),
                "model_name": self.model_name,
                "model_params": dict(self.model_params),
                "input_dim": self.input_dim,
                "pooled": self.pooled,
                "mean": self.mean,
                "std": self.std,
                "segment_frames": self.segment_frames,
                "max_segments": self.max_segments,
                "crop_frames": self.crop_frames,
                "temperature": self.temperature,
                "weights": weights,
            },
            path,
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | io.BytesIO, *, device: torch.device | str = "cpu"
    ) -> AccentClassifier:
        """Read a saved classifier onto the CPU, then move it to ``device``."""
        # Our own artifact (numpy arrays, sklearn pickle): not a weights-only checkpoint.
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("format") != FORMAT_VERSION:
            raise DataError(f"{path}: unsupported classifier format {state.get('format')}")
        weights = state.pop("weights")
        state.pop("format")
        classifier = cls(**{**state, "labels": tuple(state["labels"])})
        if family(classifier.model_name) == "sklearn":
            classifier.model = pickle.loads(weights)
        else:
            model = build_model(
                classifier.model_name,
                classifier.input_dim,
                len(classifier.labels),
                classifier.model_params,
            )
            model.load_state_dict(weights)
            classifier.model = model.eval()
        return classifier.to(device)


def segment_sequences(
    sequences: Sequence[np.ndarray], segment_frames: int, max_segments: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut each sequence into consecutive segments of at most ``segment_frames``.

    A short tail (under half a segment) is merged by taking the last full-length window instead,
    so every segment has real context. With ``max_segments``, that many evenly spaced segments
    are kept. Returns the segments and the index of their sequence.
    """
    segments: list[np.ndarray] = []
    owners: list[int] = []
    for index, sequence in enumerate(sequences):
        n = len(sequence)
        if n <= segment_frames:
            segments.append(sequence)
            owners.append(index)
            continue
        starts = list(range(0, n - segment_frames + 1, segment_frames))
        if n - (starts[-1] + segment_frames) >= segment_frames // 2:
            starts.append(n - segment_frames)
        if max_segments and len(starts) > max_segments:
            keep = np.linspace(0, len(starts) - 1, max_segments).round().astype(int)
            starts = [starts[i] for i in keep]
        for start in starts:
            segments.append(sequence[start : start + segment_frames])
            owners.append(index)
    return segments, np.asarray(owners, dtype=int)


def segment_statistics(
    features: Sequence[np.ndarray], crop_frames: int, max_segments: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean + std statistics of each sequence's evenly spaced windows of ``crop_frames``
    (``segment_sequences``) and the index of their sequence; a pooled vector stays one row."""
    stats: list[np.ndarray] = []
    owners: list[int] = []
    for index, feature in enumerate(features):
        if np.ndim(feature) == 1:
            windows = [feature]
        else:
            windows, _ = segment_sequences([feature], crop_frames, max_segments)
        stats += [pool_statistics(w) for w in windows]
        owners += [index] * len(windows)
    return np.stack(stats), np.asarray(owners, dtype=int)


def average_by_owner(probs: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """``(n, C)``: the mean of the rows of ``probs`` that belong to each owner."""
    totals = np.zeros((n, probs.shape[1]), dtype=np.float64)
    np.add.at(totals, owners, probs)
    return (totals / np.bincount(owners, minlength=n)[:, None]).astype(np.float32)


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``(T_i, D)`` arrays into ``(B, T_max, D)`` plus lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    batch = np.zeros((len(sequences), int(lengths.max()), sequences[0].shape[1]), np.float32)
    for i, sequence in enumerate(sequences):
        batch[i, : len(sequence)] = sequence
    return torch.from_numpy(batch), lengths


def predict_segments(model: Any, segments: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities per segment; segments batched by similar length."""
    order = np.argsort([len(s) for s in segments])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    device = module_device(model)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            x, lengths = pad_batch([segments[i] for i in chunk])
            logits = model(x.to(device), lengths.to(device))
            out.append((chunk, torch.softmax(logits, -1).cpu().numpy()))
    n_classes = out[0][1].shape[1]
    probs = np.zeros((len(segments), n_classes), dtype=np.float32)
    for chunk, values in out:
        probs[chunk] = values
    return probs


def module_device(model: Any) -> torch.device:
    """The device of a torch module's first parameter; the CPU for anything else."""
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            return parameter.device
    return torch.device("cpu")
