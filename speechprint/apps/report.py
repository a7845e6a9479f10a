"""Study reports: figures people would rather look at than read, plus a short Markdown summary."""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# No matplotlib.use() here: importing a library must not switch a notebook's backend. Without a
# display matplotlib picks the non-interactive Agg backend by itself.
import matplotlib.pyplot as plt
import pandas as pd

from speechprint.evaluation.metrics import plot_confusion
from speechprint.findings.run import run_findings
from speechprint.release.compare import compare_pairs, markdown_table
from speechprint.release.promote import DEFAULT_MODEL_NAME
from speechprint.study.storage import load_study
from speechprint.tracking import store as tracking


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_pairs(frame: pd.DataFrame, chance: float | None, title: str) -> plt.Figure:
    """Best validation balanced accuracy per extractor x model pair (horizontal bars)."""
    frame = frame.dropna(subset=["best_balanced_accuracy"]).sort_values("best_balanced_accuracy")
    labels = [f"{e} + {m}" for e, m in zip(frame["extractor"], frame["model"])]
    figure, axes = plt.subplots(figsize=(8, 0.45 * max(len(labels), 2) + 1.5))
    axes.barh(labels, frame["best_balanced_accuracy"], color="tab:blue")
    if chance is not None:
        axes.axvline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.3f}")
        axes.legend(loc="lower right")
    axes.set_xlabel("best validation balanced accuracy")
    axes.set_title(title)
    axes.set_xlim(0, 1)
    return figure


def plot_recall(per_class_recall: dict[str, float], chance: float, title: str) -> plt.Figure:
    items = sorted(per_class_recall.items(), key=lambda item: item[1])
    figure, axes = plt.subplots(figsize=(8, 0.35 * max(len(items), 2) + 1.5))
    axes.barh([k for k, _ in items], [v for _, v in items], color="tab:green")
    axes.axvline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.3f}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("recall on the test split")
    axes.set_title(title)
    axes.legend(loc="lower right")
    return figure


def _promoted_version(client: Any, study: str, model_name: str) -> Any | None:
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
    except Exception:  # noqa: BLE001 - no registered model yet
        return None
    ours = [v for v in versions if v.tags.get("study") == study]
    if not ours:
        return None
    # Search results do not carry aliases: read each version back to see them.
    full = [client.get_model_version(model_name, v.version) for v in ours]
    holders = [v for v in full if v.aliases]
    return max(holders or full, key=lambda v: int(v.version))


