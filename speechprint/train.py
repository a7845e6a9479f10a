"""One run function: ``run(config, tracker) -> Result``, used by experiments, studies and tests.

Data preparation (archive -> dataset -> cached features) is an explicit step, ``prepare_data``,
so a study prepares each extractor once and passes the result to every trial. Training keeps all
data in memory as tensors; sequence models train on random crops of ``max_frames`` and are
evaluated on every segment of a recording, averaged per speaker. The test split is only scored
when ``config.evaluate_test`` is set (fixed experiments, promotion), never inside a study.
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from speechprint.classifier import AccentClassifier, pad_batch, segment_sequences
from speechprint.config import StrictModel, parse
from speechprint.data.archive import load_archive
from speechprint.data.dataset import Dataset, make_dataset
from speechprint.errors import ConfigError
from speechprint.features import FeatureSet, extract_features, make_extractor, pool_statistics
from speechprint.metrics import bootstrap_interval, evaluate, plot_confusion
from speechprint.models import build_model, family, incompatibility, pools_sequences
from speechprint.tracking_base import NullTracker, Tracker

Reporter = Callable[[int, float], None]


class IncompatibleError(ConfigError):
    """An extractor/model pair that cannot be trained together."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite (a study prunes such a trial with this reason)."""


DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"


class TrainConfig(StrictModel):
    """How one configuration trains: optimiser, schedule, early stopping, augmentation, device."""

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "adam"] = "adamw"  # adam + weight decay is the notebook's
    scheduler: Literal["plateau", "cosine", "onecycle", "none"] = "plateau"
    patience: int = Field(8, ge=1)  # early stopping on validation balanced accuracy
    grad_clip: float = Field(1.0, ge=0)
    # none | weighted (class-weighted loss) | sampler (class-balanced sampling)
    imbalance: Literal["none", "weighted", "sampler"] = "weighted"
    max_frames: int = Field(400, ge=4)  # training crop and evaluation segment (sequence models)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # Augmentation, training only, sequence models only (features are normalised first).
    time_masks: int = Field(2, ge=0)
    time_mask_width: int = Field(20, ge=0)
    freq_masks: int = Field(2, ge=0)
    freq_mask_width: int = Field(4, ge=0)
    noise_std: float = Field(0.0, ge=0)
    speed_perturb: float = Field(0.0, ge=0, lt=1)  # max relative change of the frame rate
    # auto: CUDA when available, else CPU. Saved models always load on CPU first.
    device: str = Field("auto", pattern=DEVICE_PATTERN)


class RunConfig(StrictModel):
    """One configuration: data, extractor, model and training; what every run logs."""

    archive: str
    extractor: str
    model: str
    target: str = "region"
    regions: str = "seed"  # region table: a packaged name (seed, geo) or a CSV path
    min_count: int = Field(5, ge=2)
    seed: int = 0
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    extractor_params: dict[str, Any] = Field(default_factory=dict)
    model_params: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate_test: bool = False
    cache_dir: str | None = None
    jobs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<run config>") -> RunConfig:
        return parse(cls, data, source=source)


@dataclass
class Result:
    config: RunConfig
    val: dict[str, Any]
    test: dict[str, Any] | None
    best_epoch: int
    history: list[dict[str, float]]
    classifier: AccentClassifier
    dataset_fingerprint: str
    n_skipped: int
    seconds: float
    cv: Any = None  # a CVResult when the configuration was also scored by k-fold


def prepare_data(config: RunConfig, *, progress: bool = True) -> tuple[Dataset, FeatureSet]:
    """Archive -> labelled speaker-disjoint split -> cached features for every recording."""
    archive = load_archive(config.archive)
    dataset = make_dataset(
        archive, config.target, min_count=config.min_count, seed=config.seed,
        val_fraction=config.val_fraction, test_fraction=config.test_fraction,
    )  # fmt: skip
    extractor = make_extractor(config.extractor, config.extractor_params)
    features = extract_features(
        list(dataset.manifest["path"]), extractor, jobs=config.jobs,
        cache_dir=config.cache_dir, progress=progress,
    )  # fmt: skip
    return dataset, features


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def torch_threads() -> int:
    """Intra-op threads for training: all cores, or the share ``SPEECHPRINT_TORCH_THREADS`` gives
    (set by ``study run --workers N`` so that N workers do not oversubscribe the cores)."""
    share = os.environ.get("SPEECHPRINT_TORCH_THREADS", "")
    return max(1, int(share) if share.isdigit() else os.cpu_count() or 1)


