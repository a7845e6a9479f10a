"""Optimiser and learning-rate schedule factories: the one place that knows each scheduler.

Each scheduler steps at its own moment: ``onecycle`` after every batch, ``cosine`` after every
epoch, ``plateau`` after every epoch on the validation score (halving the rate when the score
stalls for ``patience // 3`` epochs); ``none`` keeps the rate constant. ``Schedule`` hides which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.optim import Optimizer

from speechprint.train.config import TrainConfig

StepsOn = Literal["batch", "epoch", "score", "never"]


@dataclass
class Schedule:
    """A learning-rate scheduler (or none) and the moment it steps."""

    scheduler: Any
    steps_on: StepsOn

    def after_batch(self) -> None:
        if self.steps_on == "batch":
            self.scheduler.step()

    def after_epoch(self, score: float) -> None:
        if self.steps_on == "epoch":
            self.scheduler.step()
        elif self.steps_on == "score":
            self.scheduler.step(score)


def make_optimizer(params: Iterable[torch.nn.Parameter], train: TrainConfig) -> Optimizer:
    optimizer_cls = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    return optimizer_cls(params, lr=train.lr, weight_decay=train.weight_decay)


def make_scheduler(optimizer: Optimizer, train: TrainConfig, steps_per_epoch: int) -> Schedule:
    """The schedule ``train.scheduler`` names, for ``train.epochs`` of ``steps_per_epoch``."""
    factory, steps_on = _SCHEDULERS[train.scheduler]
    return Schedule(factory(optimizer, train, steps_per_epoch), steps_on)


def _plateau(optimizer: Optimizer, train: TrainConfig, steps_per_epoch: int) -> Any:
    patience = max(1, train.patience // 3)  # a few chances to recover before early stopping
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=0.5, patience=patience
    )


def _cosine(optimizer: Optimizer, train: TrainConfig, steps_per_epoch: int) -> Any:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs)


def _onecycle(optimizer: Optimizer, train: TrainConfig, steps_per_epoch: int) -> Any:
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train.lr, total_steps=train.epochs * steps_per_epoch
    )


def _none(optimizer: Optimizer, train: TrainConfig, steps_per_epoch: int) -> Any:
    return None


_SCHEDULERS: dict[str, tuple[Callable[[Optimizer, TrainConfig, int], Any], StepsOn]] = {
    "plateau": (_plateau, "score"),
    "cosine": (_cosine, "epoch"),
    "onecycle": (_onecycle, "batch"),
    "none": (_none, "never"),
}
