"""`speechprint study run|show`, `speechprint runs compare` and `speechprint run EXPERIMENT`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from speechprint.cli.common import INTERRUPTED, console, fail, print_trial
from speechprint.core.errors import ConfigError

app = typer.Typer(help="Launch, resume and inspect Optuna studies (logged to MLflow).")
runs_app = typer.Typer(help="Compare MLflow runs of a study.")


@app.command("run")
def study_run(
    study_file: Path = typer.Argument(..., help="A study definition, e.g. studies/quickstart.yaml"),
    archive: str | None = typer.Option(None, help="Archive folder (overrides the study's)."),
    n_trials: int | None = typer.Option(
        None, help="Total budget of finished trials; a repeat runs only the missing ones."
    ),
    timeout: float | None = typer.Option(None, help="Stop starting trials after S seconds."),
    storage: str | None = typer.Option(
        None, help="Optuna storage: an RDB URL or a journal file path (default: under studies/)."
    ),
    workers: int = typer.Option(1, help="Worker processes sharing the study on this machine."),
    jobs: int | None = typer.Option(None, help="Processes for feature extraction."),
    cache_dir: str | None = typer.Option(None, help="Feature cache folder."),
    new_version: bool = typer.Option(
        False,
        "--new-version",
        help="When the study file no longer matches the stored study, run NAME-v2 (or the first "
        "version that is new or matches) instead of refusing.",
    ),
) -> None:
    """Create or resume a study and run the trials its budget still misses."""
    from speechprint.catalogue.dataset import check_data
    from speechprint.study.spec import StudySpec, check_options

    with fail.on_user_errors():
        # The file, the options and the data first (light): a typo is answered in a fraction
        # of a second, before torch, MLflow and scikit-learn are imported.
        spec = StudySpec.from_yaml(study_file)
        check_options(n_trials=n_trials, timeout=timeout, workers=workers, jobs=jobs)
        check_data(spec.with_archive(archive).data, source=spec.source)
        from speechprint.study.runner import run_study
        from speechprint.study.summary import best_line, state_counts

        outcome = run_study(
            spec,
            archive=archive,
            n_trials=n_trials,
            timeout=timeout,
            storage=storage,
            workers=workers,
            jobs=jobs,
            cache_dir=cache_dir,
            on_trial=print_trial,
            new_version=new_version,
        )
    study = outcome.study
    console.print(f"[bold]{study.study_name}[/]: ran {outcome.ran} trial(s); {state_counts(study)}")
    console.print(best_line(study))
    if outcome.interrupted:
        resume = [f"speechprint study run {study_file}"]
        resume += [f"--archive {archive}"] if archive else []
        resume += [f"--n-trials {n_trials}"] if n_trials is not None else []
        resume += [f"--storage {storage}"] if storage else []
        resume += [f"--workers {workers}"] if workers > 1 else []
        resume += ["--new-version"] if new_version else []
        console.print(f"[yellow]Interrupted.[/] Resume with: {' '.join(resume)}")
        raise typer.Exit(INTERRUPTED)


@app.command("show")
def study_show(
    name: str = typer.Argument(..., help="Study name."),
    storage: str | None = typer.Option(None, help="Optuna storage (default: under studies/)."),
    top: int = typer.Option(10, help="How many of the best trials to list."),
) -> None:
    """List a study's best trials."""
    from speechprint.study.identity import stored_transfer
    from speechprint.study.storage import load_study
    from speechprint.study.summary import extractor_label, short, state_counts

    with fail.on_user_errors():
        study = load_study(name, storage)
    console.print(f"[bold]{name}[/]: {state_counts(study)}")
    complete = sorted(
        (t for t in study.trials if t.value is not None),
        key=lambda t: float(t.value or 0),
        reverse=True,
    )[:top]
    cross_validated = any("cv_folds" in t.user_attrs for t in complete)
    table = Table(
        "trial",
        "cv bal. acc." if cross_validated else "val bal. acc.",
        "macro-F1",
        "extractor",
        "model",
        "params",
    )
    for trial in complete:
        params = {k: v for k, v in trial.params.items() if k != "pair"}
        f1 = trial.user_attrs.get("cv_macro_f1_mean", trial.user_attrs.get("val_macro_f1"))
        table.add_row(
            str(trial.number),
            f"{trial.value:.3f}",
            f"{float('nan') if f1 is None else f1:.3f}",
            extractor_label(trial),
            trial.user_attrs.get("model", "?"),
            ", ".join(f"{k}={short(v)}" for k, v in params.items()),
        )
    console.print(table)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    for trial in failed[-5:]:
        reason = trial.user_attrs.get("fail_reason", "no reason recorded")
        console.print(f"[red]trial {trial.number} failed[/]: {reason}")
    if (section := stored_transfer(study)) is not None:
        floor = "" if section.min_score is None else f"at least {section.min_score}, "
        console.print(
            f"promote checks {section.corpus} ({section.archive}, {section.clips_per_speaker} "
            f"clips a speaker): {floor}at most {section.max_drop} below the alias's holder",
            soft_wrap=True,
        )


