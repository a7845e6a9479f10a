"""The encoder's top trained: Whisper's last block(s) over cached frames of the layer below.

Published accent-ID systems gain most from fine-tuning the encoder's top layers; running the whole
encoder per step costs minutes an epoch on 2 cores. Here the frames of the layer below the trained
blocks are cached once (``whisper_encoder`` with ``layer: N``), so a step runs only the top
block(s) on short random crops (``train.max_frames``) with the trainer's SpecAugment masks. The
blocks start from Whisper's weights (``model``: ``base`` or ``tiny.en``) and train either through a
low-rank adapter on every linear map (``adapter: lora``, LoRA; the weights stay frozen), in full
(``full``), or not at all (``frozen``: the same model, only the pooling head trained, for a paired
comparison). ``model: ""`` gives one freshly initialised block of the input's width instead (no
weights needed). Attention sees only the crop, not Whisper's 30 s window.

The run standardises frames per dimension; a block trained from Whisper's weights needs the raw
activations, so the run hands the model its standardisation (``set_input_normalisation``) and the
model undoes it first (saved with the weights, so a loaded classifier does the same).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from speechprint.core.errors import ConfigError
from speechprint.features.pretrained.encoder import read_encoder_weights
from speechprint.features.pretrained.weights import resolve_model_dir
from speechprint.models.base import implements, params_like
from speechprint.models.pooling import AttentiveStatsPooling, frame_mask

Adapter = Literal["lora", "full", "frozen"]


class AdaptedLinear(nn.Module):
    """A linear map plus an optional low-rank update ``B A`` (``B`` starts at zero, so training
    starts from the pretrained map; Hu et al. 2021)."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base
        self.rank = rank
        if rank:
            self.down = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(rank))
            self.up = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        return out + (x @ self.down.T) @ self.up.T if self.rank else out


def _linear(
    weights: dict[str, np.ndarray] | None, prefix: str, shape: tuple[int, int]
) -> nn.Linear:
    module = nn.Linear(shape[1], shape[0])
    if weights is not None:
        module.weight.data = torch.from_numpy(np.array(weights[f"{prefix}/weight"], np.float32))
        module.bias.data = torch.from_numpy(np.array(weights[f"{prefix}/bias"], np.float32))
    return module


def _norm(weights: dict[str, np.ndarray] | None, prefix: str, dim: int) -> nn.LayerNorm:
    norm = nn.LayerNorm(dim, eps=1e-5)
    if weights is not None:
        norm.weight.data = torch.from_numpy(np.array(weights[f"{prefix}/gamma"], np.float32))
        norm.bias.data = torch.from_numpy(np.array(weights[f"{prefix}/beta"], np.float32))
    return norm


