"""extract_features: the disk cache, parallel extraction and the skipped-file policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprint.features import extract_features, make_extractor, resolve_cache_dir
from speechprint.features.cache import FeatureCache, content_hash

RATE = 8000


def _write(path: Path, freq: float, seconds: float = 1.0, seed: int = 0) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    noise = np.random.default_rng(seed).normal(scale=0.02, size=t.size)
    sf.write(path, (0.4 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), RATE)
    return path


@pytest.fixture()
def audio(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "audio"
    folder.mkdir()
    return [_write(folder / f"s{i}.wav", 200 + 150 * i, seed=i) for i in range(4)]


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        # Workers run one BLAS thread and the parent several: float32 sums may differ in the last
        # bits, so "equal" means equal to float32 precision, not bit for bit.
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-4)


def test_second_run_loads_everything(audio: list[Path], cache_dir: Path) -> None:
    extractor = make_extractor("mfcc_mean")
    first = extract_features(audio, extractor, jobs=1, progress=False)
    assert (first.computed, first.loaded, first.skipped) == (4, 0, [])
    assert list(first.features) == [str(p) for p in audio]  # input order
    assert first.shape_summary() == "(4, 13)"
    assert any(cache_dir.rglob("*.npy"))  # $SPEECHPRINT_CACHE_DIR (set by the fixture) was used
    second = extract_features(audio, extractor, jobs=1, progress=False)
    assert (second.computed, second.loaded) == (0, 4)
    _same(first.features, second.features)


def test_parameter_or_content_change_misses(audio: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    extract_features(audio, make_extractor("mfcc_seq"), jobs=1, cache_dir=cache, progress=False)
    other = extract_features(
        audio, make_extractor("mfcc_seq", {"n_mfcc": 20}), jobs=1, cache_dir=cache, progress=False
    )
    assert (other.computed, other.loaded) == (4, 0)
    assert other.shape_summary() == "4 x (frames 101..101, 20)"

    _write(audio[0], 3000.0, seed=9)  # new content under the same name
    again = extract_features(
        audio, make_extractor("mfcc_seq"), jobs=1, cache_dir=cache, progress=False
    )
    assert (again.computed, again.loaded) == (1, 3)

    copy = tmp_path / "elsewhere.wav"  # same content elsewhere: keyed by content, so a hit
    copy.write_bytes(audio[1].read_bytes())
    moved = extract_features(
        [copy], make_extractor("mfcc_seq"), jobs=1, cache_dir=cache, progress=False
    )
    assert (moved.computed, moved.loaded) == (0, 1)


def test_stale_temp_and_corrupt_entries_are_recomputed(audio: list[Path], tmp_path: Path) -> None:
    cache, extractor = tmp_path / "cache", make_extractor("mfcc_mean")
    first = extract_features(audio, extractor, jobs=1, cache_dir=cache, progress=False)
    store = FeatureCache(cache, extractor)
    (store.folder / ".tmp-killed-run.npy").write_bytes(b"\x93NUMPY half")  # a killed writer
    store.path_for(content_hash(audio[0])).write_bytes(b"\x93NUMPY\x01\x00garbage")
    store.path_for(content_hash(audio[1])).write_bytes(b"")
    second = extract_features(audio, extractor, jobs=1, cache_dir=cache, progress=False)
    assert (second.computed, second.loaded) == (2, 2)
    _same(first.features, second.features)
    third = extract_features(audio, extractor, jobs=1, cache_dir=cache, progress=False)
    assert (third.computed, third.loaded) == (0, 4)  # the bad entries were rewritten


def test_failed_write_leaves_no_entry(
    audio: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, extractor = tmp_path / "cache", make_extractor("mfcc_mean")

    def broken_save(handle, array, allow_pickle=False):  # noqa: ANN001
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        extract_features(audio[:1], extractor, jobs=1, cache_dir=cache, progress=False)
    left = [p.name for p in FeatureCache(cache, extractor).folder.iterdir()]
    assert left == ["config.json"]  # no entry, no temporary file


def test_parallel_equals_serial(audio: list[Path], tmp_path: Path) -> None:
    extractor = make_extractor("mfcc_deltas")
    serial = extract_features(audio, extractor, jobs=1, cache_dir=tmp_path / "a", progress=False)
    parallel = extract_features(audio, extractor, jobs=2, cache_dir=tmp_path / "b", progress=True)
    assert (parallel.computed, parallel.loaded) == (4, 0)
    _same(serial.features, parallel.features)
    warm = extract_features(audio, extractor, jobs=2, cache_dir=tmp_path / "b", progress=False)
    assert (warm.computed, warm.loaded) == (0, 4)  # workers wrote the entries themselves


@pytest.mark.parametrize("jobs", [1, 2])
def test_unreadable_files_are_skipped_with_reason(
    audio: list[Path], tmp_path: Path, jobs: int, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp3"
    sf.write(
        truncated, np.sin(np.arange(RATE * 2) / 5.0).astype(np.float32) * 0.5, RATE, format="MP3"
    )
    truncated.write_bytes(truncated.read_bytes()[:300])
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE * 2, np.float32), RATE)
    missing = tmp_path / "missing.wav"
    paths = [empty, audio[0], truncated, silent, audio[1], missing]

    result = extract_features(
        paths, make_extractor("mfcc_mean"), jobs=jobs, cache_dir=tmp_path / "cache", progress=False
    )
    assert list(result.features) == [str(audio[0]), str(audio[1])]
    assert [s.file for s in result.skipped] == [
        str(empty),
        str(truncated),
        str(silent),
        str(missing),
    ]
    assert all(s.reason for s in result.skipped)
    assert result.computed == 2
    assert "empty.mp3" in caplog.text and "missing.wav" in caplog.text
    again = extract_features(
        paths, make_extractor("mfcc_mean"), jobs=jobs, cache_dir=tmp_path / "cache", progress=False
    )
    assert len(again.skipped) == 4 and again.loaded == 2  # failures are retried, not cached


@pytest.mark.parametrize("jobs", [1, 2])
def test_transform_errors_propagate(audio: list[Path], tmp_path: Path, jobs: int) -> None:
    bad = make_extractor("logmel", {"fmax": 9000.0})  # above 16 kHz / 2: a parameter error
    with pytest.raises(ValueError, match="fmax"):
        extract_features(audio, bad, jobs=jobs, cache_dir=tmp_path, progress=False)


def test_resolve_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHPRINT_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("SPEECHPRINT_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "speechprint" / "features"


def test_empty_input(tmp_path: Path) -> None:
    result = extract_features([], make_extractor("mfcc_mean"), cache_dir=tmp_path, progress=False)
    assert (len(result), result.computed, result.loaded, result.dim) == (0, 0, 0, None)


@pytest.mark.parametrize("name", ["mfcc_mean", "mfcc_seq"])
def test_lazy_features_are_the_same_arrays_memory_mapped(
    audio: list[Path], cache_dir: Path, name: str
) -> None:
    import pickle

    from speechprint.features.lazy import PackedFeatures

    extractor = make_extractor(name)
    eager = extract_features(audio[:3], extractor, jobs=1, progress=False)
    lazy = extract_features(audio, extractor, jobs=1, progress=False, lazy=True)
    assert isinstance(lazy.features, PackedFeatures) and (lazy.loaded, lazy.computed) == (3, 1)
    assert isinstance(lazy.features[str(audio[0])].base, np.memmap)  # a view, not a copy
    whole = extract_features(audio, extractor, jobs=1, progress=False)
    _same(dict(lazy.features), whole.features)
    _same({k: lazy.features[k] for k in eager.features}, eager.features)
    assert lazy.shape_summary() == whole.shape_summary() and lazy.dim == whole.dim
    # One pack per set of entries: the same run reuses it; it pickles by reference (workers).
    packs = list((FeatureCache(cache_dir, extractor).folder / "packs").glob("*.npy"))
    again = extract_features(audio, extractor, jobs=1, progress=False, lazy=True)
    assert again.features.data_path == lazy.features.data_path and len(packs) == 1
    assert len(pickle.dumps(again.features)) < 2000
    _same(dict(pickle.loads(pickle.dumps(again.features))), whole.features)


def test_an_extractor_that_does_not_pack_stores_its_arrays_as_they_are(tmp_path: Path) -> None:
    extractor = make_extractor("mfcc_mean")
    cache = FeatureCache(tmp_path, extractor)
    vector = np.random.default_rng(0).normal(size=26).astype(np.float32)
    cache.save("key", vector)
    assert np.array_equal(np.load(cache.path_for("key")), vector)
    assert np.array_equal(cache.load("key"), vector)
    assert isinstance(cache.load("key", mmap=True), np.memmap)  # mapped, not read


def test_fsspec_url_cache(audio: list[Path], tmp_path: Path) -> None:
    """An object-store cache (fsspec's in-memory filesystem here): written whole, read back."""
    fsspec = pytest.importorskip("fsspec")
    extractor = make_extractor("mfcc_mean")
    url = f"memory://speechprint-test-{tmp_path.name}"
    first = extract_features(audio, extractor, jobs=1, cache_dir=url, progress=False)
    again = extract_features(audio, extractor, jobs=1, cache_dir=url, progress=False)
    assert (first.computed, again.loaded, again.computed) == (4, 4, 0)
    _same(first.features, again.features)
    fs = fsspec.filesystem("memory")
    folder = FeatureCache(url, extractor).url
    names = sorted(Path(p).name for p in fs.ls(folder, detail=False))
    assert "config.json" in names and len(names) == 5
    assert not (tmp_path / "memory:").exists()  # a URL, never a local folder of that name


def test_lazy_features_survive_handing_pages_back(
    audio: list[Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from speechprint.features import lazy

    monkeypatch.setattr(lazy, "RESIDENT_BYTES", 1)  # release the mapped pages at every lookup
    extractor = make_extractor("mfcc_seq")
    packed = extract_features(audio, extractor, jobs=1, progress=False, lazy=True)
    views = [packed.features[str(p)] for p in audio]  # older views outlive later releases
    whole = extract_features(audio, extractor, jobs=1, progress=False)
    _same(dict(zip(whole.features, views)), whole.features)
