"""Registries: names given by registration only, checked metadata, parameter checks, temporary
registration and third-party plugins through entry points."""

from __future__ import annotations

import logging
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechprint.core.errors import ConfigError, SpeechPrintError
from speechprint.core.registry import (
    DuplicateNameError,
    RegistrationError,
    Registry,
    UnknownNameError,
)
from speechprint.features import FEATURES, Extractor, check_extractor_params, make_extractor
from speechprint.models import (
    MODELS,
    accepts,
    build_model,
    check_model_params,
    compatible,
    family,
    incompatibility,
    pools_sequences,
)

# --- names and cache keys ----------------------------------------------------------------------

# Cache keys on users' disks: these strings must never change for the same name, version, params.
PINNED = [
    ("mfcc_mean", {}, "mfcc_mean.v1", "696236cb9fb13b19"),
    ("mfcc_mean", {"n_mfcc": 20}, "mfcc_mean.v1", "ad2120100e55b4cb"),
    ("mfcc_seq", {}, "mfcc_seq.v1", "e4db155b53b29302"),
    ("mfcc_deltas", {}, "mfcc_deltas.v1", "d8cf03dea7aa09ad"),
    ("logmel", {}, "logmel.v1", "811b398003d76b05"),
    ("whisper_encoder", {}, "whisper_encoder.v1", "6b2f5d59f1336251"),
    ("whisper_encoder", {"frame_stride": 1}, "whisper_encoder.v1", "7204b85aba2763d7"),
]


@pytest.mark.parametrize(("name", "params", "expected_id", "expected_hash"), PINNED)
def test_ids_and_cache_keys_are_pinned(
    name: str, params: dict[str, Any], expected_id: str, expected_hash: str
) -> None:
    extractor = make_extractor(name, params)
    assert extractor.name == name
    assert extractor.id == expected_id
    assert extractor.config_hash() == expected_hash


def test_registration_names_the_class() -> None:
    for entry in FEATURES.entries():
        assert entry.obj.name == entry.name


@dataclass
class _Loud(Extractor):
    kind = "pooled"

    gain: float = 1.0

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return np.array([self.gain * float(np.abs(wave).mean())], dtype=np.float32)


def test_unregistered_extractor_has_no_cache_key() -> None:
    @dataclass
    class Child(_Loud):
        pass

    with FEATURES.temporary("test_loud", _Loud):
        assert _Loud().id == "test_loud.v1"
        # A subclass must not inherit its parent's name, hence its cache entries.
        with pytest.raises(RegistrationError, match="not registered"):
            _ = Child().id
    assert "test_loud" not in FEATURES


def test_a_class_body_name_that_disagrees_is_refused() -> None:
    @dataclass
    class Named(_Loud):
        name = "something_else"

    with pytest.raises(RegistrationError, match="declares name = 'something_else'"):
        FEATURES.register("test_named")(Named)
    assert "test_named" not in FEATURES


def test_one_class_cannot_take_two_names() -> None:
    @dataclass
    class Once(_Loud):
        pass

    with FEATURES.temporary("test_once", Once):
        with pytest.raises(RegistrationError, match="already registered as 'test_once'"):
            FEATURES.register("test_twice")(Once)


# --- checked metadata --------------------------------------------------------------------------


def _builder(input_dim: int, n_classes: int, width: int = 4) -> Any:
    import torch

    return torch.nn.Linear(input_dim, n_classes)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({}, "declare accepts="),
        ({"accepts": {"frames"}}, "non-empty subset"),
        ({"accepts": set()}, "non-empty subset"),
        ({"accepts": "pooled"}, "must be a set"),
        ({"accepts": {"pooled"}, "family": "jax"}, "family 'jax'"),
        ({"accepts": {"pooled"}, "acepts": {"pooled"}}, "unknown metadata"),
    ],
)
def test_model_metadata_is_checked_at_registration(meta: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistrationError, match=message) as error:
        MODELS.register("test_bad", **meta)(_builder)
    assert "model 'test_bad'" in str(error.value)
    assert "test_bad" not in MODELS


def test_model_builder_must_take_dims() -> None:
    with pytest.raises(RegistrationError, match="input_dim, n_classes"):
        MODELS.register("test_bad", accepts={"pooled"})(lambda: None)
    with pytest.raises(RegistrationError, match="callable"):
        MODELS.register("test_bad", accepts={"pooled"})(42)


