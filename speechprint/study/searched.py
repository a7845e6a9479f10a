"""What a study can sample: the training options' space, and a walk that records every parameter
the models' spaces sample (for the study file's checks and messages), without Optuna."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechprint.catalogue.models import MODELS, family


def suggest_training(trial: Any) -> dict[str, Any]:
    """The optimiser's own space (only in torch branches: sklearn models ignore it)."""
    return {
        "lr": trial.suggest_float("train.lr", 3e-4, 5e-3, log=True),
        "weight_decay": trial.suggest_float("train.weight_decay", 1e-5, 1e-2, log=True),
        "imbalance": trial.suggest_categorical("train.imbalance", ["weighted", "sampler"]),
        "batch_size": trial.suggest_categorical("train.batch_size", [16, 32, 64]),
        # Not train.label_smoothing: it raised the shipped study's top cv from 0.604 to 0.648, and
        # its refit called 46% of speechocean762's speakers east asian instead of 96% (measured
        # by benchmarks/accuracy_levers.py --transfer). A study file may still set it in train:.
    }


@dataclass(frozen=True)
class Searched:
    """One searched parameter as its component declares it (for checks and messages)."""

    name: str
    kind: str  # float | int | categorical
    choices: tuple[Any, ...] = ()


class RecordingTrial:
    """Walks a space without Optuna to learn which parameters it samples (every space here is
    unconditional within its component, so one walk sees all of them)."""

    def __init__(self) -> None:
        self.seen: dict[str, Searched] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.seen[name] = Searched(name, "categorical", tuple(choices))
        return list(choices)[0]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        self.seen[name] = Searched(name, "float")
        return low

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        self.seen[name] = Searched(name, "int")
        return low


def record_space(pairs: list[str], models: list[str], search_training: bool) -> dict[str, Searched]:
    """Every parameter a study of these ``pairs`` and ``models`` can sample, by name."""
    recorder = RecordingTrial()
    recorder.suggest_categorical("pair", pairs)
    for model in models:
        entry = MODELS.get(model)
        if entry.space:
            entry.space(recorder)
        if search_training and family(model) == "torch":
            suggest_training(recorder)
    return recorder.seen
