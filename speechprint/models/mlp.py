"""The notebook's MLP on pooled vectors (sequence features arrive as mean+std statistics)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechprint.models.base import implements, params_like


class MLP(nn.Module):
    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = input_dim
        for _ in range(layers):
            blocks += [
                nn.Linear(width, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x))


@implements("mlp")
@params_like(MLP)
def build_mlp(input_dim: int, n_classes: int, **params: Any) -> MLP:
    return MLP(input_dim, n_classes, **params)
