"""Attention over the passage's words: a non-linear model of ``whisper_words``.

Every speaker reads the same paragraph, so ``whisper_words`` gives one vector per word (after the
utterance's mean and std): the same word across speakers, only the accent varying. ``word_probe``
reads them linearly (principal components by word); ``word_attn`` lets the words interact: each
group is projected by one shared layer, given a learned embedding of its position in the passage
(the same word always sits at the same position), mixed by a small pre-LN transformer, and pooled
by attentive statistics pooling, so the model learns which words tell accents apart.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechprint.core.errors import ConfigError
from speechprint.models.base import implements, params_like
from speechprint.models.pooling import AttentiveStatsPooling


class WordAttention(nn.Module):
    """``(B, groups * width)`` group-major vectors -> logits, attending over the groups."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        layer_groups: int = 1,
        projection: int = 128,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if layer_groups < 1 or input_dim % layer_groups:
            raise ConfigError(f"layer_groups={layer_groups} does not divide {input_dim} inputs")
        if projection % heads:
            raise ConfigError(f"word_attn: heads={heads} does not divide projection={projection}")
        self.groups, self.width = layer_groups, input_dim // layer_groups
        self.project = nn.Sequential(
            nn.Linear(self.width, projection), nn.LayerNorm(projection), nn.GELU()
        )
        self.positions = nn.Parameter(0.02 * torch.randn(layer_groups, projection))
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            projection, heads, 2 * projection, dropout, batch_first=True, norm_first=True
        )
        self.mix: nn.Module = (
            nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            if layers
            else nn.Identity()
        )
        self.pool = AttentiveStatsPooling(projection, attention_dim=64)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * projection, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        tokens = x.reshape(x.shape[0], self.groups, self.width)
        hidden = self.mix(self.drop(self.project(tokens) + self.positions))
        every = torch.full((x.shape[0],), self.groups, dtype=torch.long, device=x.device)
        return self.head(self.pool(hidden, every))


@implements("word_attn")
@params_like(WordAttention)
def build_word_attn(input_dim: int, n_classes: int, **params: Any) -> WordAttention:
    return WordAttention(input_dim, n_classes, **params)