def test_extractor_contract_is_checked_at_registration() -> None:
    @dataclass
    class Frames(_Loud):
        kind = "frames"  # type: ignore[assignment]

    class NotADataclass(_Loud):
        pass

    with pytest.raises(RegistrationError, match="extractor 'test_bad'.*kind 'frames'"):
        FEATURES.register("test_bad")(Frames)
    with pytest.raises(RegistrationError, match="@dataclass"):
        FEATURES.register("test_bad")(NotADataclass)
    with pytest.raises(RegistrationError, match="subclass of Extractor"):
        FEATURES.register("test_bad")(dict)
    with pytest.raises(RegistrationError, match="unknown metadata"):
        FEATURES.register("test_bad", extras="pretrained")(_Loud)
    assert "test_bad" not in FEATURES


def test_metadata_is_stored_typed_and_helpers_keep_working() -> None:
    assert accepts("mlp") == frozenset({"pooled"})
    assert MODELS.get("bilstm").meta == {"accepts": frozenset({"sequence"}), "family": "torch"}
    assert family("logreg") == "sklearn" and family("tdnn") == "torch"
    assert pools_sequences("mlp") and not pools_sequences("lstm")
    assert compatible("mlp", "sequence") and compatible("mlp", "pooled")
    assert not compatible("lstm", "pooled")
    assert incompatibility("lstm", "mfcc_mean", "pooled") == (
        "model 'lstm' needs sequence features; extractor 'mfcc_mean' is pooled"
    )
    assert incompatibility("mlp", "mfcc_seq", "sequence") is None
    model = build_model("mlp", 6, 3, {"hidden": 8, "layers": 1})
    assert model.head.out_features == 3


def test_duplicates_and_unknown_names_are_user_errors() -> None:
    with pytest.raises(DuplicateNameError, match="model 'mlp' is already registered") as error:
        MODELS.register("mlp", accepts={"pooled"})(_builder)
    assert isinstance(error.value, SpeechPrintError) and isinstance(error.value, ValueError)
    with pytest.raises(UnknownNameError) as unknown:
        MODELS.get("nope")
    assert isinstance(unknown.value, SpeechPrintError) and isinstance(unknown.value, KeyError)
    assert "unknown model 'nope'; valid names:" in str(unknown.value) and "mlp" in str(
        unknown.value
    )


# --- parameter checks --------------------------------------------------------------------------


def test_check_model_params_names_the_unknown_and_the_valid() -> None:
    check_model_params("mlp", {"hidden": 128, "dropout": 0.1})
    check_model_params("logreg", {"C": 1.0})
    with pytest.raises(ConfigError, match=r"hiden for model 'mlp'; did you mean hidden\?"):
        check_model_params("mlp", {"hiden": 128})
    with pytest.raises(ConfigError, match="valid: hidden, layers, dropout, pooling"):
        check_model_params("bilstm", {"bidirectional": True})  # fixed by the builder
    with pytest.raises(ConfigError, match=r"\(valid: C\)$"):
        check_model_params("linear_svm", {"gamma": 1.0})
    with pytest.raises(UnknownNameError):
        check_model_params("nope", {})


def test_check_model_params_accepts_anything_for_kwargs_builders() -> None:
    def build(input_dim: int, n_classes: int, **params: Any) -> Any:
        return None

    with MODELS.temporary("test_kwargs", build, accepts={"pooled"}):
        check_model_params("test_kwargs", {"whatever": 1})


def test_check_extractor_params() -> None:
    check_extractor_params("mfcc_mean", {"n_mfcc": 20})
    check_extractor_params("whisper_encoder", {"threads": 2})
    with pytest.raises(ConfigError, match="n_mffc for extractor 'mfcc_mean'; valid: sample_rate"):
        check_extractor_params("mfcc_mean", {"n_mffc": 20})


# --- temporary registration --------------------------------------------------------------------


