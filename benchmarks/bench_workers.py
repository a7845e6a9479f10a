"""Wall time of the same study with 1 and with N worker processes (``study run --workers``).

    python benchmarks/bench_workers.py --archive ../shared/data/saa8k [--n-trials 8] [--workers 2]

Both runs train exactly the same configurations: they are sampled once up front and enqueued in
each run's fresh storage, and pruning is off, so only the parallelism differs. Features are
extracted into the shared cache first, so both runs measure training (plus worker start-up).
Each run gets its own journal file and MLflow store in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from speechprint.study.runner import prepare_features, run_study
from speechprint.study.space import suggest_config
from speechprint.study.spec import PrunerSpec, StudySpec
from speechprint.study.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = {
    "name": "bench-workers",
    "data": {"archive": "../shared/data/saa8k", "target": "region", "min_count": 5, "seed": 0},
    "extractors": ["mfcc_mean", "mfcc_seq"],
    "models": ["logreg", "mlp", "lstm"],
    "budget": {"n_trials": 8},
    "train": {"epochs": 20, "max_frames": 200, "patience": 5},
}


def load_spec(path: str | None) -> StudySpec:
    default = REPO / "studies" / "saa-region17.yaml"
    if path:
        spec = StudySpec.from_yaml(path)
    elif default.exists():
        spec = StudySpec.from_yaml(default)
    else:
        spec = StudySpec.from_dict(BUILT_IN, source="<built-in>")
    # The same work in both runs: pruning depends on trial order, which parallelism changes.
    return spec.model_copy(update={"pruner": PrunerSpec(name="none")})


def sample_configurations(spec: StudySpec, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` parameter sets from the study's space, drawn once for both runs."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = []
    for _ in range(n):
        trial = study.ask()
        suggest_config(trial, spec)
        params.append(trial.params)
    return params


def timed_run(
    spec: StudySpec,
    params: list[dict[str, Any]],
    *,
    workers: int,
    archive: str,
    cache_dir: str | None,
    root: Path,
) -> tuple[float, optuna.Study]:
    folder = root / f"workers-{workers}"
    folder.mkdir()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["SPEECHPRINT_ARTIFACT_ROOT"] = str(folder / "mlruns")
    storage = str(folder / "study.journal.log")
    study = optuna.create_study(
        study_name=spec.name, storage=open_storage(storage), direction="maximize"
    )
    for p in params:
        study.enqueue_trial(p)
    started = time.perf_counter()
    outcome = run_study(
        spec,
        workers=workers,
        archive=archive,
        n_trials=len(params),
        storage=storage,
        cache_dir=cache_dir,
    )
    return time.perf_counter() - started, outcome.study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(REPO.parent / "shared" / "data" / "saa8k"))
    parser.add_argument("--study", default=None, help="default: studies/saa-region17.yaml")
    parser.add_argument("--n-trials", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the usual)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    spec = load_spec(args.study)
    params = sample_configurations(spec, args.n_trials)
    started = time.perf_counter()
    prepare_features(spec.with_archive(args.archive), cache_dir=args.cache_dir)
    print(f"features ready in {time.perf_counter() - started:.1f} s (cache)")
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for workers in (1, args.workers):
            seconds, study = timed_run(
                spec,
                params,
                workers=workers,
                archive=args.archive,
                cache_dir=args.cache_dir,
                root=Path(tmp),
            )
            states = [t.state.name for t in study.trials]
            print(
                f"{workers} worker(s): {seconds:7.1f} s wall for {len(states)} trials "
                f"({', '.join(f'{states.count(s)} {s.lower()}' for s in sorted(set(states)))})"
            )
            times[workers] = seconds
    pairs = sorted({p["pair"] for p in params})
    print(
        f"study {spec.name} ({spec.source}), {args.n_trials} trials, pairs {pairs}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(f"speed-up with {args.workers} workers: {times[1] / times[args.workers]:.2f}x")


if __name__ == "__main__":
    main()
