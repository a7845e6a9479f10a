"""The torch training loop: epochs of training, validation scoring, early stopping.

AdamW/Adam with a learning-rate schedule, gradient clipping and class balance (weighted loss or
balanced sampling); the model of the best validation balanced accuracy is kept.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from speechprint.evaluation.metrics import evaluate
from speechprint.evaluation.units import by_speaker
from speechprint.inference.classifier import AccentClassifier, average_by_owner, predict_segments
from speechprint.models import build_model
from speechprint.tracking.protocol import Tracker
from speechprint.train.batches import (
    Batch,
    BatchStream,
    ValidationSet,
    class_weights,
    steps_per_epoch,
)
from speechprint.train.config import RunConfig
from speechprint.train.errors import NonFiniteLossError
from speechprint.train.optim import Schedule, make_optimizer, make_scheduler

Reporter = Callable[[int, float], None]
logger = logging.getLogger(__name__)


@dataclass
class EarlyStopping:
    """The best epoch so far (by validation score) and how many epochs since it improved."""

    patience: int
    best_score: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, Any] | None = None
    stale: int = 0

    def update(self, epoch: int, score: float, model: nn.Module) -> None:
        if score > self.best_score:
            self.best_score, self.best_epoch, self.stale = score, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.stale += 1

    @property
    def should_stop(self) -> bool:
        return self.stale >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: nn.Module,
    optimizer: Optimizer,
    schedule: Schedule,
    *,
    grad_clip: float,
    epoch: int,
) -> float:
    """One pass over the training batches; returns the mean training loss."""
    model.train()
    total_loss, seen = 0.0, 0
    for x, lengths, y in batches:
        loss = loss_fn(model(x, lengths), y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"non-finite training loss ({loss.item()}) at epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        schedule.after_batch()
        total_loss += loss.item() * len(y)
        seen += len(y)
    return total_loss / max(seen, 1)


def validation_scores(model: nn.Module, val: ValidationSet) -> tuple[np.ndarray, float]:
    """``(N, C)`` validation probabilities (segments averaged per recording) and the loss."""
    model.eval()
    with torch.inference_mode():
        if val.vectors is not None and val.owners is None:
            logits = model(val.vectors)
            y = torch.tensor(val.y, dtype=torch.long, device=logits.device)
            loss = nn.functional.cross_entropy(logits, y).item()
            return torch.softmax(logits, -1).cpu().numpy(), loss
        if val.vectors is not None:  # crop statistics: each window's vector
            segment_probs = torch.softmax(model(val.vectors), -1).cpu().numpy()
        else:
            assert val.segments is not None
            segment_probs = predict_segments(model, val.segments)
    assert val.owners is not None
    proba = average_by_owner(segment_probs, val.owners, len(val.y)).astype(np.float64)
    log_proba = torch.log(torch.from_numpy(proba).clamp_min(1e-8)).float()
    loss = float(nn.functional.nll_loss(log_proba, torch.tensor(val.y, dtype=torch.long)))
    return proba, loss


def validate(
    model: nn.Module,
    val: ValidationSet,
    labels: tuple[str, ...],
    train_counts: dict[str, int],
    epoch: int,
) -> dict[str, float]:
    """Validation metrics of one epoch, as logged (``val/*``)."""
    proba, loss = validation_scores(model, val)
    if not np.isfinite(loss) or not np.all(np.isfinite(proba)):
        raise NonFiniteLossError(f"non-finite validation loss at epoch {epoch}")
    y = val.y
    if val.speakers is not None:  # data.unit: speaker: each speaker once, clips averaged
        proba, y, _ = by_speaker(proba, val.y, val.speakers)
    metrics = evaluate(y, proba, labels, train_counts=train_counts)
    return {
        "val/loss": loss,
        "val/balanced_accuracy": metrics["balanced_accuracy"],
        "val/macro_f1": metrics["macro_f1"],
        "val/accuracy": metrics["accuracy"],
    }


def train_torch(
    config: RunConfig,
    classifier: AccentClassifier,
    arrays: Mapping[str, Sequence[np.ndarray]],
    targets: dict[str, np.ndarray],
    train_counts: dict[str, int],
    tracker: Tracker,
    report: Reporter | None,
    device: torch.device,
    val_speakers: list[str] | None = None,
) -> tuple[int, list[dict[str, float]], list[float]]:
    """Train ``classifier.model`` on ``device``; returns the best epoch, the history and the
    seconds each epoch took.

    Early stopping compares validation balanced accuracy in the unit the study compares:
    clips, or (``unit: speaker``, with ``val_speakers``) speakers."""
    train, labels = config.train, classifier.labels
    model = build_model(config.model, classifier.input_dim, len(labels), classifier.model_params)
    classifier.model = model = model.to(device)
    weights = class_weights(targets["train"], len(labels)).to(device)
    loss_fn = nn.CrossEntropyLoss(
        weight=weights if train.imbalance == "weighted" else None,
        label_smoothing=train.label_smoothing,
    )
    # A model over pretrained activations takes them back from the run's standardisation.
    set_normalisation = getattr(model, "set_input_normalisation", None)
    if set_normalisation is not None:
        set_normalisation(classifier.mean, classifier.scale)
    optimizer = make_optimizer(model.parameters(), train)
    batches = BatchStream(
        classifier, arrays["train"], targets["train"], train, seed=config.seed, device=device
    )
    steps = steps_per_epoch(batches.n_examples, train.batch_size)
    schedule = make_scheduler(optimizer, train, steps)
    # No validation split (a refit on all development speakers): train the fixed number of
    # epochs, keep the last model, and let a plateau schedule follow the training loss.
    speakers = val_speakers if config.unit == "speaker" else None
    val = (
        ValidationSet.build(
            classifier, arrays["val"], targets["val"], train.max_frames, device, speakers
        )
        if len(targets["val"])
        else None
    )
    stopping, history = EarlyStopping(train.patience if val else train.epochs + 1), []
    seconds: list[float] = []
    for epoch in range(1, train.epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(
            model,
            batches.epoch(),
            loss_fn,
            optimizer,
            schedule,
            grad_clip=train.grad_clip,
            epoch=epoch,
        )
        scores = validate(model, val, labels, train_counts, epoch) if val else {}
        # The cost of an epoch, scoring included: logged and returned, kept out of the history
        # (a seed gives the same history every time; a clock does not).
        seconds.append(time.perf_counter() - started)
        logger.info("epoch %d: train loss %.4f, %.1f s", epoch, train_loss, seconds[-1])
        row = {"train/loss": train_loss, **scores, "lr": optimizer.param_groups[0]["lr"]}
        history.append({"epoch": epoch, **row})
        tracker.log_metrics({**row, "time/epoch_seconds": seconds[-1]}, step=epoch)
        score = scores["val/balanced_accuracy"] if val else -train_loss
        schedule.after_epoch(score)
        stopping.update(epoch, score if val else float(epoch), model)
        if report is not None and val:
            report(epoch, score)  # may raise optuna.TrialPruned
        if stopping.should_stop:
            break
    stopping.restore(model)
    model.eval()
    return stopping.best_epoch, history, seconds
