"""Layer-wise probing: how much accent each layer of a pretrained encoder carries.

A class-balanced logistic regression on each layer's mean + std statistics, scored by repeated
stratified k-fold on the development speakers (train + val; the test split is never used), with
the bootstrap interval ``cv.cross_validate`` gives. Every layer's statistics come from one
``whisper_layers`` extraction (one encoder pass, cached), so probing all layers costs one pass
plus the probes. Results: a CSV and a PNG (balanced accuracy per layer with its interval), logged
as one MLflow run (metrics with the layer as step).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError, DataError
from speechprint.features import FeatureSet, make_extractor
from speechprint.features.pretrained import resolve_model_dir
from speechprint.features.pretrained.encoder import read_encoder_weights
from speechprint.features.pretrained.layers import split_layers
from speechprint.features.pretrained.whisper import DIMS
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import open_run
from speechprint.train import RunConfig
from speechprint.train.cv import cross_validate
from speechprint.train.prepare import prepare_data

log = logging.getLogger(__name__)

EXPERIMENT = "probes"
# whisper_encoder parameters that carry over to whisper_layers; layer choices make no sense here.
_CARRIED = ("model", "model_path", "frame_stride", "threads")
_REFUSED = ("layer", "layers")


@dataclass
class LayerScore:
    layer: int
    name: str  # "0 (convolutions)", "3", "6 (final)"
    mean: float  # balanced accuracy, mean over folds and repeats
    std: float
    interval: tuple[float, float]  # bootstrap 95% over speakers, out of fold
    scores: list[float] = field(default_factory=list)
    folds: int = 0  # k actually used (small classes can shrink it)


@dataclass
class LayerProbe:
    extractor: str
    params: dict[str, Any]
    layers: list[LayerScore]
    chance: float
    folds: int
    repeats: int
    n_speakers: int
    run_id: str | None = None

    def best(self) -> LayerScore:
        return max(self.layers, key=lambda s: s.mean)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "layer": s.layer,
                "name": s.name,
                "balanced_accuracy": round(s.mean, 4),
                "std": round(s.std, 4),
                "ci_low": round(s.interval[0], 4),
                "ci_high": round(s.interval[1], 4),
                "folds": self.folds,
                "repeats": self.repeats,
            }
            for s in self.layers
        ]

    def write_csv(self, path: Path) -> None:
        rows = self.rows()
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def figure(self) -> Any:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = [s.layer for s in self.layers]
        y = np.array([s.mean for s in self.layers])
        low = y - np.array([s.interval[0] for s in self.layers])
        high = np.array([s.interval[1] for s in self.layers]) - y
        figure, axis = plt.subplots(figsize=(7, 4))
        axis.errorbar(x, y, yerr=[low, high], marker="o", capsize=4, label="linear probe (95% CI)")
        axis.axhline(self.chance, color="grey", linestyle="--", label=f"chance {self.chance:.3f}")
        axis.set_xticks(x, [s.name for s in self.layers], rotation=20)
        axis.set_xlabel("encoder layer")
        axis.set_ylabel("balanced accuracy")
        model = self.params.get("model") or self.params.get("model_path") or "tiny.en"
        axis.set_title(
            f"{self.extractor} ({model}): {self.folds}-fold x {self.repeats}, "
            f"{self.n_speakers} development speakers"
        )
        axis.legend(loc="best")
        figure.tight_layout()
        return figure


def layers_params(extractor: str, params: dict[str, Any]) -> dict[str, Any]:
    """``whisper_layers`` parameters (every layer) for a ``whisper_encoder`` configuration."""
    if extractor not in ("whisper_encoder", "whisper_layers"):
        raise ConfigError(
            f"probe layers supports whisper_encoder (and whisper_layers), not {extractor!r}"
        )
    refused = sorted(set(params) & set(_REFUSED))
    if refused:
        raise ConfigError(f"probe layers scores every layer; drop --params {', '.join(refused)}")
    ignored = sorted(set(params) - set(_CARRIED))
    if ignored:  # compute_type: the hidden layers always run in float32 PyTorch
        log.info("probe layers ignores %s (hidden layers run in float32)", ", ".join(ignored))
    carried = {k: v for k, v in params.items() if k in _CARRIED}
    if carried.pop("model_path", ""):
        carried["model"] = params["model_path"]
    return {**carried, "layer": "all"}


def probe_layers(
    archive: str,
    *,
    extractor: str = "whisper_encoder",
    params: dict[str, Any] | None = None,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 0,
    target: str = "region",
    min_count: int = 5,
    C: float = 0.1,  # noqa: N803  (logreg's parameter name)
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> LayerProbe:
    """Score a linear probe on every layer; no MLflow (see ``run_probe`` for the logged run)."""
    if not Path(archive).exists():
        raise DataError(f"archive not found: {archive}")
    all_params = layers_params(extractor, dict(params or {}))
    config = RunConfig(
        archive=archive,
        target=target,
        min_count=min_count,
        seed=seed,
        extractor="whisper_layers",
        extractor_params=all_params,
        model="logreg",
        model_params={"C": C},
        jobs=jobs,
        cache_dir=cache_dir,
    )
    dataset, features = prepare_data(config, progress=progress)
    first = next(iter(features.features.values()))
    n_outputs = len(first) // (2 * _width(all_params))
    scores = [
        _score_layer(config, dataset, features, layer, n_outputs, folds, repeats)
        for layer in range(n_outputs)
    ]
    development = dataset.manifest[dataset.manifest["split"] != "test"]
    return LayerProbe(
        extractor=extractor,
        params=dict(params or {}),
        layers=scores,
        chance=1.0 / len(dataset.labels),
        folds=scores[0].folds,
        repeats=repeats,
        n_speakers=int(development["speakerid"].nunique()),
    )


def _score_layer(
    config: Any, dataset: Any, features: Any, layer: int, n_outputs: int, folds: int, repeats: int
) -> LayerScore:
    """Repeated k-fold of the probe on one layer's slice of the all-layer statistics."""
    layer_params = {**config.extractor_params, "layer": layer}
    sliced = FeatureSet(
        extractor=make_extractor("whisper_layers", layer_params),
        features={p: split_layers(v, n_outputs - 1)[layer] for p, v in features.features.items()},
    )
    layer_config = config.model_copy(update={"extractor_params": layer_params})
    result = cross_validate(layer_config, (dataset, sliced), folds=folds, repeats=repeats)
    name = str(layer)
    if layer == 0:
        name += " (convolutions)"
    elif layer == n_outputs - 1:
        name += " (final)"
    log.info("layer %s: balanced accuracy %.3f (%.3f-%.3f)", name, result.mean, *result.interval)
    return LayerScore(
        layer, name, result.mean, result.std, result.interval, result.scores, folds=result.folds
    )