class MaskedBlock(nn.Module):
    """Whisper's pre-LN encoder block (as ``features/pretrained/torch_encoder.py``), with a
    padding mask, filled from ``weights[prefix/...]`` or freshly initialised (``weights=None``)."""

    def __init__(
        self, dim: int, heads: int, weights: dict[str, np.ndarray] | None, prefix: str, rank: int
    ) -> None:
        super().__init__()
        self.heads = heads
        attention, ffn = f"{prefix}/self_attention", f"{prefix}/ffn"
        self.attn_norm = _norm(weights, f"{attention}/layer_norm", dim)
        self.qkv = AdaptedLinear(_linear(weights, f"{attention}/linear_0", (3 * dim, dim)), rank)
        self.out = AdaptedLinear(_linear(weights, f"{attention}/linear_1", (dim, dim)), rank)
        self.ffn_norm = _norm(weights, f"{ffn}/layer_norm", dim)
        self.ffn_in = AdaptedLinear(_linear(weights, f"{ffn}/linear_0", (4 * dim, dim)), rank)
        self.ffn_out = AdaptedLinear(_linear(weights, f"{ffn}/linear_1", (dim, 4 * dim)), rank)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = (z.transpose(1, 2) for z in qkv.unbind(2))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperTopClassifier(nn.Module):
    """Frames of Whisper layer ``from_layer`` -> its remaining blocks and final norm (adapted) ->
    attentive statistics pooling -> a linear head."""

    input_mean: torch.Tensor  # buffers: the run's input standardisation
    input_std: torch.Tensor

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        model: str = "",
        from_layer: int = 5,
        adapter: Adapter = "lora",
        rank: int = 8,
        attention: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if adapter not in ("lora", "full", "frozen"):
            raise ConfigError(f"whisper_top: adapter must be lora, full or frozen, got {adapter!r}")
        weights = _whisper_weights(model, input_dim) if model else None
        heads = _heads(weights, input_dim)
        names = _block_names(weights, from_layer) if weights is not None else ["fresh"]
        lora_rank = rank if adapter == "lora" else 0
        self.blocks = nn.ModuleList(
            MaskedBlock(input_dim, heads, weights, name, lora_rank) for name in names
        )
        self.norm = _norm(weights, "layer_norm", input_dim)
        self._freeze(adapter, pretrained=weights is not None)
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))
        self.pool = AttentiveStatsPooling(input_dim, attention)
        # Normalised pooled statistics: Whisper's final norm leaves a few dimensions hundreds of
        # times larger than the rest, and a head on them barely moves in the steps it gets.
        self.head = nn.Sequential(
            nn.LayerNorm(2 * input_dim), nn.Dropout(dropout), nn.Linear(2 * input_dim, n_classes)
        )

    def _freeze(self, adapter: Adapter, *, pretrained: bool) -> None:
        """LoRA and frozen keep the pretrained weights; only adapters (and the head) learn."""
        if adapter == "full" or not pretrained:
            return
        for name, parameter in [*self.blocks.named_parameters(), *self.norm.named_parameters()]:
            parameter.requires_grad = adapter == "lora" and name.rsplit(".", 1)[-1] in (
                "down",
                "up",
            )

    def set_input_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        """The run's per-dimension standardisation, undone before the blocks."""
        self.input_mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.input_std.copy_(torch.as_tensor(np.asarray(std, np.float32)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        mask = frame_mask(lengths, x.shape[1])
        hidden = x * self.input_std + self.input_mean
        for block in self.blocks:
            hidden = block(hidden, mask)
        return self.head(self.pool(self.norm(hidden), lengths))


def _whisper_weights(model: str, input_dim: int) -> dict[str, np.ndarray]:
    weights = read_encoder_weights(f"{resolve_model_dir(model)}/model.bin")
    width = weights["conv1/weight"].shape[0]
    if width != input_dim:
        raise ConfigError(
            f"whisper_top: model {model!r} has {width}-d frames, the features have {input_dim}: "
            f"use whisper_encoder frames of the same model (layer: N)"
        )
    return weights


def _heads(weights: dict[str, np.ndarray] | None, dim: int) -> int:
    if weights is not None:
        return int(np.asarray(weights["num_heads"]).reshape(-1)[0])
    return next(h for h in (8, 4, 2, 1) if dim % h == 0)


def _block_names(weights: dict[str, np.ndarray], from_layer: int) -> list[str]:
    """``layer_<i>`` for the blocks after layer ``from_layer`` (0: after the convolutions)."""
    n_blocks = len({k.split("/")[0] for k in weights if k.split("/")[0][6:].isdigit()})
    if not 0 <= from_layer < n_blocks:
        raise ConfigError(
            f"whisper_top: from_layer must be 0..{n_blocks - 1} (the cached layer below the "
            f"trained blocks), got {from_layer}"
        )
    return [f"layer_{i}" for i in range(from_layer, n_blocks)]


@implements("whisper_top")
@params_like(WhisperTopClassifier)
def build_whisper_top(input_dim: int, n_classes: int, **params: Any) -> WhisperTopClassifier:
    return WhisperTopClassifier(input_dim, n_classes, **params)