def test_unregister_and_temporary() -> None:
    things: Registry[int] = Registry("thing")
    things.register("one")(1)
    with things.temporary("two", 2) as entry:
        assert entry.obj == 2 and things.names() == ["one", "two"]
    assert things.names() == ["one"]
    with pytest.raises(RuntimeError), things.temporary("two", 2):
        raise RuntimeError("cleanup still happens")
    assert "two" not in things
    with pytest.raises(DuplicateNameError):
        with things.temporary("one", 10):
            pass
    with things.temporary("one", 10, replace=True):
        assert things.get("one").obj == 10
    assert things.get("one").obj == 1
    assert things.unregister("one").obj == 1
    with pytest.raises(UnknownNameError):
        things.unregister("one")


def test_misbehaving_models_fixture(misbehaving_models: tuple[str, str]) -> None:
    import torch

    crash, nan = misbehaving_models
    assert (crash, nan) == ("test_crash", "test_nan")
    for name in misbehaving_models:
        assert compatible(name, "pooled") and compatible(name, "sequence")
        assert family(name) == "torch"
    with pytest.raises(RuntimeError, match="deliberate crash inside the model"):
        build_model(crash, 4, 2, {})(torch.zeros(3, 4))
    assert torch.isnan(build_model(nan, 4, 2, {"ignored": 1})(torch.zeros(3, 4))).all()


# --- plugins through entry points --------------------------------------------------------------

PLUGIN_MODEL = """
    import torch
    from speechprint.models import MODELS

    @MODELS.register("plugin_tiny", accepts={"pooled"}, family="torch")
    def build_tiny(input_dim: int, n_classes: int, width: int = 4) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(input_dim, width), torch.nn.Linear(width, n_classes))
"""
PLUGIN_FEATURE = """
    from dataclasses import dataclass
    import numpy as np
    from speechprint.features.base import FEATURES, Extractor

    @FEATURES.register("plugin_energy")
    @dataclass
    class Energy(Extractor):
        kind = "pooled"

        def transform(self, wave: np.ndarray) -> np.ndarray:
            return np.array([float(np.mean(wave ** 2))], dtype=np.float32)
"""
ENTRY_POINTS = """
    [speechprint.models]
    plugin_tiny = sp_plugin_demo.models
    plugin_broken = sp_plugin_broken

    [speechprint.features]
    plugin_energy = sp_plugin_demo.features
"""
PLUGIN_MODULES = (
    "sp_plugin_demo",
    "sp_plugin_demo.models",
    "sp_plugin_demo.features",
    "sp_plugin_broken",
)


def _write_plugin(site: Path) -> None:
    """A distribution as pip would install it: a package plus its ``*.dist-info``."""
    package = site / "sp_plugin_demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(PLUGIN_MODEL))
    (package / "features.py").write_text(textwrap.dedent(PLUGIN_FEATURE))
    (site / "sp_plugin_broken.py").write_text("raise RuntimeError('plugin bug at import')\n")
    info = site / "sp_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sp-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))


def test_plugins_load_lazily_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _write_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    # As in a fresh process: entry points not yet read (they are read on first lookup).
    monkeypatch.setattr(MODELS, "_plugins_loaded", False)
    monkeypatch.setattr(FEATURES, "_plugins_loaded", False)
    try:
        with caplog.at_level(logging.WARNING, logger="speechprint.core.registry"):
            assert "plugin_tiny" in MODELS.names()
        assert "plugin_broken" not in MODELS
        assert "plugin_broken" in caplog.text and "sp_plugin_broken" in caplog.text
        assert "plugin bug at import" in caplog.text
        import torch

        model = build_model("plugin_tiny", 5, 3, {"width": 2})
        assert model(torch.zeros(4, 5)).shape == (4, 3)
        check_model_params("plugin_tiny", {"width": 8})
        assert accepts("plugin_tiny") == frozenset({"pooled"})

        extractor = make_extractor("plugin_energy")
        assert extractor.id == "plugin_energy.v1"
        assert extractor.transform(np.ones(100, np.float32)).tolist() == [1.0]
    finally:
        for registry, name in ((MODELS, "plugin_tiny"), (FEATURES, "plugin_energy")):
            if registry.peek(name) is not None:
                registry.unregister(name)
        for module in PLUGIN_MODULES:
            sys.modules.pop(module, None)
    assert "plugin_tiny" not in MODELS and "plugin_energy" not in FEATURES