def run(
    config: RunConfig,
    tracker: Tracker | None = None,
    *,
    report: Reporter | None = None,
    features: tuple[Dataset, FeatureSet] | None = None,
) -> Result:
    """Train one configuration and evaluate it (validation; test only if asked)."""
    started = time.perf_counter()
    tracker = tracker or NullTracker()
    seed_everything(config.seed)
    torch.set_num_threads(torch_threads())
    dataset, feature_set = features if features is not None else prepare_data(config)
    if feature_set.extractor.id != make_extractor(config.extractor, config.extractor_params).id:
        raise ValueError("features were prepared for another extractor than the config names")
    reason = incompatibility(config.model, config.extractor, feature_set.extractor.kind)
    if reason:
        raise IncompatibleError(reason)
    skipped = {s.file for s in feature_set.skipped}
    dataset = dataset.without(skipped) if skipped else dataset
    tracker.log_metrics({"data/skipped_files": len(skipped)})

    splits = {name: dataset.split(name) for name in ("train", "val", "test")}
    arrays = {
        name: [feature_set.features[p] for p in frame["path"]] for name, frame in splits.items()
    }
    targets = {name: frame["y"].to_numpy() for name, frame in splits.items()}
    labels = dataset.labels
    pooled = feature_set.extractor.kind == "pooled" or pools_sequences(config.model)
    train_counts = dataset.class_counts("train")

    classifier = _fit_normaliser(config, labels, arrays["train"], pooled)
    history: list[dict[str, float]] = []
    if family(config.model) == "sklearn":
        classifier.model = build_model(config.model, classifier.input_dim, len(labels),
                                       config.model_params)  # fmt: skip
        classifier.model.fit(classifier.vectors(arrays["train"]), targets["train"])
        best_epoch = 0
    else:
        best_epoch = _train_torch(config, classifier, arrays, targets, train_counts, tracker,
                                  report, history)  # fmt: skip

    val = evaluate_arrays(classifier, arrays["val"], targets["val"], labels, train_counts)
    low, high = val["balanced_accuracy_ci"]
    tracker.log_metrics({"best/val_balanced_accuracy": val["balanced_accuracy"],
                         "best/val_balanced_accuracy_ci_low": low,
                         "best/val_balanced_accuracy_ci_high": high,
                         "best/val_macro_f1": val["macro_f1"], "best/val_accuracy": val["accuracy"],
                         "best/epoch": best_epoch})  # fmt: skip
    _log_split(tracker, "val", val)
    test = None
    if config.evaluate_test:
        test = evaluate_arrays(classifier, arrays["test"], targets["test"], labels, train_counts,
                               files=list(splits["test"]["path"]))  # fmt: skip
        tracker.log_metrics({f"test/{k}": v for k, v in test.items() if isinstance(v, float)})
        _log_split(tracker, "test", test)
        tracker.log_dict(test, "test_metrics.json")
    tracker.log_dict(config.to_dict(), "config.json")
    tracker.set_tags({"data_fingerprint": dataset.fingerprint})
    tracker.log_classifier(classifier)
    return Result(config, val, test, best_epoch, history, classifier, dataset.fingerprint,
                  len(skipped), time.perf_counter() - started)  # fmt: skip


def evaluate_arrays(
    classifier: AccentClassifier,
    features: list[np.ndarray],
    y_true: np.ndarray,
    labels: tuple[str, ...],
    train_counts: dict[str, int],
    *,
    files: list[str] | None = None,
) -> dict[str, Any]:
    """Metrics + bootstrap interval of balanced accuracy for one split."""
    proba = classifier.predict_proba_features(features)
    metrics = evaluate(y_true, proba, labels, train_counts=train_counts)
    metrics["balanced_accuracy_ci"] = list(bootstrap_interval(y_true, proba.argmax(1)))
    metrics["y_true"] = [int(y) for y in y_true]
    metrics["y_pred"] = [int(y) for y in proba.argmax(1)]
    if files is not None:
        metrics["files"] = files
    return metrics


def evaluate_split(
    classifier: AccentClassifier, dataset: Dataset, features: FeatureSet, split: str
) -> dict[str, Any]:
    """Score a trained classifier on one split of a dataset (used by promotion)."""
    frame = dataset.split(split)
    frame = frame[frame["path"].isin(features.features)]
    return evaluate_arrays(
        classifier, [features.features[p] for p in frame["path"]], frame["y"].to_numpy(),
        dataset.labels, dataset.class_counts("train"), files=list(frame["path"]),
    )  # fmt: skip


