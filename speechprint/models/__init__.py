"""Models by name: importing this package implements every model ``MODELS`` declares.

The declarations (names, kinds, parameters, spaces) are in ``speechprint.catalogue.models``, light;
the modules here import torch or scikit-learn and give each declared model its builder."""

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
