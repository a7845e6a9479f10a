"""`speechprint features list|extract|bench`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from speechprint.cli.common import console, fail
from speechprint.core.errors import ConfigError

app = typer.Typer(help="Feature extractors: list them, extract (cached, parallel), benchmark.")


@app.command("list")
def features_list() -> None:
    """Registered extractors with their kind, parameters (defaults) and output dimension."""
    from speechprint.features import FEATURES
    from speechprint.features.base import extractor_param_names

    table = Table("name", "version", "kind", "parameters (defaults)", "output dim")
    for entry in FEATURES.entries():
        extractor = entry.obj()
        # Every parameter it takes, not its cache key's (which leaves defaults such as
        # whisper_encoder's model and layer out, to keep older keys valid).
        params = ", ".join(
            f"{k}={getattr(extractor, k)!s}" for k in extractor_param_names(entry.name)
        )
        dim = extractor.output_dim()
        shape = (
            "?" if dim is None else (f"{dim}" if extractor.kind == "pooled" else f"frames x {dim}")
        )
        table.add_row(entry.name, f"v{extractor.version}", extractor.kind, params, shape)
    console.print(table)


@app.command("extract")
def features_extract(
    archive: Path = typer.Option(..., help="Corpus folder (saa: speakers_all.csv + recordings/)."),
    extractor: str = typer.Option(..., help="Extractor name (see `speechprint features list`)."),
    corpus: str = typer.Option(
        "saa", help="Corpus reader: saa, commonvoice, vctk, l2arctic, speechocean762."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Extractor parameter as key=value (repeatable), e.g. n_mfcc=20."
    ),
    jobs: int | None = typer.Option(None, help="Worker processes (default: all cores)."),
    cache_dir: str | None = typer.Option(
        None,
        help="Feature cache: a folder (shared by machines if need be) or an fsspec URL "
        "(default: $SPEECHPRINT_CACHE_DIR or ~/.cache/speechprint/features).",
    ),
    dask: str | None = typer.Option(
        None,
        metavar="ADDRESS",
        help="Run on a Dask cluster, e.g. tcp://host:8786 (extra: cluster).",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Extract features for every recording of a corpus; cached entries are loaded, not redone."""
    from speechprint.features import extract_features, make_extractor
    from speechprint.features.cache import resolve_cache_root

    with fail.on_user_errors():
        built = make_extractor(extractor, parse_params(param, extractor))
        if jobs is not None and jobs < 1:
            raise ConfigError("--jobs must be at least 1")
        from speechprint.data.corpora import load_corpus

        loaded = load_corpus(archive, corpus)
        paths = [str(p) for p in loaded.with_audio["path"]]
    with fail.on_user_errors():
        result = extract_features(
            paths,
            built,
            jobs=jobs,
            cache_dir=cache_dir,
            progress=progress,
            dask=dask,
            texts=loaded.texts(),
        )
    console.print(
        f"[bold]{built.id}[/] {built.params()}\n"
        f"computed: {result.computed}   loaded from cache: {result.loaded}   "
        f"skipped: {len(result.skipped)}"
    )
    for item in result.skipped:
        console.print(f"  [yellow]skipped[/] {item.file}: {item.reason}", soft_wrap=True)
    if result.seconds_per_audio_minute is not None:
        console.print(
            f"speed: {result.compute_seconds:.1f} s for {result.computed_audio_seconds / 60:.1f} "
            f"min of audio = {result.seconds_per_audio_minute:.2f} s per minute of audio "
            f"({f'Dask cluster {dask}' if dask else f'{jobs or os.cpu_count()} process(es)'})"
        )
    console.print(f"shape: {result.shape_summary()}")
    console.print(f"cache: {resolve_cache_root(cache_dir)}", soft_wrap=True)


@app.command("bench")
def features_bench(
    archive: Path = typer.Option(..., help="Archive folder, e.g. ../shared/data/saa8k."),
    jobs: int | None = typer.Option(None, help="Worker processes (default: all cores)."),
    limit: int | None = typer.Option(None, help="Only the first N recordings."),
) -> None:
    """mfcc_mean vs the notebook's method: notebook, cold cache, warm cache, and their agreement."""
    from speechprint.apps.bench import archive_paths, format_report, run_benchmark

    with fail.on_user_errors():
        paths = archive_paths(archive, limit)
    result = run_benchmark(paths, jobs=jobs, progress=True)
    console.print(format_report(result, label=str(archive)))


def parse_params(items: list[str], extractor: str) -> dict[str, Any]:
    """``["n_mfcc=20", "fmax=3800"]`` -> typed values, coerced to each field's default's type."""
    from speechprint.features import FEATURES

    defaults = {f.name: f.default for f in dataclasses.fields(FEATURES.get(extractor).obj)}
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param expects key=value, got {item!r}")
        params[key] = _coerce(raw.strip(), defaults.get(key), key)
    return params


def _coerce(raw: str, default: Any, key: str) -> Any:
    if raw.lower() in {"none", "null"}:
        return None
    try:
        if isinstance(default, bool):
            if raw.lower() not in _BOOLS:
                raise ValueError
            return _BOOLS[raw.lower()]
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"--param {key}={raw!r}: expected {type(default).__name__}") from None
    for number in (int, float):  # no typed default (None or unknown key): best effort
        try:
            return number(raw)
        except ValueError:
            pass
    return raw


_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