def _log_split(tracker: Tracker, split: str, metrics: dict[str, Any]) -> None:
    labels = metrics["labels"]
    tracker.log_figure(plot_confusion(metrics["confusion"], labels, normalized=True, title=split),
                       f"confusion_{split}.png")  # fmt: skip
    tracker.log_figure(plot_confusion(metrics["confusion"], labels, normalized=False, title=split),
                       f"confusion_{split}_counts.png")  # fmt: skip
    tracker.log_dict({"labels": labels, "counts": metrics["confusion"],
                      "normalized": metrics["confusion_normalized"]}, f"confusion_{split}.json")  # fmt: skip
    tracker.log_dict(
        {label: {"recall": metrics["per_class_recall"][label], "support": metrics["support"][label]}
         for label in labels}, f"per_class_{split}.json",
    )  # fmt: skip


def _fit_normaliser(
    config: RunConfig, labels: tuple[str, ...], train: list[np.ndarray], pooled: bool
) -> AccentClassifier:
    """Standardisation statistics from the training split only."""
    if pooled:
        matrix = np.stack([pool_statistics(a) for a in train])
    else:
        matrix = np.concatenate(train, axis=0)
    mean = matrix.mean(axis=0).astype(np.float32)
    std = (matrix.std(axis=0) + 1e-5).astype(np.float32)
    return AccentClassifier(
        extractor_name=config.extractor, extractor_params=dict(config.extractor_params),
        labels=labels, model_name=config.model, model_params=dict(config.model_params),
        input_dim=int(matrix.shape[1]), pooled=pooled, mean=mean, std=std,
        segment_frames=config.train.max_frames,
    )  # fmt: skip


# -- the torch loop --------------------------------------------------------------------------------


