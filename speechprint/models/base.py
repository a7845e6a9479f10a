"""Building models: the registry and its checks live in ``speechprint.catalogue.models``.

A model's declaration (name, kinds, family, parameters, space) is there, light, so study and
experiment files are checked without torch or scikit-learn; each module of this package
implements declared models (``@implements(name)``) with a builder
``build(input_dim, n_classes, **params)``, and ``build_model`` calls it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from speechprint.catalogue.models import (
    FAMILIES,
    MODEL_META,
    MODELS,
    Family,
    accepts,
    check_model_params,
    compatible,
    family,
    implements,
    incompatibility,
    model_param_names,
    pools_sequences,
    takes_layer_groups,
    with_layer_groups,
)

__all__ = [
    "FAMILIES",
    "MODELS",
    "MODEL_META",
    "Family",
    "accepts",
    "build_model",
    "check_model_params",
    "compatible",
    "family",
    "implements",
    "incompatibility",
    "model_param_names",
    "params_like",
    "pools_sequences",
    "takes_layer_groups",
    "with_layer_groups",
]

F = TypeVar("F", bound=Callable[..., Any])


def build_model(name: str, input_dim: int, n_classes: int, params: dict[str, Any]) -> Any:
    return MODELS.get(name).obj(input_dim, n_classes, **params)


def params_like(target: Callable[..., Any], *, drop: Iterable[str] = ()) -> Callable[[F], F]:
    """Give a forwarding builder ``(input_dim, n_classes, **params)`` the parameter list of
    ``target`` (the module it builds, less ``drop``), so ``check_model_params`` can name typos
    while the defaults stay in one place: the module."""
    dropped = set(drop)

    def decorate(builder: F) -> F:
        signature = inspect.signature(target)
        kept = [p for p in signature.parameters.values() if p.name not in dropped]
        builder.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
        return builder

    return decorate
