"""Study throughput: trials per minute, share of pruned trials, and LSTM seconds per epoch.

    python benchmarks/bench_study.py --archive ../shared/data/saa8k            # fresh 30-trial run
    python benchmarks/bench_study.py --study studies/saa-region17-pretrained.yaml --cv-vs-split
    python benchmarks/bench_study.py --summarise studies/saa-region17.db       # an existing study

``--cv-vs-split`` runs the study twice side by side, as written (cross-validated trials) and with
``cv:`` removed (one validation split), and prints both throughputs and their ratio.

A fresh run uses temporary MLflow/Optuna stores and the normal feature cache (extract first with
`speechprint features extract` so the figure measures training, not decoding).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]


def summarise(study: optuna.Study) -> str:
    trials = [t for t in study.trials if t.datetime_complete is not None]
    if not trials:
        return "no finished trials"
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    minutes = (end - start).total_seconds() / 60
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    return (
        f"{len(trials)} trials in {minutes:.1f} min = {len(trials) / minutes:.2f} trials/min; "
        f"pruned {states['PRUNED'] / len(trials):.0%}, failed {states['FAIL']}, "
        f"best objective (k-fold mean or validation balanced accuracy) {study.best_value:.3f}"
    )


def lstm_seconds_per_epoch(archive: str, epochs: int = 3) -> float:
    """The notebook's LSTM (hidden 128, 2 layers, 200 frames) on the real split."""
    from speechprint.train import RunConfig, TrainConfig, run
    from speechprint.train.prepare import prepare_data

    config = RunConfig(
        archive=archive,
        extractor="mfcc_seq",
        model="lstm",
        min_count=5,
        model_params={"hidden": 128, "layers": 2},
        train=TrainConfig(epochs=epochs, max_frames=200, patience=epochs),
    )
    data = prepare_data(config, progress=False)
    started = time.perf_counter()
    run(config, data)
    return (time.perf_counter() - started) / epochs


def rate(study: optuna.Study) -> float:
    """Finished trials per minute of wall time."""
    trials = [t for t in study.trials if t.datetime_complete is not None]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return len(trials) / max((end - start).total_seconds() / 60, 1e-9)


def fresh_run(study_file: str, archive: str, n_trials: int, *, cv: bool) -> optuna.Study:
    """The study in temporary MLflow/Optuna stores (features from the usual cache)."""
    from speechprint.study.runner import run_study
    from speechprint.study.spec import StudySpec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = StudySpec.from_yaml(study_file)
    if not cv:
        spec = spec.model_copy(update={"cv": None})
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.environ["SPEECHPRINT_ARTIFACT_ROOT"] = f"{tmp}/mlruns"
        os.chdir(tmp)
        try:
            return run_study(spec, archive=archive, n_trials=n_trials).study
        finally:
            os.chdir(here)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(REPO.parent / "shared/data/saa8k"))
    parser.add_argument("--study", default=str(REPO / "studies/saa-region17.yaml"))
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--summarise", help="Optuna storage (URL or .db file) to summarise only")
    parser.add_argument(
        "--cv-vs-split",
        action="store_true",
        help="run with and without the study's cv: side by side",
    )
    args = parser.parse_args()
    # Absolute paths: a fresh run works inside a temporary folder (its stores live there).
    args.archive = str(Path(args.archive).resolve())
    args.study = str(Path(args.study).resolve())
    if args.summarise:
        url = (
            args.summarise
            if "://" in args.summarise
            else f"sqlite:///{Path(args.summarise).resolve()}"
        )
        for summary in optuna.study.get_all_study_summaries(url):
            print(
                f"{summary.study_name}: {summarise(optuna.load_study(study_name=summary.study_name, storage=url))}"
            )
    elif args.cv_vs_split:
        with_cv = fresh_run(args.study, args.archive, args.n_trials, cv=True)
        without = fresh_run(args.study, args.archive, args.n_trials, cv=False)
        print(f"with cv:    {summarise(with_cv)}")
        print(f"without cv: {summarise(without)}")
        print(f"cost of cross-validation: {rate(without) / rate(with_cv):.1f}x per trial")
        return
    else:
        outcome = fresh_run(args.study, args.archive, args.n_trials, cv=True)
        print(f"{Path(args.study).stem} on {args.archive}: {summarise(outcome)}")
    print(
        f"LSTM (hidden 128, 2 layers, 200 frames): {lstm_seconds_per_epoch(args.archive):.2f} s/epoch "
        f"incl. validation, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