def _width(params: dict[str, Any]) -> int:
    """d_model of the probed model: known for named models, else read from the model folder."""
    model = params.get("model", "tiny.en")
    if model in DIMS:
        return DIMS[model][0]

    return int(read_encoder_weights(f"{resolve_model_dir(model)}/model.bin")["conv1/bias"].shape[0])


def run_probe(out_dir: str | Path, **kwargs: Any) -> LayerProbe:
    """``probe_layers`` plus its CSV and PNG in ``out_dir``, logged as one MLflow run."""
    extractor = kwargs.get("extractor", "whisper_encoder")
    layers_params(extractor, dict(kwargs.get("params") or {}))  # fail before opening MLflow
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = tracking.client()
    tracking.check_reachable(client)
    model = (kwargs.get("params") or {}).get("model", "tiny.en")
    with open_run(
        client,
        EXPERIMENT,
        run_name=f"probe-layers-{extractor}-{Path(str(model)).name}",
        tags={"kind": "probe_layers", "extractor": extractor, "model": "logreg"},
    ) as tracker:
        tracker.log_params({k: v for k, v in kwargs.items() if k not in ("progress", "jobs")})
        probe = probe_layers(**kwargs)
        probe.write_csv(out / "layers.csv")
        figure = probe.figure()
        figure.savefig(out / "layers.png", dpi=120)
        for score in probe.layers:
            tracker.log_metrics(
                {
                    "balanced_accuracy": score.mean,
                    "ci_low": score.interval[0],
                    "ci_high": score.interval[1],
                },
                step=score.layer,
            )
        best = probe.best()
        tracker.log_metrics({"best_layer": float(best.layer), "best_balanced_accuracy": best.mean})
        tracker.log_artifact(out / "layers.csv")
        tracker.log_figure(figure, "layers.png")
    probe.run_id = tracker.run_id
    return probe
