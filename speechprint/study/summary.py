"""Plain-text lines about trials and studies; the CLI decides how to print them.

One trial line for serial runs, worker processes and the quick start alike.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import optuna
from optuna.trial import FrozenTrial


def pair_of(trial: FrozenTrial) -> str:
    """``whisper_layers+logreg``: the trial's extractor (its label, if the study gave one) and
    model."""
    fallback = f"{trial.user_attrs.get('extractor', '?')}+{trial.user_attrs.get('model', '?')}"
    return str(trial.user_attrs.get("pair", fallback))


def extractor_label(trial: FrozenTrial) -> str:
    """The trial's extractor as its study names it (its label, else its name)."""
    return pair_of(trial).rsplit("+", 1)[0]


def trial_line(study: optuna.Study, trial: FrozenTrial) -> str:
    """``trial    3 COMPLETE mfcc_deltas+logreg: val bal. acc. 0.412 (best 0.455)``.

    Inside a worker process the line starts with the worker's name.
    """
    pair = pair_of(trial)
    if trial.state.name == "COMPLETE":
        detail = f"{_measure(trial)} {trial.value:.3f} (best {_best_value(study, trial):.3f})"
    else:
        detail = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason", "")
    worker = multiprocessing.current_process().name
    prefix = (
        f"[{worker.removeprefix('speechprint-')}] " if worker.startswith("speechprint-") else ""
    )
    return f"{prefix}trial {trial.number:4d} {trial.state.name} {pair}: {detail}"


def _best_value(study: optuna.Study, trial: FrozenTrial) -> float:
    try:
        return float(study.best_value)
    except ValueError:  # another worker's view may not hold a completed trial yet
        return float(trial.value or 0.0)  # a trial summarised has finished with a value


def state_counts(study: optuna.Study) -> str:
    """``8 complete, 2 pruned``."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items())) or "no trials"


def best_line(study: optuna.Study) -> str:
    """The best trial by its objective (k-fold mean or validation), with its parameters."""
    try:
        best = study.best_trial
    except ValueError:
        return "no completed trial yet"
    params = ", ".join(f"{k}={short(v)}" for k, v in best.params.items())
    return (
        f"best trial {best.number}: {_measure(best)} {best.value:.3f} ({pair_of(best)}); {params}"
    )


def _measure(trial: FrozenTrial) -> str:
    folds = trial.user_attrs.get("cv_folds")
    return f"{folds}-fold cv bal. acc." if folds else "val bal. acc."


def short(value: Any) -> str:
    """Floats to four significant digits, everything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
