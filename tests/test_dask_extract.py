"""Extraction on a real Dask cluster (a 2-worker LocalCluster on loopback): the same features as
local extraction, bit for bit; a worker killed mid-run loses no finished entry, and a rerun
computes only what is missing."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from speechprint.data.archive import load_archive
from speechprint.features import FEATURES, extract_features, make_extractor
from speechprint.features.cache import TMP_PREFIX, FeatureCache
from speechprint.features.mfcc import MfccMean

distributed = pytest.importorskip("distributed", reason="needs the cluster extra (dask)")
pytestmark = pytest.mark.slow


@dataclass
class SleepyMfcc(MfccMean):
    """mfcc_mean that takes its time, so that a run is still going when a worker is killed."""

    version = 1
    delay: float = 0.1

    def transform(self, wave: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return super().transform(wave)


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


def _paths(archive: Path) -> list[str]:
    return [str(p) for p in load_archive(archive).with_audio["path"]]


def _entries(cache: FeatureCache) -> list[Path]:
    return sorted(p for p in cache.folder.glob("*.npy") if not p.name.startswith(TMP_PREFIX))


def test_cluster_features_equal_local_ones(
    tiny_archive: Path, tmp_path: Path, cluster: distributed.LocalCluster
) -> None:
    paths = _paths(tiny_archive)
    extractor = make_extractor("mfcc_mean", {})
    local = extract_features(paths, extractor, jobs=2, cache_dir=tmp_path / "local", progress=False)
    remote = extract_features(
        paths,
        extractor,
        dask=cluster.scheduler_address,
        cache_dir=tmp_path / "shared",
        progress=False,
    )
    assert remote.computed == len(paths) == len(local.features) and not remote.skipped
    assert list(remote.features) == list(local.features)  # input order, not completion order
    for path, array in local.features.items():
        assert remote.features[path].tobytes() == array.tobytes()
    # The workers wrote the shared cache: a second run loads everything.
    again = extract_features(
        paths,
        extractor,
        dask=cluster.scheduler_address,
        cache_dir=tmp_path / "shared",
        progress=False,
    )
    assert again.loaded == len(paths) and again.computed == 0


def test_cli_extract_on_the_cluster(tmp_path: Path, cluster: distributed.LocalCluster) -> None:
    from test_corpora import write_vctk
    from typer.testing import CliRunner

    from speechprint.cli import _register_subcommands, app

    _register_subcommands()
    root = write_vctk(tmp_path / "vctk", utterances=1)
    args = [
        "features",
        "extract",
        "--corpus",
        "vctk",
        "--archive",
        str(root),
        "--extractor",
        "mfcc_mean",
        "--dask",
        cluster.scheduler_address,
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "computed: 7 loaded from cache: 0 skipped: 0" in text
    assert f"Dask cluster {cluster.scheduler_address}" in text


def test_killed_worker_loses_no_finished_entry(
    tiny_archive: Path,
    tmp_path: Path,
    cluster: distributed.LocalCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from speechprint.features import extract

    monkeypatch.setattr(extract, "CLUSTER_BATCH", 2)  # many small tasks: the kill lands mid-run
    paths = _paths(tiny_archive)
    with FEATURES.temporary("test_sleepy_mfcc", SleepyMfcc):
        extractor = make_extractor("test_sleepy_mfcc", {})
        reference = extract_features(
            paths,
            make_extractor("mfcc_mean", {}),
            jobs=2,
            cache_dir=tmp_path / "reference",
            progress=False,
        )
        cache_dir = tmp_path / "shared"
        cache = FeatureCache(cache_dir, extractor)
        outcome: dict[str, object] = {}

        def first_run() -> None:
            try:
                outcome["result"] = extract_features(
                    paths,
                    extractor,
                    progress=False,
                    dask=cluster.scheduler_address,
                    cache_dir=cache_dir,
                )
            except Exception as error:  # noqa: BLE001 - KilledWorker is one allowed outcome
                outcome["error"] = error

        runner = threading.Thread(target=first_run)
        runner.start()
        deadline = time.monotonic() + 60
        while len(_entries(cache)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        with distributed.Client(cluster.scheduler_address) as client:
            pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        finished_before_kill = len(_entries(cache))
        assert 4 <= finished_before_kill < len(paths), "the kill must land mid-run"
        runner.join(timeout=120)
        assert not runner.is_alive()

        # Every entry under a real name is whole, whatever happened to the run.
        entries = _entries(cache)
        assert len(entries) >= finished_before_kill
        for entry in entries:
            assert np.load(entry).dtype == np.float32

        rerun = extract_features(
            paths, extractor, dask=cluster.scheduler_address, cache_dir=cache_dir, progress=False
        )
        assert rerun.loaded == len(entries) and rerun.computed == len(paths) - len(entries)
        for path, array in reference.features.items():  # the same numbers as plain mfcc_mean
            assert rerun.features[path].tobytes() == array.tobytes()


def test_unreachable_scheduler_is_a_service_error(tiny_archive: Path, tmp_path: Path) -> None:
    from speechprint.core.errors import ServiceError

    paths = _paths(tiny_archive)[:2]
    with pytest.raises(ServiceError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        extract_features(
            paths,
            make_extractor("mfcc_mean", {}),
            dask="tcp://127.0.0.1:9",
            cache_dir=tmp_path,
            progress=False,
        )
