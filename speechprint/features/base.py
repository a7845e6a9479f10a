"""The extractor contract: scikit-learn-like transformers over mono waveforms.

An extractor is a dataclass whose fields are its named parameters (no logic in ``__init__``).
``transform(wave)`` returns float32 ``(dim,)`` for ``kind == "pooled"`` or ``(frames, dim)`` for
``kind == "sequence"``. ``version`` changes whenever the output for the same parameters changes; it
is part of the cache key and of what is logged.

The name is given by registration alone (``@FEATURES.register("mfcc_mean")`` sets ``name`` on the
class), and registration checks the contract: a dataclass subclass of ``Extractor`` whose ``kind``
is pooled or sequence. A class that is not registered has no name, and so no cache key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.core.registry import KINDS, Kind, RegistrationError, Registry

# Metadata an extractor may declare at registration: which optional extra it needs.
EXTRACTOR_META = frozenset({"extra"})


@dataclass
class Extractor:
    name: ClassVar[str] = ""  # set by FEATURES.register, never declared by the class
    version: ClassVar[int] = 1
    kind: ClassVar[Kind] = "pooled"

    sample_rate: int = 16000

    def transform(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform_many(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """``transform`` of each wave; extractors that batch across files (Whisper) override it."""
        return [self.transform(wave) for wave in waves]

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def pack(self, vector: np.ndarray) -> np.ndarray:
        """What the cache stores for ``vector``: itself, or a smaller form ``unpack`` restores
        (a sparse profile keeps only what occurred). Not part of the key: ``unpack`` must also
        take the unpacked form, so entries written before an extractor packed stay valid."""
        return vector

    def unpack(self, stored: np.ndarray) -> np.ndarray:
        """``transform``'s output from what ``pack`` stored (``ValueError``: not a form it wrote,
        a cache miss). Returns ``stored`` itself when it is already whole."""
        return stored

    @property
    def id(self) -> str:
        """Name and version, e.g. ``mfcc_mean.v1``: what the cache and MLflow record."""
        # Only the class's own registered name: an unregistered subclass must not inherit its
        # parent's name and so share (and corrupt) the parent's cache entries.
        name = type(self).__dict__.get("name", "")
        if not name:
            raise RegistrationError(
                f"extractor class {type(self).__qualname__} is not registered, so it has no "
                "name or cache key; decorate it with @FEATURES.register(<name>)"
            )
        return f"{name}.v{self.version}"

    def config_hash(self) -> str:
        """Stable hash of id + parameters (part of every cache key)."""
        blob = json.dumps({"id": self.id, "params": self.params()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def output_dim(self) -> int | None:
        """Feature dimension when known without running (for `features list`)."""
        return None

    def layer_groups(self) -> int | None:
        """Equal-width, layer-major groups in each output vector or frame (an encoder's layers,
        for models that weight them: ``models/layered.py``); 1 for most, ``None`` when unknown."""
        return 1

    def n_frames(self, n_samples: int) -> int:
        """Frames ``transform`` returns for ``n_samples`` (sequence extractors; centred STFT)."""
        hop_length = getattr(self, "hop_length", None)
        if hop_length is None:
            raise NotImplementedError(f"{self.name} does not document its frame count")
        return 1 + n_samples // hop_length


# Classes named by registration (weak: a test's temporary class may be collected).
_NAMED: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def _check_extractor(name: str, cls: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Registration check: the contract above, then the registry names the class."""
    where = f"extractor {name!r} ({getattr(cls, '__qualname__', cls)})"
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise RegistrationError(f"{where}: must be a subclass of Extractor")
    if "__dataclass_fields__" not in cls.__dict__:
        raise RegistrationError(f"{where}: must be a @dataclass (put @FEATURES.register above it)")
    if cls.kind not in KINDS:
        raise RegistrationError(f"{where}: kind {cls.kind!r} is not one of {sorted(KINDS)}")
    if not isinstance(cls.version, int) or cls.version < 1:
        raise RegistrationError(f"{where}: version must be an int >= 1, got {cls.version!r}")
    unknown = sorted(set(meta) - EXTRACTOR_META)
    if unknown:
        raise RegistrationError(
            f"{where}: unknown metadata {unknown}; valid: {sorted(EXTRACTOR_META)}"
        )
    declared = cls.__dict__.get("name", "")
    if declared and declared != name:
        if _NAMED.get(cls) != declared:
            raise RegistrationError(
                f"{where}: its class declares name = {declared!r}; drop that line "
                "(registration names the class)"
            )
        entry = FEATURES.peek(declared)
        if entry is not None and entry.obj is cls:
            raise RegistrationError(f"{where}: this class is already registered as {declared!r}")
    cls.name = name
    _NAMED[cls] = name
    return meta


FEATURES: Registry[type[Extractor]] = Registry(
    "feature extractor", entry_points="speechprint.features", validate=_check_extractor
)


def extractor_param_names(name: str) -> list[str]:
    """The parameters extractor ``name`` takes: its dataclass fields."""
    return [f.name for f in dataclasses.fields(FEATURES.get(name).obj) if f.init]


def check_extractor_params(name: str, params: dict[str, Any]) -> None:
    """``ConfigError`` naming each unknown parameter of extractor ``name`` and the valid ones."""
    valid = extractor_param_names(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for extractor {name!r}; "
            f"valid: {', '.join(valid)}"
        )


def make_extractor(name: str, params: dict[str, Any] | None = None) -> Extractor:
    """Build a registered extractor; unknown parameter names are a clear error."""
    params = dict(params or {})
    check_extractor_params(name, params)
    return FEATURES.get(name).obj(**params)


def pool_statistics(sequence: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time: ``(frames, dim) -> (2 * dim,)``.

    How pooled models (MLP, linear probes) consume sequence extractors.

    >>> pool_statistics(np.ones((5, 3), dtype=np.float32)).shape
    (6,)
    """
    sequence = np.asarray(sequence, dtype=np.float32)
    if sequence.ndim == 1:
        return sequence
    return np.concatenate([sequence.mean(axis=0), sequence.std(axis=0)]).astype(np.float32)
