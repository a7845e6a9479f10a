"""The run and training configuration, as training reads it: the schemas live in
``speechprint.catalogue.config``, light, so study and experiment files are checked without torch."""

from speechprint.catalogue.config import DEVICE_PATTERN, Component, DataSpec, RunConfig, TrainConfig

__all__ = ["DEVICE_PATTERN", "Component", "DataSpec", "RunConfig", "TrainConfig"]
