"""Extraction on a Dask distributed cluster: ``extract_features(..., dask="tcp://host:8786")``.

Dask is the engine (scheduling, retries, workers that die); SpeechPrint only cuts the cache misses
into batches of files, one task each, that run the same worker function as local extraction:
decode, transform, write the entry into the cache (which every worker must reach: a shared folder
or an fsspec URL), send the arrays back. A worker killed mid-run loses only the batch it was
working on (Dask gives it to another worker); every entry written before is whole on disk, so a
rerun computes only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from speechprint.core.errors import ServiceError, SpeechPrintError
from speechprint.core.processes import init_worker
from speechprint.features.base import Extractor
from speechprint.features.cache import FeatureCache
from speechprint.features.chunk import compute_chunk
from speechprint.features.derived import Outcome

INSTALL = "pip install 'speechprint[cluster]'"


class MissingClusterError(SpeechPrintError, ImportError):
    """``--dask`` without the ``cluster`` extra (dask.distributed)."""


def connect(address: str, *, timeout: float = 5.0) -> Any:
    """A ``distributed.Client`` for ``address``; a clear error when it cannot be reached."""
    try:
        from distributed import Client
    except ImportError as error:
        raise MissingClusterError(f"--dask needs dask.distributed: {INSTALL}") from error
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise ServiceError(f"cannot reach the Dask scheduler at {address}: {error}") from error


def compute_on_cluster(
    address: str,
    chunks: Sequence[Sequence[tuple[str, ...]]],
    extractor: Extractor,
    cache: FeatureCache,
    advance: Callable[[int], None],
) -> list[Outcome]:
    """Run each chunk as one task on the cluster; outcomes in completion order."""
    from distributed import as_completed

    client = connect(address)
    outcomes: list[Outcome] = []
    try:
        # pure=False: a chunk is never deduplicated; retries cover a worker that raised mid-batch
        # (a worker that died is rescheduled by Dask itself).
        futures = [
            client.submit(run_chunk, extractor, cache, list(chunk), pure=False, retries=1)
            for chunk in chunks
        ]
        for future in as_completed(futures):
            chunk_outcomes = future.result()  # re-raises a task's exception
            outcomes.extend(chunk_outcomes)
            advance(len(chunk_outcomes))

    finally:
        client.close()
    return outcomes


def run_chunk(
    extractor: Extractor, cache: FeatureCache, items: list[tuple[str, ...]]
) -> list[Outcome]:
    """The task: the local worker function, with one BLAS thread (a worker has its own cores)."""
    init_worker()
    return compute_chunk(extractor, cache, items)
