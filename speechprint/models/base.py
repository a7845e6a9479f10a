"""The model registry: builders by name, with the kinds of features each accepts and its space.

An entry's object is a builder ``build(input_dim, n_classes, **params)`` returning a torch module
(``forward(x, lengths) -> logits``; ``x`` is ``(B, T, D)`` for sequences, ``(B, D)`` for pooled
vectors with ``lengths=None``) or, for ``family="sklearn"``, an estimator with ``predict_proba``.
``space(trial)`` samples parameters named ``<model>.<param>`` and returns the builder's kwargs.

Registration checks the metadata (``accepts`` is required, a non-empty set of feature kinds;
``family`` defaults to torch) and stores it normalised: ``accepts`` a frozenset, ``family`` a str.
The builder's signature is the list of parameters a study may set (``check_model_params``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from speechprint.core.errors import ConfigError, did_you_mean
from speechprint.core.registry import KINDS, Kind, RegistrationError, Registry

Family = Literal["torch", "sklearn"]
FAMILIES: frozenset[str] = frozenset({"torch", "sklearn"})
MODEL_META = frozenset({"accepts", "family"})
F = TypeVar("F", bound=Callable[..., Any])


def _check_model(name: str, builder: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Registration check: a callable builder and well-formed ``accepts`` and ``family``."""
    where = f"model {name!r}"
    unknown = sorted(set(meta) - MODEL_META)
    if unknown:
        raise RegistrationError(f"{where}: unknown metadata {unknown}; valid: {sorted(MODEL_META)}")
    if not callable(builder):
        raise RegistrationError(f"{where}: the builder must be callable, got {builder!r}")
    try:
        inspect.signature(builder).bind_partial(0, 0)
    except TypeError:
        raise RegistrationError(
            f"{where}: the builder must take (input_dim, n_classes, ...)"
        ) from None
    except ValueError:
        pass  # a builtin without an introspectable signature: trust it
    if "accepts" not in meta:
        raise RegistrationError(f"{where}: declare accepts= (a set of {sorted(KINDS)})")
    accepts = meta["accepts"]
    if isinstance(accepts, str) or not isinstance(accepts, Iterable):
        raise RegistrationError(f"{where}: accepts must be a set of kinds, got {accepts!r}")
    accepts = frozenset(accepts)
    if not accepts or not accepts <= KINDS:
        raise RegistrationError(
            f"{where}: accepts {sorted(accepts)} must be a non-empty subset of {sorted(KINDS)}"
        )
    family = meta.get("family", "torch")
    if family not in FAMILIES:
        raise RegistrationError(f"{where}: family {family!r} is not one of {sorted(FAMILIES)}")
    return {"accepts": accepts, "family": family}


MODELS: Registry[Callable[..., Any]] = Registry(
    "model", entry_points="speechprint.models", validate=_check_model
)


def accepts(name: str) -> frozenset[Kind]:
    """The feature kinds model ``name`` declared it takes."""
    return MODELS.get(name).meta["accepts"]


def family(name: str) -> Family:
    return MODELS.get(name).meta["family"]


def pools_sequences(name: str) -> bool:
    """Whether the model takes vectors, so sequence features reach it as mean+std statistics."""
    return "pooled" in accepts(name)


def compatible(name: str, kind: str) -> bool:
    """Can model ``name`` consume features of ``kind`` ("pooled" or "sequence")?

    Pooled models also take sequences (pooled with mean+std statistics); sequence models cannot
    take a single vector per recording.
    """
    kinds = accepts(name)
    return kind in kinds or (kind == "sequence" and "pooled" in kinds)


def incompatibility(
    name: str, extractor: str, kind: str, layer_groups: int | None = 1
) -> str | None:
    """Why a pair cannot be trained, or None (``layer_groups``: ``Extractor.layer_groups()``)."""
    if not compatible(name, kind):
        kinds = sorted(accepts(name))
        return f"model {name!r} needs {'/'.join(kinds)} features; extractor {extractor!r} is {kind}"
    if (
        kind == "sequence"
        and pools_sequences(name)
        and takes_layer_groups(name)
        and (layer_groups is None or layer_groups > 1)
    ):
        # Mean + std statistics of grouped frames are statistic-major: they cannot be split.
        return (
            f"model {name!r} splits pooled statistics into the extractor's groups (layers), "
            f"and extractor {extractor!r} gives every layer of each frame, whose statistics "
            "cannot be split so: use whisper_layers with layer: all (per-layer statistics), "
            "or give these frames to a sequence model"
        )
    return None


def takes_layer_groups(name: str) -> bool:
    """Whether model ``name`` splits its input into the extractor's groups (takes
    ``layer_groups``: an encoder's layers, or ``whisper_words``' words)."""
    names = model_param_names(name)
    return names is not None and "layer_groups" in names


def build_model(name: str, input_dim: int, n_classes: int, params: dict[str, Any]) -> Any:
    return MODELS.get(name).obj(input_dim, n_classes, **params)


def model_param_names(name: str) -> list[str] | None:
    """The parameters model ``name``'s builder takes after ``(input_dim, n_classes)``.

    None when it takes ``**kwargs`` (anything goes).
    """
    parameters = list(inspect.signature(MODELS.get(name).obj).parameters.values())[2:]
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_model_params(name: str, params: dict[str, Any]) -> None:
    """``ConfigError`` naming each parameter model ``name``'s builder does not take."""
    valid = model_param_names(name)
    if valid is None:
        return
    unknown = sorted(set(params) - set(valid))
    if not unknown:
        return
    raise ConfigError(
        f"unknown parameter(s) {', '.join(unknown)} for model {name!r}"
        f"{did_you_mean(unknown[0], valid)} (valid: {', '.join(valid) or '(none)'})"
    )


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


def with_layer_groups(name: str, params: dict[str, Any], groups: int | None) -> dict[str, Any]:
    """``params`` with ``layer_groups`` filled from the extractor, for models that weight layers."""
    if not takes_layer_groups(name) or "layer_groups" in params:
        return params
    if groups is None:
        raise ConfigError(
            f"model {name!r}: the extractor does not say how many layers it stacks; "
            "set the model's layer_groups"
        )
    return {**params, "layer_groups": groups}
