"""A small PyTorch Whisper encoder that reads CTranslate2's ``model.bin``, for hidden layers.

CTranslate2's ``Whisper.encode`` returns only the final layer. The same weights, run here in
float32, give every layer: index 0 is the input of the first block (convolutions + positions),
index ``i`` the output of block ``i``, and the last index (``n_layers``) the final output after the
last layer norm, which is what CTranslate2 returns (tests check cosine >= 0.999 against it).

``model.bin`` (ctranslate2/specs/model_spec.py ``_serialize``, binary version 6), little-endian:
``u32 version``, ``str name``, ``u32 revision``, ``u32 n_variables``, then per variable ``str
name``, ``u8 rank``, ``u32 dims[rank]``, ``u8 dtype`` (0 float32, 1 int8, 2 int16, 3 int32,
4 float16, 5 bfloat16), ``u32 n_bytes``, the bytes; then aliases. ``str`` is ``u16 length``
(including a NUL) and the bytes. Only the ``encoder/`` variables are read; quantised (int8) files
need the float weights and are refused.
"""

from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO

import numpy as np

from speechprint.errors import ConfigError
from speechprint.features.pretrained.common import model_lock

_DTYPES: dict[int, Any] = {0: np.float32, 2: np.int16, 3: np.int32, 4: np.float16}
_encoders: dict[str, Any] = {}


def read_encoder_weights(path: str) -> dict[str, np.ndarray]:
    """The ``encoder/*`` arrays of a CTranslate2 ``model.bin`` (names without the prefix)."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as handle:
        version = _u32(handle)
        if version < 5:
            raise ConfigError(f"{path}: CTranslate2 binary version {version} is too old (need 5+)")
        _string(handle)  # spec name
        _u32(handle)  # revision
        for _ in range(_u32(handle)):
            name = _string(handle)
            rank = struct.unpack("<B", handle.read(1))[0]
            shape = struct.unpack(f"<{rank}I", handle.read(4 * rank)) if rank else ()
            dtype_id, n_bytes = struct.unpack("<BI", handle.read(5))
            if not name.startswith("encoder/"):
                handle.seek(n_bytes, os.SEEK_CUR)
                continue
            if dtype_id not in _DTYPES:
                raise ConfigError(
                    f"{path}: {name} is stored as type {dtype_id} (quantised); hidden layers need "
                    "a float16 or float32 conversion"
                )
            raw = np.frombuffer(handle.read(n_bytes), dtype=_DTYPES[dtype_id])
            out[name.removeprefix("encoder/")] = raw.reshape(shape)
    return out


def _u32(handle: BinaryIO) -> int:
    return int(struct.unpack("<I", handle.read(4))[0])


def _string(handle: BinaryIO) -> str:
    length = struct.unpack("<H", handle.read(2))[0]
    return handle.read(length)[:-1].decode("utf-8")


def build_encoder(weights: dict[str, np.ndarray]) -> Any:
    """``torch.nn.Module``: ``(batch, 80, 3000)`` log-mel -> list of ``n_layers + 1`` tensors."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(weights[name], dtype=np.float32))

    def layer_norm(prefix: str, dim: int) -> nn.LayerNorm:
        norm = nn.LayerNorm(dim, eps=1e-5)
        norm.weight.data, norm.bias.data = tensor(f"{prefix}/gamma"), tensor(f"{prefix}/beta")
        return norm

    def linear(prefix: str) -> nn.Linear:
        weight = tensor(f"{prefix}/weight")
        module = nn.Linear(weight.shape[1], weight.shape[0])
        module.weight.data, module.bias.data = weight, tensor(f"{prefix}/bias")
        return module

    class Block(nn.Module):
        def __init__(self, prefix: str, dim: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.attn_norm = layer_norm(f"{prefix}/self_attention/layer_norm", dim)
            self.qkv = linear(f"{prefix}/self_attention/linear_0")  # q, k, v fused
            self.out = linear(f"{prefix}/self_attention/linear_1")
            self.ffn_norm = layer_norm(f"{prefix}/ffn/layer_norm", dim)
            self.ffn_in, self.ffn_out = (
                linear(f"{prefix}/ffn/linear_0"),
                linear(f"{prefix}/ffn/linear_1"),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, d = x.shape
            q, k, v = (
                self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
            )
            attended = F.scaled_dot_product_attention(*(z.transpose(1, 2) for z in (q, k, v)))
            x = x + self.out(attended.transpose(1, 2).reshape(b, t, d))
            return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dim = weights["conv1/weight"].shape[0]
            heads = int(np.asarray(weights["num_heads"]).reshape(-1)[0])
            n_layers = len({k.split("/")[0] for k in weights if k.split("/")[0][6:].isdigit()})
            self.conv1 = nn.Conv1d(weights["conv1/weight"].shape[1], dim, 3, padding=1)
            self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
            for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
                conv.weight.data, conv.bias.data = tensor(f"{name}/weight"), tensor(f"{name}/bias")
            self.register_buffer("positions", tensor("position_encodings/encodings"))
            self.blocks = nn.ModuleList(Block(f"layer_{i}", dim, heads) for i in range(n_layers))
            self.norm = layer_norm("layer_norm", dim)

        def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
            x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
            x = x + self.positions[: x.shape[1]]
            hidden = [x]
            for block in self.blocks:
                hidden.append(block(hidden[-1]))
            hidden[-1] = self.norm(hidden[-1])
            return hidden

    return Encoder().eval()


def load_encoder(model_dir: str) -> Any:
    """The PyTorch encoder of the Whisper in ``model_dir``, built once per process."""
    path = os.path.realpath(os.path.join(model_dir, "model.bin"))
    with model_lock:
        if path not in _encoders:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # CTranslate2 may share the process
            _encoders[path] = build_encoder(read_encoder_weights(path))
        return _encoders[path]


def encode_layers(model_dir: str, mels: np.ndarray) -> np.ndarray:
    """Every layer for a batch of windows: ``(batch, 80, 3000)`` -> ``(batch, 1500, L + 1, d)``."""
    import torch

    encoder = load_encoder(model_dir)
    with torch.inference_mode():
        hidden = encoder(torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32)))
        return torch.stack(hidden, dim=2).numpy()
