"""Optimisers and learning-rate schedules: the rate each scheduler gives, batch by batch."""

from __future__ import annotations

import math

import pytest
import torch

from speechprint.train import TrainConfig
from speechprint.train.optim import make_optimizer, make_scheduler


def rates(train: TrainConfig, steps: int, scores: list[float] | None = None) -> list[list[float]]:
    """The learning rate each batch trained with, per epoch, stepping as the training loop does."""
    model = torch.nn.Linear(2, 1)
    optimizer = make_optimizer(model.parameters(), train)
    schedule = make_scheduler(optimizer, train, steps)
    out = []
    for epoch in range(train.epochs):
        used = []
        for _ in range(steps):
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(scores[epoch] if scores else 0.5)
        out.append(used)
    return out


def per_epoch(trajectory: list[list[float]]) -> list[float]:
    assert all(len(set(epoch)) == 1 for epoch in trajectory)  # constant within an epoch
    return [epoch[0] for epoch in trajectory]


def test_none_keeps_the_rate() -> None:
    train = TrainConfig(epochs=3, lr=0.01, scheduler="none")
    assert rates(train, steps=2) == [[0.01, 0.01]] * 3


def test_plateau_halves_after_patience() -> None:
    # patience 3 -> the scheduler waits max(1, 3 // 3) = 1 stalled epoch, then halves on the next.
    train = TrainConfig(epochs=6, lr=1.0, scheduler="plateau", patience=3)
    assert per_epoch(rates(train, steps=2)) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    patient = TrainConfig(epochs=6, lr=1.0, scheduler="plateau", patience=6)  # waits 2
    assert per_epoch(rates(patient, steps=2)) == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]


def test_plateau_keeps_the_rate_while_the_score_improves() -> None:
    train = TrainConfig(epochs=5, lr=1.0, scheduler="plateau", patience=3)
    assert per_epoch(rates(train, steps=2, scores=[0.1, 0.2, 0.3, 0.4, 0.5])) == [1.0] * 5


def test_cosine_follows_the_cosine_curve_per_epoch() -> None:
    train = TrainConfig(epochs=4, lr=1.0, scheduler="cosine")
    expected = [1.0, 0.8535533905932737, 0.5, 0.14644660940672624]  # (1 + cos(pi e / 4)) / 2
    assert per_epoch(rates(train, steps=3)) == pytest.approx(expected, abs=1e-12)


def test_onecycle_rises_then_falls_per_batch() -> None:
    train = TrainConfig(epochs=2, lr=1.0, scheduler="onecycle")
    flat = [lr for epoch in rates(train, steps=5) for lr in epoch]
    # 10 steps: warm-up over steps 0..2 (30%) from lr/25 to lr, then cosine down to lr/25/1e4.
    low = 0.04 / 1e4
    down = [low + (1.0 - low) / 2 * (1 + math.cos(math.pi * k / 7)) for k in range(1, 8)]
    assert flat == pytest.approx([0.04, 0.52, 1.0, *down], abs=1e-12)
    assert flat.index(max(flat)) == 2 and flat[-1] == pytest.approx(low)


@pytest.mark.parametrize(
    ("name", "cls"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)]
)
def test_optimizer_takes_rate_and_weight_decay(name: str, cls: type) -> None:
    train = TrainConfig(optimizer=name, lr=0.02, weight_decay=0.3)
    optimizer = make_optimizer(torch.nn.Linear(2, 1).parameters(), train)
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["lr"] == 0.02
    assert optimizer.param_groups[0]["weight_decay"] == 0.3
