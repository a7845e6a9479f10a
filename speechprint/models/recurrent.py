"""LSTM, BiLSTM and CNN-LSTM over frame sequences, with last-state, mean or attentive pooling."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechprint.catalogue.models import POOLINGS
from speechprint.core.errors import ConfigError
from speechprint.models.base import implements, params_like
from speechprint.models.pooling import AttentiveStatsPooling, frame_mask, masked_mean


class RecurrentClassifier(nn.Module):
    """Optional 1-D convolution front end (CNN-LSTM) -> (Bi)LSTM -> pooling -> linear head."""

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        hidden: int = 128,
        layers: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.2,
        pooling: str = "last",
        conv_channels: int = 0,
        subsample: int = 1,
    ) -> None:
        super().__init__()
        self.subsample = subsample  # average k frames: k times fewer LSTM steps
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.conv: nn.ModuleList | None = None
        width = input_dim
        if conv_channels:
            # Two strided convolutions: local spectral patterns, and 4x fewer steps for the LSTM.
            self.conv = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Conv1d(width, conv_channels, 5, stride=2, padding=2),
                        nn.BatchNorm1d(conv_channels),
                        nn.ReLU(),
                    )
                    for width in (input_dim, conv_channels)
                ]
            )
            width = conv_channels
        self.lstm = nn.LSTM(
            width,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        out = hidden * (2 if bidirectional else 1)
        self.attention = AttentiveStatsPooling(out) if pooling == "attentive" else None
        pooled = 2 * out if pooling == "attentive" else out
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(pooled, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        if self.subsample > 1 and self.conv is None:
            x = x * frame_mask(lengths, x.shape[1])[:, :, None].to(x.dtype)
            x = nn.functional.avg_pool1d(x.transpose(1, 2), self.subsample, ceil_mode=True)
            x = x.transpose(1, 2)
            lengths = (lengths + self.subsample - 1) // self.subsample
        if self.conv is not None:
            # Zero padded frames before each strided convolution so padding never leaks in.
            x = x.transpose(1, 2)
            for block in self.conv:
                x = block(x * frame_mask(lengths, x.shape[2])[:, None, :].to(x.dtype))
                lengths = (lengths + 1) // 2
            x = x.transpose(1, 2)
            lengths = lengths.clamp(1, x.shape[1])
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, (h_n, _) = self.lstm(packed)
        if self.pooling == "last":
            # The final layer's last state in each direction (real frames only, via packing).
            pooled = torch.cat([h_n[-1], h_n[-2]], -1) if self.lstm.bidirectional else h_n[-1]
        else:
            frames, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
            pooled = (
                masked_mean(frames, lengths)
                if self.attention is None
                else self.attention(frames, lengths)
            )
        return self.head(pooled)


@implements("lstm")
@params_like(RecurrentClassifier, drop={"bidirectional"})
def build_lstm(input_dim: int, n_classes: int, **params: Any) -> RecurrentClassifier:
    return RecurrentClassifier(input_dim, n_classes, bidirectional=False, **params)


@implements("bilstm")
@params_like(RecurrentClassifier, drop={"bidirectional"})
def build_bilstm(input_dim: int, n_classes: int, **params: Any) -> RecurrentClassifier:
    return RecurrentClassifier(input_dim, n_classes, bidirectional=True, **params)


@implements("cnn_lstm")
@params_like(RecurrentClassifier, drop={"bidirectional"})
def build_cnn_lstm(input_dim: int, n_classes: int, **params: Any) -> RecurrentClassifier:
    params.setdefault("conv_channels", 64)
    return RecurrentClassifier(input_dim, n_classes, bidirectional=True, **params)
