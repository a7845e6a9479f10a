"""Ensembles: the average of the class probabilities of several classifiers over the same labels.

Members may use different extractors (each decodes audio at its own rate), so an ensemble works
from audio, not from one feature array. It is saved as one file and served as one pyfunc model,
like a single classifier.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speechprint.core.errors import ConfigError
from speechprint.evaluation.metrics import apply_temperature
from speechprint.inference.classifier import AccentClassifier
from speechprint.inference.heard import needs_passage

ENSEMBLE_FORMAT = "ensemble-1"


@dataclass
class EnsembleClassifier:
    members: list[Any]  # AccentClassifier, or EnsembleClassifier (nested averages)
    temperature: float = 1.0  # applied to the average (a fitted one: `findings --calibrate`)

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("an ensemble needs at least one member")
        labels = {member.labels for member in self.members}
        if len(labels) > 1:
            raise ConfigError(f"ensemble members disagree on their labels: {sorted(labels)}")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.members[0].labels

    @property
    def extractor_name(self) -> str:
        return "+".join(member.extractor_name for member in self.members)

    @property
    def extractor_params(self) -> dict[str, Any]:
        return {"members": [dict(m.extractor_params) for m in self.members]}

    @property
    def needs_passage(self) -> bool:
        """Whether any member's features are laid out by the archive's passage."""
        return any(uses_passage(member) for member in self.members)

    def without_passage(self) -> EnsembleClassifier | None:
        """The members whose features do not need the passage (a nested average keeps its own
        such members), averaged alone: for a recording of another text, the members that need
        the passage would only see utterance means. ``None`` when every member needs it."""
        kept: list[Any] = []
        for member in self.members:
            if isinstance(member, EnsembleClassifier):
                inner = member.without_passage()
                kept += [inner] if inner is not None else []
            elif not uses_passage(member):
                kept.append(member)
        return EnsembleClassifier(kept, self.temperature) if kept else None

    def to(self, device: torch.device | str) -> EnsembleClassifier:
        for member in self.members:
            member.to(device)
        return self

    def predict_proba_features(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Mean probabilities from features, for members that share one extractor (the seeds
        of one configuration); members over different extractors need audio."""
        extractors = {
            (m.extractor_name, repr(sorted(m.extractor_params.items()))) for m in self.members
        }
        if len(extractors) > 1:
            raise ConfigError("ensemble members use different extractors: predict from audio")
        return self._tempered(
            np.mean([m.predict_proba_features(arrays) for m in self.members], axis=0)
        )

    def predict_proba_waveform(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return self._tempered(
            np.mean([m.predict_proba_waveform(wave, sample_rate) for m in self.members], axis=0)
        )

    def _tempered(self, proba: np.ndarray) -> np.ndarray:
        return apply_temperature(proba, self.temperature)

    def predict_proba_files(
        self, paths: list[str | os.PathLike[str]]
    ) -> tuple[np.ndarray, dict[str, str]]:
        """Mean probabilities for files every member could read; ``{file: reason}`` for the rest."""
        per_member, errors = [], {}
        for member in self.members:
            proba, member_errors = member.predict_proba_files(paths)
            readable = [str(p) for p in paths if str(p) not in member_errors]
            per_member.append(dict(zip(readable, proba)))
            errors.update(member_errors)
        _, proba = self.average(per_member, [str(p) for p in paths])
        return proba, errors

    def average(
        self, per_member: list[dict[str, np.ndarray]], paths: list[str]
    ) -> tuple[list[str], np.ndarray]:
        """The files every member scored (in ``paths``' order) and the members' mean
        probabilities for them, tempered: however each member got its probabilities."""
        kept = [p for p in paths if all(p in rows for rows in per_member)]
        if not kept:
            return kept, np.zeros((0, len(self.labels)), dtype=np.float32)
        stacked = np.stack([[rows[p] for p in kept] for rows in per_member])
        return kept, self._tempered(stacked.mean(axis=0).astype(np.float32))

    def save(self, path: str | os.PathLike[str]) -> None:
        blobs = []
        for member in self.members:
            buffer = io.BytesIO()
            member.save(buffer)
            blobs.append(buffer.getvalue())
        torch.save(
            {"format": ENSEMBLE_FORMAT, "members": blobs, "temperature": self.temperature}, path
        )


def uses_passage(classifier: Any) -> bool:
    """Whether a classifier (or any member of an ensemble) needs the passage's words."""
    if isinstance(classifier, EnsembleClassifier):
        return classifier.needs_passage
    return needs_passage(classifier.extractor_name, classifier.extractor_params)


def load_classifier_file(
    path: str | os.PathLike[str] | io.BytesIO, *, device: torch.device | str = "cpu"
) -> Any:
    """A saved ``AccentClassifier`` or ``EnsembleClassifier``, read onto the CPU then moved."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(path, io.BytesIO):
        path.seek(0)  # read again below, as a single classifier
    if isinstance(state, dict) and state.get("format") == ENSEMBLE_FORMAT:
        # A member may itself be an average (a seed-averaged trial in a top-k ensemble).
        members = [load_classifier_file(io.BytesIO(blob)) for blob in state["members"]]
        return EnsembleClassifier(members, float(state.get("temperature", 1.0))).to(device)
    return AccentClassifier.load(path, device=device)
