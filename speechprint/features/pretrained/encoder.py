"""Whisper's encoder in PyTorch from CTranslate2's ``model.bin``, for hidden layers.

CTranslate2's ``Whisper.encode`` returns only the final layer. The same weights, run here in
float32, give every layer: index 0 is the input of the first block (convolutions + positions),
index ``i`` the output of block ``i``, and the last index (``n_layers``) the final output after the
last layer norm, which is what CTranslate2 returns (tests check cosine >= 0.999 against it).
The modules are in ``torch_encoder.py`` (imported only when an encoder is built: torch is heavy).

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

from speechprint.core.errors import ConfigError
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
    from speechprint.features.pretrained.torch_encoder import WhisperTorchEncoder

    return WhisperTorchEncoder(weights).eval()


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
