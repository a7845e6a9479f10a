"""The extractor contract: scikit-learn-like transformers over mono waveforms.

An extractor is a dataclass whose fields are its named parameters (no logic in ``__init__``).
``transform(wave)`` returns float32 ``(dim,)`` for ``kind == "pooled"`` or ``(frames, dim)`` for
``kind == "sequence"``. ``version`` changes whenever the output for the same parameters changes; it
is part of the cache key and of what is logged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from speechprint.registry import Registry

Kind = Literal["pooled", "sequence"]


@dataclass
class Extractor:
    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    kind: ClassVar[Kind] = "pooled"

    sample_rate: int = 16000

    def transform(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def id(self) -> str:
        """Name and version, e.g. ``mfcc_mean.v1``: what the cache and MLflow record."""
        return f"{self.name}.v{self.version}"

    def config_hash(self) -> str:
        """Stable hash of id + parameters (part of every cache key)."""
        blob = json.dumps({"id": self.id, "params": self.params()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def output_dim(self) -> int | None:
        """Feature dimension when known without running (for `features list`)."""
        return None

    def n_frames(self, n_samples: int) -> int:
        """Frames ``transform`` returns for ``n_samples`` (sequence extractors; centred STFT)."""
        hop_length = getattr(self, "hop_length", None)
        if hop_length is None:
            raise NotImplementedError(f"{self.name} does not document its frame count")
        return 1 + n_samples // hop_length


FEATURES: Registry[type[Extractor]] = Registry("feature extractor")


def make_extractor(name: str, params: dict[str, Any] | None = None) -> Extractor:
    """Build a registered extractor; unknown parameter names are a clear error."""
    cls = FEATURES.get(name).obj
    params = dict(params or {})
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for extractor {name!r}; valid: {sorted(valid)}"
        )
    return cls(**params)


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
