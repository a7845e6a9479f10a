"""Training one configuration: ``run(config, data, tracker) -> Result``.

``config`` (run and training options), ``augment`` (crops, speed, masks, noise), ``optim``
(optimisers and schedules), ``batches`` and ``loop`` (the torch loop), ``evaluate`` (split
scores and their logs), ``runtime`` (device, seeds, threads) and ``run`` (the whole run).
"""

from speechprint.core.runtime import resolve_device, seed_everything, torch_threads
from speechprint.train.config import DEVICE_PATTERN, Component, DataSpec, RunConfig, TrainConfig
from speechprint.train.errors import IncompatibleError, NonFiniteLossError
from speechprint.train.evaluate import evaluate_arrays, evaluate_split
from speechprint.train.loop import Reporter
from speechprint.train.run import Result, model_seed_variants, run

__all__ = [
    "DEVICE_PATTERN",
    "Component",
    "DataSpec",
    "IncompatibleError",
    "NonFiniteLossError",
    "Reporter",
    "Result",
    "RunConfig",
    "TrainConfig",
    "evaluate_arrays",
    "evaluate_split",
    "model_seed_variants",
    "resolve_device",
    "run",
    "seed_everything",
    "torch_threads",
]
