"""What a torch model sees in training and validation: tensors built once per run, batches per epoch.

Batches are drawn and augmented on the CPU from the run's seeded generators (the same batches on
every device) and only then moved to the training device, with their lengths and targets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from speechprint.inference.classifier import AccentClassifier, segment_sequences
from speechprint.train.augment import add_noise, crop_statistics, random_crops, spec_augment
from speechprint.train.config import TrainConfig

Batch = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]  # inputs, lengths, targets


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (``n / (k * count)``); a class absent from training weighs 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, -(-n_train // batch_size))


class BatchStream:
    """Shuffled (or class-balanced) batches of the training split, one pass per ``epoch()``."""

    def __init__(
        self,
        classifier: AccentClassifier,
        arrays: Sequence[np.ndarray],
        y: np.ndarray,
        train: TrainConfig,
        *,
        seed: int,
        device: torch.device,
    ) -> None:
        self.train, self.device, self.pooled = train, device, classifier.pooled
        self.classifier = classifier
        # Crop statistics: ``crops`` examples of each recording per epoch, drawn anew each epoch.
        self.crops = train.crops if self.pooled and classifier.crop_frames else 1
        self.y = torch.tensor(np.repeat(y, self.crops), dtype=torch.long)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.vectors: torch.Tensor | None = None
        self.sequences: list[np.ndarray] = []
        if self.pooled and classifier.crop_frames:
            self.sequences = list(arrays)  # raw frames: statistics first, then normalised
        elif self.pooled:
            self.vectors = torch.from_numpy(classifier.vectors(arrays))
        else:
            self.sequences = [classifier.normalise(a) for a in arrays]
        balanced = train.imbalance == "sampler"
        self.sample_weights = class_weights(y, len(classifier.labels))[self.y] if balanced else None

    @property
    def n_examples(self) -> int:
        """Training examples per epoch: recordings times crops."""
        return len(self.y)

    def _epoch_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This epoch's inputs: fixed vectors, fresh crop statistics, or fresh frame crops."""
        if self.vectors is not None:
            return self.vectors, None
        if self.pooled:
            stats = crop_statistics(
                self.sequences, self.classifier.crop_frames, self.crops, self.rng
            )
            return torch.from_numpy(self.classifier.normalise(stats)), None
        return random_crops(
            self.sequences, self.train.max_frames, self.rng, self.train.speed_perturb
        )

    def epoch(self) -> Iterator[Batch]:
        """Every training recording once (with replacement when class-balanced), in batches."""
        train, n = self.train, len(self.y)
        x_all, len_all = self._epoch_inputs()
        if self.sample_weights is not None:
            order = torch.multinomial(
                self.sample_weights, n, replacement=True, generator=self.generator
            )
        else:
            order = torch.randperm(n, generator=self.generator)
        for start in range(0, n, train.batch_size):
            index = order[start : start + train.batch_size]
            if len(index) < 2 and self.pooled:
                continue  # BatchNorm cannot train on a single vector
            yield self._batch(x_all, len_all, index)

    def _batch(
        self, x_all: torch.Tensor, len_all: torch.Tensor | None, index: torch.Tensor
    ) -> Batch:
        x, lengths = x_all[index], None
        if len_all is not None:
            lengths = len_all[index]
            x = spec_augment(x[:, : int(lengths.max())], lengths, self.train, self.generator)
            lengths = lengths.to(self.device)
        else:
            x = add_noise(x, self.train.noise_std, self.generator)
        return x.to(self.device), lengths, self.y[index].to(self.device)


@dataclass
class ValidationSet:
    """The validation split as the model scores it: vectors on the device, or segments per
    recording (``owners`` maps each segment to its recording) that are batched when scored."""

    y: np.ndarray
    vectors: torch.Tensor | None = None
    segments: list[np.ndarray] | None = None
    owners: np.ndarray | None = None
    speakers: list[str] | None = None  # set when early stopping scores speakers, not clips

    @classmethod
    def build(
        cls,
        classifier: AccentClassifier,
        arrays: Sequence[np.ndarray],
        y: np.ndarray,
        max_frames: int,
        device: torch.device,
        speakers: list[str] | None = None,
    ) -> ValidationSet:
        if classifier.pooled and classifier.crop_frames:
            stats, owners = classifier.crop_vectors(arrays)
            vectors = torch.from_numpy(stats).to(device)
            return cls(y, vectors=vectors, owners=owners, speakers=speakers)
        if classifier.pooled:
            vectors = torch.from_numpy(classifier.vectors(arrays)).to(device)
            return cls(y, vectors=vectors, speakers=speakers)
        segments, owners = segment_sequences(
            [classifier.normalise(a) for a in arrays], max_frames, classifier.max_segments
        )
        return cls(y, segments=segments, owners=owners, speakers=speakers)
