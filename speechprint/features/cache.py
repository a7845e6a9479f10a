"""On-disk feature cache: one ``.npy`` per (extractor configuration, audio content).

Layout: ``<cache_dir>/<extractor id>-<config hash>/<content hash>.npy``, plus a ``config.json``
beside the entries saying which parameters made them. Keys depend on the audio *content*, not its
path, so a moved or copied archive still hits, and an edited file misses. Writes go to a temporary
file in the same folder and are renamed into place, so a killed run never leaves a half-written
entry under a real name; an unreadable entry is treated as a miss and rewritten.

Several machines may share one cache: a shared folder (NFS and the like: the rename is atomic
there too), or object storage through an fsspec URL (``s3://bucket/features``, ``memory://``;
install the filesystem's fsspec package), where each entry is one object written whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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


def is_url(root: object) -> bool:
    """An fsspec URL (``s3://...``) rather than a folder; ``file://`` counts as a folder."""
    return isinstance(root, str) and "://" in root and not root.startswith("file://")


def resolve_cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path | str:
    """Like ``resolve_cache_dir``, but an fsspec URL (given or in the variable) stays a URL."""
    raw = str(cache_dir) if cache_dir is not None and str(cache_dir) != "" else None
    raw = raw or os.environ.get(ENV_VAR) or None
    if raw is not None and is_url(raw):
        return raw.rstrip("/")
    if raw is not None and raw.startswith("file://"):
        return Path(raw[len("file://") :]).expanduser()
    return resolve_cache_dir(cache_dir)


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
        name = f"{extractor.id}-{extractor.config_hash()}"
        self.url: str | None = f"{root}/{name}" if is_url(root) else None
        self.folder = Path(name) if self.url else Path(root) / name
        self._ndim = 1 if extractor.kind == "pooled" else 2
        # An extractor may store its entries as float16 (``storage_dtype``: half the disk, the
        # precision of a mean frame kept); they load as float32 like every other entry.
        self._stored = np.dtype(getattr(extractor, "storage_dtype", "float32"))
        # Its pack/unpack hooks, held only where overridden: the extractor (picklable) then
        # travels with the cache to workers; an identity extractor's cache stays as it was.
        overrides = type(extractor).pack is not Extractor.pack
        overrides = overrides or type(extractor).unpack is not Extractor.unpack
        self._codec: Extractor | None = extractor if overrides else None
        self._meta = {"id": extractor.id, "kind": extractor.kind, "params": extractor.params()}
        self._fs: Any = None  # the fsspec filesystem, opened on first use (not pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}  # workers open their own connection

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs = fsspec.core.url_to_fs(self.url)[0]
        return self._fs

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def location(self, key: str) -> str:
        """Where the entry lives: a file path, or the URL of its object."""
        return f"{self.url}/{key}.npy" if self.url else str(self.path_for(key))

    def load(self, key: str, *, mmap: bool = False) -> np.ndarray | None:
        """The cached array, or ``None`` when absent or unreadable (then it is recomputed).

        ``mmap=True`` maps a local entry instead of reading it (its header is checked, its data
        read only when touched): how lazy features look entries up. A packed entry (``pack``)
        comes back unpacked, so read whole; only an entry stored whole stays mapped.
        """
        try:
            if self.url:
                array = np.load(io.BytesIO(self.fs.cat_file(self.location(key))))
            else:
                array = np.load(
                    self.path_for(key), allow_pickle=False, mmap_mode="r" if mmap else None
                )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):
            return None  # truncated or foreign bytes: a miss, overwritten by the next save
        # float16 is read from any extractor's folder: one whose storage depends on a setting
        # outside its key (whisper_words' cache_sources) may hold both.
        if array.dtype not in (np.float32, np.float16) or array.ndim != self._ndim:
            return None
        if self._codec is not None:
            stored = array
            try:
                array = self._codec.unpack(stored)
            except ValueError:
                return None  # not a form this extractor wrote: recomputed
            mmap = mmap and array is stored
        return array if array.dtype == np.float32 or mmap else array.astype(np.float32)

    def save(self, key: str, array: np.ndarray) -> None:
        """Atomic write: temporary file in the same folder, then ``os.replace`` (an object store
        gets the whole object in one put)."""
        if self._codec is not None:
            array = self._codec.pack(np.asarray(array))
        array = np.asarray(array).astype(self._stored, copy=False)
        if self.url:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            self._write_meta()
            self.fs.pipe_file(self.location(key), buffer.getvalue())
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_meta()
        _atomic_write(self.path_for(key), lambda handle: np.save(handle, array, allow_pickle=False))

    def save_info(self, key: str, info: dict[str, Any]) -> None:
        """A small JSON beside the entry (what an extractor that reads text heard: ``phones``)."""
        blob = json.dumps(info, sort_keys=True).encode()
        if self.url:
            self.fs.pipe_file(f"{self.url}/{key}.json", blob)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / f"{key}.json", lambda handle: handle.write(blob))

    def load_info(self, key: str) -> dict[str, Any] | None:
        """The entry's JSON from ``save_info``, or ``None`` when absent or unreadable."""
        try:
            if self.url:
                raw = self.fs.cat_file(f"{self.url}/{key}.json")
            else:
                raw = (self.folder / f"{key}.json").read_bytes()
            info = json.loads(raw)
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _write_meta(self) -> None:
        blob = json.dumps(self._meta, indent=2, sort_keys=True).encode()
        if self.url:
            if not self.fs.exists(f"{self.url}/config.json"):
                self.fs.pipe_file(f"{self.url}/config.json", blob)
            return
        meta = self.folder / "config.json"
        if not meta.exists():
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
