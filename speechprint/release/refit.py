"""Refit before registering: the chosen configuration retrained on all development speakers.

A study chooses a configuration on validation speakers (or on folds of the development speakers);
the model users get is then trained on train + val together, so the smallest regions keep every
speaker they have. No validation split is left for early stopping, so the number of epochs comes
from the selection evidence: the median best epoch over the cross-validation folds (or the trial's
own best epoch). The test split is scored once, by the refit model.
"""

from __future__ import annotations

import logging
from typing import Any

from speechprint.data.dataset import Dataset
from speechprint.models import family
from speechprint.tracking.protocol import NullTracker, Tracker
from speechprint.train import Result, RunConfig, run

log = logging.getLogger(__name__)

TRAINED_ON = "train+val"


def development_split(dataset: Dataset) -> Dataset:
    """The same dataset with its validation speakers moved into training (test untouched)."""
    manifest = dataset.manifest.assign(split=dataset.manifest["split"].replace({"val": "train"}))
    return dataset.with_manifest(manifest)


def refit(
    config: RunConfig,
    data: Any,
    *,
    epochs: int,
    tracker: Tracker | None = None,
    score_test: bool = True,
) -> Result:
    """Train ``config`` on train + val for ``epochs`` (torch models) and score it on test
    (``score_test`` False: a benchmark's refit on development speakers that never reads test)."""
    tracker = tracker or NullTracker()
    dataset, features = data
    development = development_split(dataset)
    epochs = max(1, int(epochs))
    train = config.train.model_copy(update={"epochs": epochs, "patience": epochs})
    refit_config = config.model_copy(update={"train": train, "evaluate_test": score_test})
    train_frame = development.split("train")

    # Epochs mean something to torch models only; scikit-learn fits to convergence.
    torch_model = family(config.model) == "torch"
    tracker.set_tags(
        {"trained_on": TRAINED_ON, **({"refit_epochs": epochs} if torch_model else {})}
    )
    tracker.log_metrics(
        {
            "data/train_speakers": float(train_frame["speakerid"].nunique()),
            "data/train_recordings": float(len(train_frame)),
        }
    )
    log.info(
        "refitting %s+%s on %d development speakers for %d epochs",
        config.extractor,
        config.model,
        train_frame["speakerid"].nunique(),
        epochs,
    )
    return run(refit_config, (development, features), tracker)
