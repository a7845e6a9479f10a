"""``whisper_layers``: mean + std statistics of every Whisper encoder layer, in one pass.

Layer-wise probing needs every layer of every recording; full frame sequences of seven layers of
Whisper base would be ~10 GB for saa8k, their pooled statistics are 28 KB a recording. One encoder
pass (PyTorch, float32) gives all layers; ``layer: all`` caches them side by side, and
``layer: N`` keeps one layer's statistics (a pooled feature for studies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.cache import FeatureCache
from speechprint.features.derived import ExtractPart, Outcome, derived_outcomes
from speechprint.features.pretrained import weights
from speechprint.features.pretrained.common import WHISPER_SR, average_pool
from speechprint.features.pretrained.encoder import encode_layers
from speechprint.features.pretrained.whisper import DIMS, check_layer, encode_many, parse_layer


def layer_statistics(frames: np.ndarray) -> np.ndarray:
    """``(frames, layers, d)`` -> ``(layers, 2 * d)``: each layer's mean then std over time."""
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)], axis=1).astype(np.float32)


def split_layers(vector: np.ndarray, n_layers: int) -> np.ndarray:
    """A ``layer: all`` vector (or a matrix of them) -> ``(..., n_layers + 1, 2 * d)``."""
    return vector.reshape(*vector.shape[:-1], n_layers + 1, -1)


@FEATURES.register("whisper_layers", extra="pretrained")
@dataclass
class WhisperLayers(Extractor):
    """Per-layer mean + std of Whisper encoder frames, float32.

    ``layer: all`` gives ``((n_layers + 1) * 2 * d_model,)``, layer-major: layer 0 (after the
    convolutions) first, the final layer (after the last layer norm) last; ``split_layers``
    reshapes it. ``layer: N`` or ``final`` gives that layer's ``(2 * d_model,)``. Statistics are
    over frames average-pooled by ``frame_stride``, as pooled models see ``whisper_encoder``.
    """

    version = 1
    kind = "pooled"

    sample_rate: int = WHISPER_SR
    model: str = "tiny.en"
    layer: int | str = "all"
    frame_stride: int = 2
    threads: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"whisper_layers needs sample_rate={WHISPER_SR} (Whisper's rate)")
        if self.frame_stride < 1:
            raise ConfigError("frame_stride must be >= 1")
        if self.layer != "all":
            self.layer = parse_layer(self.layer, "whisper_layers")

    def params(self) -> dict[str, Any]:
        params = super().params()
        params.pop("threads")
        return params

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return self.transform_many([wave])[0]

    def transform_many(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        model_dir = weights.resolve_model_dir(self.model)
        out = []
        for frames in encode_many(waves, lambda mels: encode_layers(model_dir, mels)):
            stats = layer_statistics(average_pool(frames, self.frame_stride))
            if self.layer != "all":
                stats = stats[check_layer(self.layer, len(stats) - 1, "whisper_layers")]
            out.append(stats.reshape(-1))
        return out

    def compose_files(
        self, misses: Sequence[tuple[str, str]], cache: FeatureCache, extract_part: ExtractPart
    ) -> list[Outcome] | None:
        """Over files, ``layer: N`` is sliced from the ``layer: all`` entries: one encoder pass
        gives every layer, so a study naming a layer reuses a probe's or another study's pass.
        ``None`` (compute from audio) for a converted model whose layer count is unknown."""
        blocks = self.n_layers()
        if self.layer == "all" or blocks is None:
            return None
        index = check_layer(self.layer, blocks, "whisper_layers")
        every = extract_part([path for path, _ in misses], replace(self, layer="all"))
        pick = lambda arrays: split_layers(arrays[0], blocks)[index]  # noqa: E731
        return derived_outcomes(misses, cache, [every], pick)

    def n_layers(self) -> int | None:
        """Encoder blocks of a named model (its outputs are ``n_layers + 1``), else ``None``."""
        return DIMS[self.model][1] if self.model in DIMS else None

    def layer_groups(self) -> int | None:
        if self.layer != "all":
            return 1
        blocks = self.n_layers()
        return None if blocks is None else blocks + 1

    def output_dim(self) -> int | None:
        if self.model not in DIMS:
            return None
        dim, blocks = DIMS[self.model]
        return 2 * dim * (blocks + 1 if self.layer == "all" else 1)
