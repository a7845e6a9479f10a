"""Frame-level models for pretrained encoder frames: x-vector-style TDNN and attentive pooling."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechprint.models.base import implements, params_like
from speechprint.models.pooling import AttentiveStatsPooling, frame_mask


class TDNN(nn.Module):
    """A small x-vector network (Snyder et al. 2018): dilated 1-D convolutions over frames,
    attentive statistics pooling, an embedding layer and a linear head."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        channels: int = 256,
        embedding: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = input_dim
        for kernel, dilation in ((5, 1), (3, 2), (3, 3), (1, 1)):
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(
                        width,
                        channels,
                        kernel,
                        dilation=dilation,
                        padding=dilation * (kernel - 1) // 2,
                    ),
                    nn.BatchNorm1d(channels),
                    nn.ReLU(),
                )
            )
            width = channels
        self.frames = nn.ModuleList(blocks)
        self.pool = AttentiveStatsPooling(channels)
        self.embedding = nn.Sequential(
            nn.Linear(2 * channels, embedding),
            nn.BatchNorm1d(embedding),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(embedding, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        # Zero padded frames before every layer, so padding never leaks into real frames' context.
        mask = frame_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        frames = x.transpose(1, 2) * mask
        for block in self.frames:
            frames = block(frames) * mask
        frames = frames.transpose(1, 2)
        return self.head(self.embedding(self.pool(frames, lengths)))


class AttentivePoolingClassifier(nn.Module):
    """Project frames, attentive statistics pooling, small MLP head: a strong, cheap probe for
    pretrained encoder frames that learns which frames carry accent."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        projection: int = 256,
        hidden: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Linear(input_dim, projection), nn.ReLU(), nn.Dropout(dropout)
        )
        self.pool = AttentiveStatsPooling(projection)
        self.head = nn.Sequential(
            nn.Linear(2 * projection, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        return self.head(self.pool(self.project(x), lengths))


@implements("tdnn")
@params_like(TDNN)
def build_tdnn(input_dim: int, n_classes: int, **params: Any) -> TDNN:
    return TDNN(input_dim, n_classes, **params)


@implements("attn_pool")
@params_like(AttentivePoolingClassifier)
def build_attn_pool(input_dim: int, n_classes: int, **params: Any) -> AttentivePoolingClassifier:
    return AttentivePoolingClassifier(input_dim, n_classes, **params)
