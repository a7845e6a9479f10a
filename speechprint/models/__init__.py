"""Models by name: importing this package registers every model in ``MODELS``."""

from speechprint.models import (  # noqa: F401  (they register)
    backend,
    finetune,
    layered,
    linear,
    mlp,
    recurrent,
    tdnn,
    words,
)
from speechprint.models.base import (
    MODELS,
    Family,
    accepts,
    build_model,
    check_model_params,
    compatible,
    family,
    incompatibility,
    pools_sequences,
    with_layer_groups,
)

__all__ = [
    "MODELS",
    "Family",
    "accepts",
    "build_model",
    "check_model_params",
    "compatible",
    "family",
    "incompatibility",
    "pools_sequences",
    "with_layer_groups",
]
