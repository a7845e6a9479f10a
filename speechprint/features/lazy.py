"""Lazy features: every array of a run packed into one memory-mapped file, read when touched.

``extract_features(..., lazy=True)`` returns a ``FeatureSet`` whose ``features`` is a
``PackedFeatures`` mapping instead of a dict of arrays: the entries of one run are concatenated
row-wise into ``<cache>/<extractor>/packs/<digest>.npy`` (built once, streaming one entry at a
time; its name is a hash of the entries it holds, so the same files reuse it) and each lookup is a
view into one memory map. A study over 100,000 clips then holds one mapping and an index, not
100,000 arrays; pooled models stream the features once into their ``(N, D)`` matrix. Pages read
through the map are handed back to the kernel every ``RESIDENT_BYTES`` served (``madvise``; the
mapping is read-only, so a view touched again is simply read again from the file): the process's
resident memory stays bounded, whatever the size of the pack.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.features.cache import TMP_PREFIX, FeatureCache

PACKS = "packs"
RESIDENT_BYTES = 16 << 20  # hand mapped pages back after this many bytes served


class PackedFeatures(Mapping[str, np.ndarray]):
    """``{path: array}`` backed by one ``.npy`` (rows of every entry) and its row index."""

    def __init__(
        self, data_path: str | os.PathLike[str], index: dict[str, tuple[int, int]], pooled: bool
    ) -> None:
        self.data_path, self.index, self.pooled = Path(data_path), index, pooled
        self._data = np.load(self.data_path, mmap_mode="r")
        self._served = 0

    def __reduce__(self) -> tuple[type[PackedFeatures], tuple[Path, dict, bool]]:
        return PackedFeatures, (self.data_path, self.index, self.pooled)  # reopened, not copied

    def __getitem__(self, path: str) -> np.ndarray:
        start, stop = self.index[path]
        view = self._data[start] if self.pooled else self._data[start:stop]
        self._served += view.nbytes
        if self._served >= RESIDENT_BYTES:
            self._served = 0
            self._release()
        return view

    def _release(self) -> None:
        handle = getattr(self._data, "_mmap", None)
        if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
            handle.madvise(mmap.MADV_DONTNEED)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class LazyArrays(Sequence[np.ndarray]):
    """The arrays of some paths, each looked up when it is used (not when the list is made), so
    a consumer that streams them (pooling, scoring) holds one at a time."""

    def __init__(self, features: Mapping[str, np.ndarray], paths: Sequence[str]) -> None:
        self.features, self.paths = features, list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            return LazyArrays(self.features, self.paths[item])
        return self.features[self.paths[item]]


def pack(
    cache: FeatureCache,
    entries: Sequence[tuple[str, str]],
    pooled: bool,
    folder: Path | None = None,
) -> PackedFeatures:
    """Pack ``(path, key)`` entries (all present in ``cache``) into one file, or reuse it."""
    digest = hashlib.blake2b(digest_size=12)
    for path, key in entries:
        digest.update(f"{path}\0{key}\n".encode())
    folder = folder or (_local_packs() if cache.url else cache.folder / PACKS)
    data_path = folder / f"{digest.hexdigest()}.npy"
    index_path = data_path.with_suffix(".json")
    if data_path.exists() and index_path.exists():
        index = {p: tuple(r) for p, r in json.loads(index_path.read_text()).items()}
        return PackedFeatures(data_path, index, pooled)
    index, rows, dim = _layout(cache, entries, pooled)
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=TMP_PREFIX, suffix=".npy", delete=False)
    try:
        # Plain writes, one entry at a time (a writable map would keep every page resident).
        with handle:
            header = {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}
            np.lib.format.write_array_header_1_0(handle, header)
            for _, key in entries:
                handle.write(np.ascontiguousarray(cache.load(key), dtype="<f4").tobytes())
        os.replace(handle.name, data_path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    index_path.write_text(json.dumps(index))
    return PackedFeatures(data_path, index, pooled)


def _layout(
    cache: FeatureCache, entries: Sequence[tuple[str, str]], pooled: bool
) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Row ranges per path from the entries' headers (mapped, not read), total rows, dim."""
    index: dict[str, tuple[int, int]] = {}
    rows, dim = 0, 0
    for path, key in entries:
        array = cache.load(key, mmap=True)
        if array is None:
            raise FileNotFoundError(f"feature cache entry {cache.location(key)} vanished")
        n = 1 if pooled else int(array.shape[0])
        dim = int(array.shape[-1])
        index[path] = (rows, rows + n)
        rows += n
        del array  # closes the map: one open file at a time
    return index, rows, dim


def _local_packs() -> Path:
    return Path(tempfile.gettempdir()) / "speechprint-packs"