@runs_app.command("compare")
def runs_compare(
    study: str = typer.Option(..., "--study", help="Study (MLflow experiment) name."),
    csv: bool = typer.Option(False, "--csv", help="Print CSV (the validation table only)."),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print Markdown tables (docs/RESULTS.md)."
    ),
    paired: tuple[int, int] | None = typer.Option(
        None, help="Two trial numbers: their paired difference on out-of-fold predictions."
    ),
    storage: str | None = typer.Option(None, help="Optuna storage (for --paired)."),
) -> None:
    """Best validation balanced accuracy per extractor x model pair (with k-fold intervals), then
    the test scores of the study's promoted trials; or (--paired A B) two trials compared on the
    same development speakers, out of fold."""
    from speechprint.release.compare import compare_pairs, markdown_table, test_scores

    if paired is not None:
        with fail.on_user_errors():
            console.print(_paired_line(study, storage, *paired))
        return
    with fail.on_user_errors():
        frame = compare_pairs(study)
        tested = test_scores(study)
    if csv:
        typer.echo(frame.to_csv(index=False).rstrip())
        return
    if markdown:
        typer.echo(
            f"Selection: best trial per extractor x model of `{study}` (its k-fold mean "
            "when cross-validated, else its validation score)\n"
        )
        typer.echo(markdown_table(frame))
        if len(tested):
            typer.echo("\nTest split (speakers never used for tuning): promoted trials\n")
            typer.echo(markdown_table(tested))
        return
    console.print(
        comparison_table(frame, f"{study}: best trial per extractor x model (selection score)")
    )
    if len(tested):
        console.print(comparison_table(tested, f"{study}: promoted trials on the test split"))
    else:
        console.print("no trial of this study is scored on test yet: `speechprint promote` does it")


def _paired_line(study_name: str, storage: str | None, a: int, b: int) -> str:
    from speechprint.core.errors import ConfigError
    from speechprint.evaluation.evidence import oof_rows, paired_oof
    from speechprint.study.storage import load_study
    from speechprint.tracking import store as tracking

    study = load_study(study_name, storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    missing = [n for n in (a, b) if n not in trials]
    if missing:
        raise ConfigError(f"study {study_name!r} has no trial {missing[0]}")
    client = tracking.client()
    difference = paired_oof(oof_rows(client, trials[a]), oof_rows(client, trials[b]))
    return "out of fold, " + difference.verdict(f"trial {a}", f"trial {b}")


def comparison_table(frame: Any, title: str) -> Table:
    """A ``runs compare`` frame as the terminal shows it: every column under its own header
    (``release.compare`` defines both tables once, for the terminal and for Markdown)."""
    from speechprint.release.compare import headers
    from speechprint.study.summary import short

    table = Table(title=title)
    for header in headers(frame):
        table.add_column(header, no_wrap=True)
    for row in frame.itertuples(index=False):
        table.add_row(*("-" if v is None or v != v or v == "" else short(v) for v in row))
    return table


def experiment_run(
    experiment_file: Path = typer.Argument(
        ..., help="A run config, e.g. experiments/seed-mlp.yaml"
    ),
    archive: str | None = typer.Option(None, help="Archive folder (overrides the config's)."),
    jobs: int | None = typer.Option(None, help="Processes for feature extraction."),
    cache_dir: str | None = typer.Option(None, help="Feature cache folder."),
    cv: str | None = typer.Option(
        None, help="Also score by repeated stratified k-fold on train+val, e.g. 5x2."
    ),
) -> None:
    """Run one fixed experiment, logged to MLflow like a trial."""
    from speechprint.catalogue.dataset import check_data
    from speechprint.catalogue.experiment import load_experiment

    with fail.on_user_errors():
        folds_repeats = _parse_cv(cv) if cv else None
        # The file and its data first (light), before torch, MLflow and scikit-learn.
        _, config = load_experiment(experiment_file, archive=archive)
        check_data(config, source=str(experiment_file))
        from speechprint.apps.experiment import run_experiment

        result, run_id = run_experiment(
            experiment_file, archive=archive, jobs=jobs, cache_dir=cache_dir, cv=folds_repeats
        )
    val = result.val
    console.print(
        f"[bold]{experiment_file.stem}[/] ({result.config.extractor} + {result.config.model}): "
        f"val balanced accuracy {val['balanced_accuracy']:.3f} "
        f"(chance {val['chance']:.3f}), macro-F1 {val['macro_f1']:.3f}"
    )
    _print_cost(result.epoch_seconds, result.seconds)
    if result.test is not None:
        test = result.test
        low, high = test.get("balanced_accuracy_ci", (float("nan"), float("nan")))
        console.print(
            f"test balanced accuracy {test['balanced_accuracy']:.3f} [95% CI {low:.3f}-{high:.3f}], "
            f"accuracy {test['accuracy']:.3f}, majority-class accuracy "
            f"{test['majority_baseline']['accuracy']:.3f}"
        )
    if result.cv is not None:
        low, high = result.cv.interval
        console.print(
            f"{result.cv.folds}-fold x {result.cv.repeats} balanced accuracy "
            f"{result.cv.mean:.3f} +- {result.cv.std:.3f} [95% CI {low:.3f}-{high:.3f}]"
        )
    console.print(f"MLflow run: {run_id}")


def _print_cost(epochs: list[float], seconds: float) -> None:
    """What training cost here, per epoch (validation scoring included), as measured."""
    if epochs:
        console.print(
            f"cost: {len(epochs)} epochs, {sum(epochs) / len(epochs):.1f} s per epoch "
            f"(min {min(epochs):.1f}, max {max(epochs):.1f}); the run {seconds:.0f} s"
        )


def _parse_cv(text: str) -> tuple[int, int]:
    try:
        folds, _, repeats = text.lower().partition("x")
        parsed = int(folds), int(repeats or 1)
    except ValueError:
        raise ConfigError(f"--cv expects FOLDSxREPEATS such as 5x2, got {text!r}") from None
    if parsed[0] < 2 or parsed[1] < 1:  # as a study file's cv: folds >= 2, repeats >= 1
        raise ConfigError(f"--cv needs at least 2 folds and 1 repeat, got {text!r}")
    return parsed
