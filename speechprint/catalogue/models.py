"""The model registry and every built-in model's declaration: names, kinds, parameters, spaces.

An entry's object is a builder ``build(input_dim, n_classes, **params)`` returning a torch module
(``forward(x, lengths) -> logits``; ``x`` is ``(B, T, D)`` for sequences, ``(B, D)`` for pooled
vectors with ``lengths=None``) or, for ``family="sklearn"``, an estimator with ``predict_proba``.
``space(trial)`` samples parameters named ``<model>.<param>`` and returns the builder's kwargs.

Registration checks the metadata (``accepts`` is required, a non-empty set of feature kinds;
``family`` defaults to torch) and stores it normalised: ``accepts`` a frozenset, ``family`` a str.
The builder's signature is the list of parameters a study may set (``check_model_params``).

The built-in models are *declared* here (``declare``: everything above but the builder, which
would import torch or scikit-learn) and *implemented* in ``speechprint.models`` (``implements``:
the builder joins its declaration, and must take exactly the declared parameters, so the two
cannot drift apart). A plugin's ``MODELS.register`` does both at once. Only building a model needs
``speechprint.models``; every check of a study or experiment file is answered from here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from speechprint.core.errors import ConfigError, did_you_mean
from speechprint.core.registry import KINDS, Kind, RegistrationError, Registry, SearchSpace

Family = Literal["torch", "sklearn"]
FAMILIES: frozenset[str] = frozenset({"torch", "sklearn"})
MODEL_META = frozenset({"accepts", "family"})
F = TypeVar("F", bound=Callable[..., Any])


class Declared:
    """The builder of a declared model until ``speechprint.models`` implements it.

    ``params`` are the parameters the builder will take after ``(input_dim, n_classes)`` (None:
    any, ``**kwargs``). Calling it says what is missing rather than building nothing.
    """

    def __init__(self, name: str, params: tuple[str, ...] | None) -> None:
        self.name, self.params = name, params

    def __call__(self, input_dim: int, n_classes: int, **params: Any) -> Any:
        raise RegistrationError(
            f"model {self.name!r} is declared but not implemented: import speechprint.models "
            "(it implements every built-in model) before building one"
        )

    def __repr__(self) -> str:
        return f"Declared({self.name!r}, params={self.params!r})"


# Names being implemented (``implements``): the one way a builder of ours joins the registry.
_IMPLEMENTING: set[str] = set()


def _check_model(name: str, builder: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Registration check: a callable builder and well-formed ``accepts`` and ``family``."""
    where = f"model {name!r}"
    module = getattr(builder, "__module__", None) or ""
    if module.startswith("speechprint.") and not isinstance(builder, Declared):
        if name not in _IMPLEMENTING:
            # Registered in the package without a declaration: a study file naming it would be
            # refused, since checks read only the declarations (speechprint.models unimported).
            raise RegistrationError(
                f"{where} ({module}): declare it in speechprint.catalogue.models and give it "
                f"its builder with @implements({name!r})"
            )
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


def declare(
    name: str,
    *,
    accepts: Iterable[Kind],
    family: Family,
    params: Iterable[str] | None,
    space: SearchSpace | None = None,
) -> None:
    """Register model ``name`` by its declaration; ``implements(name)`` gives it its builder."""
    declared = None if params is None else tuple(params)
    MODELS.register(name, space=space, accepts=accepts, family=family)(Declared(name, declared))