def _class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _random_crops(
    sequences: list[np.ndarray], max_frames: int, rng: np.random.Generator, speed: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random window of at most ``max_frames`` per sequence, padded into one tensor."""
    crops = []
    for sequence in sequences:
        if speed > 0:  # speed perturbation: resample the frame axis by a random factor
            factor = rng.uniform(1 - speed, 1 + speed)
            n = max(2, int(round(len(sequence) / factor)))
            index = np.minimum((np.arange(n) * factor).astype(int), len(sequence) - 1)
            sequence = sequence[index]
        start = int(rng.integers(0, max(1, len(sequence) - max_frames + 1)))
        crops.append(sequence[start : start + max_frames])
    return pad_batch(crops)


def _spec_augment(x: torch.Tensor, lengths: torch.Tensor, train: TrainConfig,
                  generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """SpecAugment-style time and feature masks plus Gaussian noise, vectorised over the batch."""
    batch, frames, dims = x.shape
    keep = torch.ones_like(x, dtype=torch.bool)
    time_index = torch.arange(frames)[None, :]
    dim_index = torch.arange(dims)[None, :]
    for _ in range(train.time_masks):
        width = torch.randint(0, train.time_mask_width + 1, (batch, 1), generator=generator)
        start = (
            torch.rand((batch, 1), generator=generator) * (lengths[:, None] - width).clamp_min(1)
        ).long()
        keep &= ~((time_index >= start) & (time_index < start + width))[:, :, None]
    for _ in range(train.freq_masks):
        width = torch.randint(0, train.freq_mask_width + 1, (batch, 1), generator=generator)
        start = (torch.rand((batch, 1), generator=generator) * max(dims - 1, 1)).long()
        keep &= ~((dim_index >= start) & (dim_index < start + width))[:, None, :]
    x = x * keep
    if train.noise_std > 0:
        x = x + train.noise_std * torch.randn(x.shape, generator=generator)
    return x


def _train_torch(
    config: RunConfig,
    classifier: AccentClassifier,
    arrays: dict[str, list[np.ndarray]],
    targets: dict[str, np.ndarray],
    train_counts: dict[str, int],
    tracker: Tracker,
    report: Reporter | None,
    history: list[dict[str, float]],
) -> int:
    """AdamW/Adam, LR schedule, clipping, class balance, early stopping on val balanced accuracy."""
    train = config.train
    labels = classifier.labels
    n_classes = len(labels)
    model = build_model(config.model, classifier.input_dim, n_classes, config.model_params)
    classifier.model = model
    y_train = torch.tensor(targets["train"], dtype=torch.long)
    y_val = torch.tensor(targets["val"], dtype=torch.long)
    weights = _class_weights(targets["train"], n_classes)
    loss_fn = nn.CrossEntropyLoss(weight=weights if train.imbalance == "weighted" else None,
                                  label_smoothing=train.label_smoothing)  # fmt: skip
    optimizer_cls = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    n_train = len(y_train)
    steps = max(1, -(-n_train // train.batch_size))
    scheduler: Any = None
    if train.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                               patience=max(1, train.patience // 3))  # fmt: skip
    elif train.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs)
    elif train.scheduler == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train.lr,
                                                        total_steps=train.epochs * steps)  # fmt: skip

    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    if classifier.pooled:
        x_train_fixed = torch.from_numpy(classifier.vectors(arrays["train"]))
        x_val = torch.from_numpy(classifier.vectors(arrays["val"]))
        val_segments, val_owners = None, None
    else:
        normalised_train = [classifier.normalise(a) for a in arrays["train"]]
        val_segments, val_owners = segment_sequences(
            [classifier.normalise(a) for a in arrays["val"]], train.max_frames,
            classifier.max_segments,
        )  # fmt: skip
    sample_weights = weights[y_train] if train.imbalance == "sampler" else None

    best_score, best_epoch, best_state, stale = -1.0, 0, None, 0
    for epoch in range(1, train.epochs + 1):
        model.train()
        if classifier.pooled:
            x_all, len_all = x_train_fixed, None
        else:
            x_all, len_all = _random_crops(normalised_train, train.max_frames, rng,
                                           train.speed_perturb)  # fmt: skip
        if sample_weights is not None:
            order = torch.multinomial(
                sample_weights, n_train, replacement=True, generator=generator
            )
        else:
            order = torch.randperm(n_train, generator=generator)
        total_loss, seen = 0.0, 0
        for start in range(0, n_train, train.batch_size):
            index = order[start : start + train.batch_size]
            if len(index) < 2 and classifier.pooled:
                continue  # BatchNorm cannot train on a single vector
            x = x_all[index]
            lengths = None
            if len_all is not None:
                lengths = len_all[index]
                x = x[:, : int(lengths.max())]
                x = _spec_augment(x, lengths, train, generator)
            elif train.noise_std > 0:
                x = x + train.noise_std * torch.randn(x.shape, generator=generator)
            logits = model(x, lengths)
            loss = loss_fn(logits, y_train[index])
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            if train.scheduler == "onecycle":
                scheduler.step()
            total_loss += loss.item() * len(index)
            seen += len(index)

        model.eval()
        with torch.inference_mode():
            if classifier.pooled:
                val_logits = model(x_val)
                val_proba = torch.softmax(val_logits, -1).numpy()
                val_loss = nn.functional.cross_entropy(val_logits, y_val).item()
            else:
                from speechprint.classifier import predict_segments

                segment_probs = predict_segments(model, val_segments)
                val_proba = np.zeros((len(y_val), n_classes))
                np.add.at(val_proba, val_owners, segment_probs)
                val_proba /= np.bincount(val_owners, minlength=len(y_val))[:, None]
                val_loss = float(nn.functional.nll_loss(
                    torch.log(torch.from_numpy(val_proba).clamp_min(1e-8)).float(), y_val))  # fmt: skip
        if not np.isfinite(val_loss) or not np.all(np.isfinite(val_proba)):
            raise NonFiniteLossError(f"non-finite validation loss at epoch {epoch}")
        metrics = evaluate(targets["val"], val_proba, labels, train_counts=train_counts)
        score = metrics["balanced_accuracy"]
        row = {"train/loss": total_loss / max(seen, 1), "val/loss": val_loss,
               "val/balanced_accuracy": score, "val/macro_f1": metrics["macro_f1"],
               "val/accuracy": metrics["accuracy"], "lr": optimizer.param_groups[0]["lr"]}  # fmt: skip
        history.append({"epoch": epoch, **row})
        tracker.log_metrics(row, step=epoch)
        if scheduler is not None and train.scheduler == "plateau":
            scheduler.step(score)
        elif scheduler is not None and train.scheduler == "cosine":
            scheduler.step()
        if score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if report is not None:
            report(epoch, score)  # may raise optuna.TrialPruned
        if stale >= train.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return best_epoch
