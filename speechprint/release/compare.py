"""Compare a study's trials per extractor x model pair, read back from MLflow."""

from __future__ import annotations

from typing import Any

import pandas as pd

from speechprint.core.errors import ConfigError
from speechprint.tracking import store as tracking

CANDIDATE_KINDS = ("refit", "ensemble")
# The two tables, defined once: each column's key (the frame's, CSV's and Markdown's header) and
# its short header on the terminal. Frames are built from these keys and the terminal looks its
# headers up by key, so a column can never sit under another's header.
# Each pair's best selection score: a cross-validated trial's k-fold mean, else its validation score.
PAIR_TABLE = {
    "extractor": "extractor",
    "model": "model",
    "best_balanced_accuracy": "bal. acc.",
    "macro_f1": "macro-F1",
    "ci95": "95% CI",
    "trials": "trials",
    "complete": "done",
    "pruned": "pruned",
    "failed": "failed",
}
TEST_TABLE = {
    "trial": "trial",
    "extractor": "extractor",
    "model": "model",
    "selected_by": "selected by",
    "selection_score": "selection",
    "test_balanced_accuracy": "test bal. acc.",
    "test_ci95": "95% CI",
    "vs_linear_baseline_paired": "vs linear baseline (paired)",
    "test_macro_f1": "macro-F1",
    "test_accuracy": "accuracy",
    "majority_accuracy": "majority acc.",
    "chance": "chance",
    "seed_test_scores": "seed test scores",
    "registered_as": "registered as",
}
_PAIR_COLUMNS = list(PAIR_TABLE)


def headers(frame: pd.DataFrame) -> list[str]:
    """The terminal's header of each of ``frame``'s columns, in its order."""
    short = {**PAIR_TABLE, **TEST_TABLE}
    return [short.get(str(column), str(column)) for column in frame.columns]


def compare_pairs(study: str) -> pd.DataFrame:
    """Best selection score (k-fold mean or validation balanced accuracy, with its macro-F1) and
    trial counts per pair.

    Reads the child runs of the study's experiment, so it shows what MLflow holds, across every
    invocation and worker.
    """
    client = tracking.client()
    experiment = _experiment(client, study)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.trial_number != ''", max_results=50000
    )
    # Refit and ensemble runs of promotion carry test scores, not selection scores: not trials.
    rows = [_trial_row(run) for run in runs if run.data.tags.get("kind") not in CANDIDATE_KINDS]
    if not rows:
        return pd.DataFrame(columns=_PAIR_COLUMNS)
    frame = pd.DataFrame(rows)
    out = [
        _pair_row(extractor, model, group)
        for (extractor, model), group in frame.groupby(["extractor", "model"], sort=True)
    ]
    result = pd.DataFrame(out, columns=_PAIR_COLUMNS)
    return result.sort_values("best_balanced_accuracy", ascending=False, na_position="last")


def _experiment(client, study: str):
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        raise ConfigError(f"no MLflow experiment named {study!r} at {tracking.tracking_uri()}")
    return experiment


def _trial_row(run) -> dict:
    """One trial's run: its pair, state, best validation scores and interval."""
    metrics, tags = run.data.metrics, run.data.tags
    return {
        "extractor": tags.get("extractor_label", tags.get("extractor", "?")),
        "model": tags.get("model", "?"),
        "state": tags.get("state", run.info.status),
        # The study's own score: the k-fold mean of a cross-validated trial, else validation.
        "val_balanced_accuracy": metrics.get(
            "cv/balanced_accuracy_mean", metrics.get("best/val_balanced_accuracy")
        ),
        "val_macro_f1": metrics.get("cv/macro_f1_mean", metrics.get("best/val_macro_f1")),
        # k-fold interval when the study scored by k-fold, else the bootstrap interval of the
        # validation split
        "ci_low": metrics.get(
            "cv/balanced_accuracy_ci_low", metrics.get("best/val_balanced_accuracy_ci_low")
        ),
        "ci_high": metrics.get(
            "cv/balanced_accuracy_ci_high", metrics.get("best/val_balanced_accuracy_ci_high")
        ),
    }