def implements(name: str) -> Callable[[F], F]:
    """The builder of declared model ``name``: it must take exactly the declared parameters.

    >>> declare("demo_probe", accepts={"pooled"}, family="sklearn", params=["C"])
    >>> @implements("demo_probe")
    ... def build(input_dim: int, n_classes: int, C: float = 1.0) -> str:  # noqa: N803
    ...     return f"probe C={C}"
    >>> MODELS.get("demo_probe").obj(3, 2, C=0.5)
    'probe C=0.5'
    >>> _ = MODELS.unregister("demo_probe")
    """

    def decorate(builder: F) -> F:
        entry = MODELS.peek(name)
        if entry is None or not isinstance(entry.obj, Declared):
            state = "not declared" if entry is None else "already implemented"
            raise RegistrationError(
                f"model {name!r} is {state}: declare it in speechprint.catalogue.models "
                "(or register a plugin with MODELS.register)"
            )
        declared, found = entry.obj.params, _builder_params(builder)
        if declared != found:
            raise RegistrationError(
                f"model {name!r}: the builder takes {_listed(found)} but its declaration "
                f"(speechprint.catalogue.models) says {_listed(declared)}: make them agree"
            )
        MODELS.unregister(name)
        _IMPLEMENTING.add(name)
        try:
            MODELS.register(name, space=entry.space, **entry.meta)(builder)
        except BaseException:
            MODELS.register(name, space=entry.space, **entry.meta)(entry.obj)  # declared again
            raise
        finally:
            _IMPLEMENTING.discard(name)
        return builder

    return decorate


def _builder_params(builder: Callable[..., Any]) -> tuple[str, ...] | None:
    """The parameters a builder takes after ``(input_dim, n_classes)``; None for ``**kwargs``."""
    if isinstance(builder, Declared):
        return builder.params
    parameters = list(inspect.signature(builder).parameters.values())[2:]
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _listed(params: tuple[str, ...] | None) -> str:
    return "any parameters (**kwargs)" if params is None else f"({', '.join(params)})"


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


def model_param_names(name: str) -> list[str] | None:
    """The parameters model ``name``'s builder takes after ``(input_dim, n_classes)``.

    None when it takes ``**kwargs`` (anything goes).
    """
    params = _builder_params(MODELS.get(name).obj)
    return None if params is None else list(params)


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


# -- the built-in models: declared here, implemented in speechprint.models --------------------
# Each space samples ``<model>.<param>`` and returns the builder's keyword arguments.


def mlp_space(trial: Any) -> dict[str, Any]:
    return {
        "hidden": trial.suggest_categorical("mlp.hidden", [128, 256, 512]),
        "layers": trial.suggest_int("mlp.layers", 1, 3),
        "dropout": trial.suggest_float("mlp.dropout", 0.0, 0.5),
    }


def logreg_space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("logreg.C", 1e-3, 10.0, log=True)}


def svm_space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("linear_svm.C", 1e-4, 1.0, log=True)}


def lda_space(trial: Any) -> dict[str, Any]:
    return {"shrinkage": trial.suggest_float("lda.shrinkage", 0.05, 0.95)}


def word_probe_space(trial: Any) -> dict[str, Any]:
    return {
        "components": trial.suggest_categorical("word_probe.components", [16, 32, 64]),
        "C": trial.suggest_float("word_probe.C", 1e-3, 0.1, log=True),
    }


def wccn_space(trial: Any) -> dict[str, Any]:
    return {
        "components": trial.suggest_categorical("wccn.components", [64, 128, 256]),
        "shrinkage": trial.suggest_float("wccn.shrinkage", 0.01, 0.5, log=True),
        "C": trial.suggest_float("wccn.C", 0.01, 10.0, log=True),
    }


def tdnn_space(trial: Any) -> dict[str, Any]:
    return {
        "channels": trial.suggest_categorical("tdnn.channels", [128, 256]),
        "embedding": trial.suggest_categorical("tdnn.embedding", [64, 128]),
        "dropout": trial.suggest_float("tdnn.dropout", 0.0, 0.4),
    }


def attn_pool_space(trial: Any) -> dict[str, Any]:
    return {
        "projection": trial.suggest_categorical("attn_pool.projection", [128, 256]),
        "hidden": trial.suggest_categorical("attn_pool.hidden", [128, 256]),
        "dropout": trial.suggest_float("attn_pool.dropout", 0.1, 0.5),
    }


POOLINGS = ("last", "mean", "attentive")  # how the recurrent models pool their outputs


def recurrent_space(prefix: str, conv: bool = False) -> SearchSpace:
    def space(trial: Any) -> dict[str, Any]:
        params = {
            "hidden": trial.suggest_categorical(f"{prefix}.hidden", [64, 128]),
            "layers": trial.suggest_int(f"{prefix}.layers", 1, 2),
            "dropout": trial.suggest_float(f"{prefix}.dropout", 0.0, 0.4),
            "pooling": trial.suggest_categorical(f"{prefix}.pooling", list(POOLINGS)),
        }
        if conv:
            params["conv_channels"] = trial.suggest_categorical(
                f"{prefix}.conv_channels", [64, 128]
            )
        return params

    return space


