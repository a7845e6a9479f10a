"""Whisper's encoder as PyTorch modules, filled from CTranslate2's variable names.

conv1 (k=3) -> GELU -> conv2 (k=3, stride 2) -> GELU -> + position table -> pre-LN blocks
(fused q/k/v self-attention, GELU MLP) -> final layer norm. Imported lazily by ``encoder.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Weights = dict[str, np.ndarray]


def _tensor(weights: Weights, name: str) -> torch.Tensor:
    return torch.from_numpy(np.array(weights[name], dtype=np.float32))


def _layer_norm(weights: Weights, prefix: str) -> nn.LayerNorm:
    gamma = _tensor(weights, f"{prefix}/gamma")
    norm = nn.LayerNorm(gamma.shape[0], eps=1e-5)
    norm.weight.data, norm.bias.data = gamma, _tensor(weights, f"{prefix}/beta")
    return norm


def _linear(weights: Weights, prefix: str) -> nn.Linear:
    weight = _tensor(weights, f"{prefix}/weight")
    module = nn.Linear(weight.shape[1], weight.shape[0])
    module.weight.data, module.bias.data = weight, _tensor(weights, f"{prefix}/bias")
    return module


class Block(nn.Module):
    """One pre-LN transformer block (``encoder/layer_<i>/...``)."""

    def __init__(self, weights: Weights, prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = _layer_norm(weights, f"{prefix}/self_attention/layer_norm")
        self.qkv = _linear(weights, f"{prefix}/self_attention/linear_0")  # q, k, v fused
        self.out = _linear(weights, f"{prefix}/self_attention/linear_1")
        self.ffn_norm = _layer_norm(weights, f"{prefix}/ffn/layer_norm")
        self.ffn_in = _linear(weights, f"{prefix}/ffn/linear_0")
        self.ffn_out = _linear(weights, f"{prefix}/ffn/linear_1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = (z.transpose(1, 2) for z in qkv.unbind(2))
        attended = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperTorchEncoder(nn.Module):
    """``forward(mel)`` returns every layer: index 0 before the blocks, the last after the norm."""

    positions: torch.Tensor  # a buffer

    def __init__(self, weights: Weights) -> None:
        super().__init__()
        dim = weights["conv1/weight"].shape[0]
        heads = int(np.asarray(weights["num_heads"]).reshape(-1)[0])
        n_layers = len({k.split("/")[0] for k in weights if k.split("/")[0][6:].isdigit()})
        self.conv1 = nn.Conv1d(weights["conv1/weight"].shape[1], dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
            conv.weight.data = _tensor(weights, f"{name}/weight")
            conv.bias = nn.Parameter(_tensor(weights, f"{name}/bias"))
        self.register_buffer("positions", _tensor(weights, "position_encodings/encodings"))
        self.blocks = nn.ModuleList(Block(weights, f"layer_{i}", heads) for i in range(n_layers))
        self.norm = _layer_norm(weights, "layer_norm")

    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        hidden = [x + self.positions[: x.shape[1]]]
        for block in self.blocks:
            hidden.append(block(hidden[-1]))
        hidden[-1] = self.norm(hidden[-1])
        return hidden