def write_report(
    study_name: str,
    out_dir: str | Path,
    *,
    storage: str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    findings: bool = False,
) -> Path:
    """Write PNG figures and ``summary.md`` to ``out_dir``; log them on the study's parent run.

    ``findings``: also the linguist's sections (``speechprint findings``) for the study's best
    trial, in ``out_dir/findings/`` (they retrain the trial by fold: minutes, not seconds).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(study_name, storage)
    client = tracking.client()
    report = _Report(out, [f"# Study `{study_name}`", ""])

    _trials_section(report, study)
    _optuna_figures(report, study)
    chance = _promoted_section(report, client, study_name, model_name)
    _pairs_section(report, study_name, chance)
    if findings:
        _findings_section(report, study_name, storage)
    summary = report.write_summary()

    parent = _latest_parent_run(client, study_name)
    if parent is not None:
        for path in [*report.figures, summary]:
            client.log_artifact(parent, str(path), "report")
    return summary


def _findings_section(report: _Report, study_name: str, storage: str | None) -> None:
    result = run_findings(report.out / "findings", study=study_name, storage=storage)
    report.lines += ["## Findings", ""]
    for section in result.sections:
        report.lines += [f"### {section.title}", "", section.summary, ""]
    report.lines += [
        f"All of it, with figures: [findings/{result.page.name}](findings/{result.page.name})",
        "",
    ]


def _figure_of(axes: Any) -> plt.Figure:
    """The figure an Optuna plot drew on (its axes')."""
    figure: plt.Figure = axes.figure
    return figure


@dataclass
class _Report:
    """What a report has so far: the summary's lines and the figures written to `out`."""

    out: Path
    lines: list[str]
    figures: list[Path] = field(default_factory=list)

    def figure(self, figure: plt.Figure, name: str) -> None:
        self.figures.append(_save(figure, self.out / name))

    def write_summary(self) -> Path:
        lines = [*self.lines, "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in self.figures]
        summary = self.out / "summary.md"
        summary.write_text("\n".join(lines) + "\n")
        return summary


def _trials_section(report: _Report, study: Any) -> None:
    """One line: how many trials ended in each state."""
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    report.lines += ["Trials: " + counts, ""]


def _optuna_figures(report: _Report, study: Any) -> None:
    """Optimisation history and parameter importances, once some trial has a value."""
    import optuna.visualization.matplotlib as optuna_plots

    if not any(t.value is not None for t in study.trials):
        return
    # Optuna warns that its matplotlib plots are experimental and, per parameter, that a
    # conditional parameter seen in few trials has a rough importance: one line in the
    # summary says so instead of a screenful of warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = optuna_plots.plot_optimization_history(study, target_name="val balanced accuracy")
        report.figure(_figure_of(axes), "optimization_history.png")
        try:
            axes = optuna_plots.plot_param_importances(study, target_name="val balanced accuracy")
            report.figure(_figure_of(axes), "param_importances.png")
            report.lines += [
                "Parameter importances are rough for parameters that only some models have "
                "(few trials each).",
                "",
            ]
        except Exception as error:  # noqa: BLE001 - needs enough varied trials
            report.lines.append(f"(parameter importances not available: {error})")


def _promoted_section(report: _Report, client: Any, study: str, model_name: str) -> float | None:
    """The promoted model's test figures and table; returns its chance level (None: no model)."""
    version = _promoted_version(client, study, model_name)
    if version is None:
        return None
    test = _test_metrics(client, version)
    if test is None:
        return None
    chance = float(test["chance"])
    title = f"{model_name} v{version.version}"
    confusion = plot_confusion(
        test["confusion"], test["labels"], normalized=True, title=f"{title}: test"
    )
    report.figure(confusion, "confusion_test.png")
    report.figure(plot_recall(test["per_class_recall"], chance, title), "per_class_recall_test.png")
    report.lines += _promoted_lines(test, version, model_name)
    return chance


def _test_metrics(client: Any, version: Any) -> dict[str, Any] | None:
    """The test metrics promotion stored with a model version (None for older versions)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(version.run_id, "test_metrics.json", tmp)
            metrics: dict[str, Any] = json.loads(Path(path).read_text())
            return metrics
        except Exception:  # noqa: BLE001 - older version without the artifact
            return None


def _promoted_lines(test: dict[str, Any], version: Any, model_name: str) -> list[str]:
    low, high = test["balanced_accuracy_ci"]
    majority = test["majority_baseline"]
    return [
        f"## Promoted model: `{model_name}` v{version.version} "
        f"({', '.join(version.aliases) or 'no alias'})",
        "",
        f"Trial {version.tags.get('trial')}: {version.tags.get('extractor')} + "
        f"{version.tags.get('model')}, chosen by {version.tags.get('selection_metric', 'validation')} "
        f"{version.tags.get('selection_score', '?')[:6]}, trained on "
        f"{version.tags.get('trained_on', 'train')}; scored once on the held-out test split.",
        "",
        "| metric (test) | value |",
        "| --- | --- |",
        f"| balanced accuracy | {test['balanced_accuracy']:.3f} (95% CI {low:.3f}-{high:.3f}) |",
        f"| macro-F1 | {test['macro_f1']:.3f} |",
        f"| accuracy | {test['accuracy']:.3f} |",
        f"| top-3 accuracy | {test['top3_accuracy']:.3f} |",
        f"| chance (balanced accuracy) | {float(test['chance']):.3f} |",
        f"| majority class: accuracy / balanced accuracy | {majority['accuracy']:.3f} / "
        f"{majority['balanced_accuracy']:.3f} |",
        "",
    ]


def _pairs_section(report: _Report, study: str, chance: float | None) -> None:
    """Best validation score per extractor x model pair: a figure and a table."""
    pairs = compare_pairs(study)
    if not len(pairs):
        return
    report.figure(plot_pairs(pairs, chance, f"{study}: extractor x model"), "pairs.png")
    report.lines += ["## Extractor x model (validation)", "", markdown_table(pairs), ""]


def _latest_parent_run(client: Any, study: str) -> str | None:
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.kind = 'study'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
