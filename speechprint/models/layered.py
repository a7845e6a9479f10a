"""Models that learn a softmax-weighted sum of an encoder's layers (SUPERB, Yang et al. 2021).

Which layer of a pretrained encoder carries accent is a question, not a setting: these models
learn one weight per layer with the task, and report them (``layer_weights()``, logged by a run
as ``layer_weights.json``). Their input is layer-major, ``layer_groups`` groups of equal width:
``whisper_layers`` with ``layer: all`` (each layer's mean + std statistics, pooled) or
``whisper_encoder`` with ``layers: weighted`` (each frame's hidden states, sequences). A run fills
``layer_groups`` from the extractor (``Extractor.layer_groups``). Because a mean is linear, the
weighted sum of per-layer mean statistics equals the mean of weighted-sum frames: on pooled
statistics the protocol costs one small cached vector per recording instead of every frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechprint.core.errors import ConfigError
from speechprint.models.base import implements, params_like
from speechprint.models.mlp import MLP
from speechprint.models.tdnn import AttentivePoolingClassifier


class LayerWeightedSum(nn.Module):
    """``(..., groups * width)`` -> ``(..., width)``: the softmax-weighted sum of the groups."""

    def __init__(self, input_dim: int, groups: int) -> None:
        super().__init__()
        if groups < 1 or input_dim % groups:
            raise ConfigError(
                f"layer_groups={groups} does not divide the input's {input_dim} dimensions"
            )
        self.groups, self.width = groups, input_dim // groups
        self.logits = nn.Parameter(torch.zeros(groups))  # uniform at the start, as in SUPERB

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = x.reshape(*x.shape[:-1], self.groups, self.width)
        return (torch.softmax(self.logits, dim=0)[:, None] * stacked).sum(dim=-2)

    def weights(self) -> list[float]:
        return torch.softmax(self.logits.detach().cpu(), dim=0).tolist()


class LayerWeightedMLP(nn.Module):
    """Pooled per-layer statistics -> weighted sum of layers -> the MLP (``hidden``, ``layers``)."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        layer_groups: int = 1,
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.mix = LayerWeightedSum(input_dim, layer_groups)
        self.classify = MLP(
            self.mix.width, n_classes, hidden=hidden, layers=layers, dropout=dropout
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.mix(x))

    def layer_weights(self) -> list[float]:
        return self.mix.weights()


class LayerWeightedAttentivePooling(nn.Module):
    """Frames of every layer -> weighted sum per frame -> attentive statistics pooling + head."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        layer_groups: int = 1,
        projection: int = 256,
        hidden: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.mix = LayerWeightedSum(input_dim, layer_groups)
        self.classify = AttentivePoolingClassifier(
            self.mix.width, n_classes, projection=projection, hidden=hidden, dropout=dropout
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.mix(x), lengths)

    def layer_weights(self) -> list[float]:
        return self.mix.weights()


@implements("layer_weighted")
@params_like(LayerWeightedMLP)
def build_layer_weighted(input_dim: int, n_classes: int, **params: Any) -> LayerWeightedMLP:
    return LayerWeightedMLP(input_dim, n_classes, **params)


@implements("weighted_attn_pool")
@params_like(LayerWeightedAttentivePooling)
def build_weighted_attn_pool(
    input_dim: int, n_classes: int, **params: Any
) -> LayerWeightedAttentivePooling:
    return LayerWeightedAttentivePooling(input_dim, n_classes, **params)
