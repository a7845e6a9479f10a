"""On-disk feature cache: one ``.npy`` per (extractor configuration, audio content).

Layout: ``<cache_dir>/<extractor id>-<config hash>/<content hash>.npy``, plus a ``config.json``
beside the entries saying which parameters made them. Keys depend on the audio *content*, not its
path, so a moved or copied archive still hits, and an edited file misses. Writes go to a temporary
file in the same folder and are renamed into place, so a killed run never leaves a half-written
entry under a real name; an unreadable entry is treated as a miss and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from speechprint.features.base import Extractor

ENV_VAR = "SPEECHPRINT_CACHE_DIR"
TMP_PREFIX = ".tmp-"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else ``$SPEECHPRINT_CACHE_DIR``, else ``~/.cache/speechprint/features``."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "speechprint" / "features"


def content_hash(path: str | os.PathLike[str]) -> str:
    """blake2b (160-bit) of the file's bytes: fast, and collision-free for any practical purpose."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FeatureCache:
    """The entries of one extractor configuration."""

    def __init__(self, root: str | os.PathLike[str], extractor: Extractor) -> None:
        self.folder = Path(root) / f"{extractor.id}-{extractor.config_hash()}"
        self._ndim = 1 if extractor.kind == "pooled" else 2
        self._meta = {"id": extractor.id, "kind": extractor.kind, "params": extractor.params()}

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The cached array, or ``None`` when absent or unreadable (then it is recomputed)."""
        path = self.path_for(key)
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):
            return None  # truncated or foreign bytes: a miss, overwritten by the next save
        if array.dtype != np.float32 or array.ndim != self._ndim:
            return None
        return array

    def save(self, key: str, array: np.ndarray) -> None:
        """Atomic write: temporary file in the same folder, then ``os.replace``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_meta()
        _atomic_write(self.path_for(key), lambda handle: np.save(handle, array, allow_pickle=False))

    def _write_meta(self) -> None:
        meta = self.folder / "config.json"
        if not meta.exists():
            blob = json.dumps(self._meta, indent=2, sort_keys=True).encode()
            _atomic_write(meta, lambda handle: handle.write(blob))


def _atomic_write(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=TMP_PREFIX, suffix=target.suffix, delete=False
    )
    try:
        with handle:
            write(handle)
        os.replace(handle.name, target)
    except BaseException:
        # Also on KeyboardInterrupt: leave nothing behind but the finished entries.
        Path(handle.name).unlink(missing_ok=True)
        raise
