"""Pooling over time that ignores padded frames."""

from __future__ import annotations

import torch
from torch import nn


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, T)`` boolean mask, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over real frames: ``(B, T, D) -> (B, D)``."""
    mask = frame_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
    return (x * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): weighted mean and std over frames.

    ``(B, T, D) -> (B, 2D)``; padded frames get zero attention.
    """

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )
        self.output_dim = 2 * dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = self.attention(x).squeeze(-1)
        scores = scores.masked_fill(~frame_mask(lengths, x.shape[1]), float("-inf"))
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)
        mean = (weights * x).sum(1)
        var = (weights * (x - mean.unsqueeze(1)) ** 2).sum(1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)