def layer_weighted_space(trial: Any) -> dict[str, Any]:
    return {
        "hidden": trial.suggest_categorical("layer_weighted.hidden", [128, 256, 512]),
        "layers": trial.suggest_int("layer_weighted.layers", 1, 2),
        "dropout": trial.suggest_float("layer_weighted.dropout", 0.0, 0.5),
    }


def weighted_attn_pool_space(trial: Any) -> dict[str, Any]:
    return {
        "projection": trial.suggest_categorical("weighted_attn_pool.projection", [128, 256]),
        "hidden": trial.suggest_categorical("weighted_attn_pool.hidden", [128, 256]),
        "dropout": trial.suggest_float("weighted_attn_pool.dropout", 0.1, 0.5),
    }


def word_attn_space(trial: Any) -> dict[str, Any]:
    return {
        "projection": trial.suggest_categorical("word_attn.projection", [64, 128]),
        "layers": trial.suggest_int("word_attn.layers", 0, 2),
        "dropout": trial.suggest_float("word_attn.dropout", 0.1, 0.5),
    }


def whisper_top_space(trial: Any) -> dict[str, Any]:
    return {
        "rank": trial.suggest_categorical("whisper_top.rank", [4, 8, 16]),
        "dropout": trial.suggest_float("whisper_top.dropout", 0.1, 0.5),
    }


RECURRENT = ("hidden", "layers", "dropout", "pooling", "conv_channels", "subsample")

# models/mlp.py, linear.py, backend.py, tdnn.py, recurrent.py, layered.py, words.py, finetune.py
declare(
    "mlp",
    accepts={"pooled"},
    family="torch",
    params=("hidden", "layers", "dropout"),
    space=mlp_space,
)
declare("logreg", accepts={"pooled"}, family="sklearn", params=("C",), space=logreg_space)
declare("linear_svm", accepts={"pooled"}, family="sklearn", params=("C",), space=svm_space)
declare("lda", accepts={"pooled"}, family="sklearn", params=("shrinkage",), space=lda_space)
declare(
    "word_probe",
    accepts={"pooled"},
    family="sklearn",
    params=("layer_groups", "components", "C"),
    space=word_probe_space,
)
declare(
    "wccn",
    accepts={"pooled"},
    family="sklearn",
    params=("components", "shrinkage", "C"),
    space=wccn_space,
)
declare(
    "tdnn",
    accepts={"sequence"},
    family="torch",
    params=("channels", "embedding", "dropout"),
    space=tdnn_space,
)
declare(
    "attn_pool",
    accepts={"sequence"},
    family="torch",
    params=("projection", "hidden", "dropout"),
    space=attn_pool_space,
)
declare(
    "lstm", accepts={"sequence"}, family="torch", params=RECURRENT, space=recurrent_space("lstm")
)
declare(
    "bilstm",
    accepts={"sequence"},
    family="torch",
    params=RECURRENT,
    space=recurrent_space("bilstm"),
)
declare(
    "cnn_lstm",
    accepts={"sequence"},
    family="torch",
    params=RECURRENT,
    space=recurrent_space("cnn_lstm", conv=True),
)
declare(
    "layer_weighted",
    accepts={"pooled"},
    family="torch",
    params=("layer_groups", "hidden", "layers", "dropout"),
    space=layer_weighted_space,
)
declare(
    "weighted_attn_pool",
    accepts={"sequence"},
    family="torch",
    params=("layer_groups", "projection", "hidden", "dropout"),
    space=weighted_attn_pool_space,
)
declare(
    "word_attn",
    accepts={"pooled"},
    family="torch",
    params=("layer_groups", "projection", "heads", "layers", "dropout"),
    space=word_attn_space,
)
declare(
    "whisper_top",
    accepts={"sequence"},
    family="torch",
    params=("model", "from_layer", "adapter", "rank", "attention", "dropout"),
    space=whisper_top_space,
)