def _pair_row(extractor: str, model: str, group: pd.DataFrame) -> dict:
    """One pair's line: its best complete trial and how its trials ended."""
    complete = group[group["state"] == "COMPLETE"].dropna(subset=["val_balanced_accuracy"])
    best = complete.loc[complete["val_balanced_accuracy"].idxmax()] if len(complete) else None
    ci = ""
    if best is not None and pd.notna(best["ci_low"]):
        ci = f"{best['ci_low']:.3f}-{best['ci_high']:.3f}"
    return {
        "extractor": extractor,
        "model": model,
        "best_balanced_accuracy": round(float(best["val_balanced_accuracy"]), 4)
        if best is not None
        else None,
        "macro_f1": round(float(best["val_macro_f1"]), 4)
        if best is not None and pd.notna(best["val_macro_f1"])
        else None,
        "ci95": ci,
        "trials": len(group),
        "complete": int((group["state"] == "COMPLETE").sum()),
        "pruned": int((group["state"] == "PRUNED").sum()),
        "failed": int((group["state"] == "FAIL").sum()),
    }


def test_scores(study: str) -> pd.DataFrame:
    """Candidates of ``study`` scored on the test split by ``speechprint promote``, best first.

    Only promotion measures test scores, once per refit candidate, so this table is the record of
    what the held-out speakers said about models chosen by their selection score; the paired
    difference against the study's linear baseline is on the same test speakers.
    """
    client = tracking.client()
    experiment = client.get_experiment_by_name(study)
    columns = list(TEST_TABLE)
    if experiment is None:
        raise ConfigError(f"no MLflow experiment named {study!r} at {tracking.tracking_uri()}")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="metrics.`test/balanced_accuracy` >= 0",
        max_results=50000,
    )
    seeds = _seed_scores(runs)
    rows = [
        _test_row(
            run,
            seeds.get(run.data.tags.get("refit_of_run", ""), "")
            if "model_seeds" in run.data.tags
            else "",
        )
        for run in runs
        if "model_seed" not in run.data.tags
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("test_balanced_accuracy", ascending=False)


def _seed_scores(runs: list[Any]) -> dict[str, str]:
    """Test scores of each seed refit of a seed-averaged trial, by the trial run they refit (the
    averaged run's ``refit_of_run`` too), in seed order: "0.532 0.594 0.508" (how much of a test
    score is the seed's)."""
    by_trial: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        tags = run.data.tags
        if "model_seed" in tags:
            trial = tags.get("refit_of_run", "")
            score = run.data.metrics["test/balanced_accuracy"]
            by_trial.setdefault(trial, []).append((int(tags["model_seed"]), score))
    return {
        trial: " ".join(f"{score:.3f}" for _, score in sorted(scores))
        for trial, scores in by_trial.items()
    }


def _test_row(run: Any, seed_scores: str) -> dict[str, Any]:
    metrics, tags = run.data.metrics, run.data.tags
    value = {k: round(float(v), 4) for k, v in metrics.items()}.get
    low = metrics.get("test/balanced_accuracy_ci_low")
    high = metrics.get("test/balanced_accuracy_ci_high")
    return {
        "trial": tags.get("trial_number", ""),
        "extractor": tags.get("extractor_label", tags.get("extractor", "?")),
        "model": tags.get("model", "?"),
        "selected_by": tags.get("selection_metric", ""),
        "selection_score": _rounded(tags.get("selection_score")),
        "test_balanced_accuracy": value("test/balanced_accuracy"),
        "test_ci95": "" if low is None or high is None else f"{low:.3f}-{high:.3f}",
        "vs_linear_baseline_paired": tags.get("paired_vs_linear_baseline", ""),
        "test_macro_f1": value("test/macro_f1"),
        "test_accuracy": value("test/accuracy"),
        "majority_accuracy": value("test/majority_accuracy"),
        "chance": value("test/chance"),
        "seed_test_scores": seed_scores,
        "registered_as": tags.get("registered_as", ""),
    }


def _rounded(text: str | None) -> float | None:
    return None if text is None else round(float(text), 4)


def markdown_table(frame: pd.DataFrame) -> str:
    """A Markdown table of a comparison frame (for reports and docs/RESULTS.md)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])
