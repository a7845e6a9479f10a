"""The model registry: builders by name, with the kinds of features each accepts and its space.

An entry's object is a builder ``build(input_dim, n_classes, **params)`` returning a torch module
(``forward(x, lengths) -> logits``; ``x`` is ``(B, T, D)`` for sequences, ``(B, D)`` for pooled
vectors with ``lengths=None``) or, for ``family="sklearn"``, an estimator with ``predict_proba``.
``space(trial)`` samples parameters named ``<model>.<param>`` and returns the builder's kwargs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from speechprint.registry import Registry

MODELS: Registry[Callable[..., Any]] = Registry("model")


def family(name: str) -> str:
    return MODELS.get(name).meta.get("family", "torch")


def pools_sequences(name: str) -> bool:
    """Whether the model takes vectors, so sequence features reach it as mean+std statistics."""
    return "pooled" in MODELS.get(name).meta.get("accepts", set())


def compatible(name: str, kind: str) -> bool:
    """Can model ``name`` consume features of ``kind`` ("pooled" or "sequence")?

    Pooled models also take sequences (pooled with mean+std statistics); sequence models cannot
    take a single vector per recording.
    """
    accepts = MODELS.get(name).meta.get("accepts", set())
    return kind in accepts or (kind == "sequence" and "pooled" in accepts)


def incompatibility(name: str, extractor: str, kind: str) -> str | None:
    """Why a pair cannot be trained, or None."""
    if compatible(name, kind):
        return None
    accepts = sorted(MODELS.get(name).meta.get("accepts", set()))
    return f"model {name!r} needs {'/'.join(accepts)} features; extractor {extractor!r} is {kind}"


def build_model(name: str, input_dim: int, n_classes: int, params: dict[str, Any]) -> Any:
    return MODELS.get(name).obj(input_dim, n_classes, **params)
