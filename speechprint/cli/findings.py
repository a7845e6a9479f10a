"""`speechprint findings`: what a promoted model (or a trial) says about accents, on one page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from speechprint.cli.common import console, fail


def findings_command(
    model: str = typer.Option(
        "models:/speechprint-accent@champion",
        help="Registered model URI, or runs:/RUN_ID of an experiment's run.",
    ),
    study: str | None = typer.Option(None, "--study", help="Analyse a study's trial instead."),
    trial: int | None = typer.Option(None, help="Trial number (default: the study's best)."),
    storage: str | None = typer.Option(None, help="Optuna storage of --study."),
    archive: str | None = typer.Option(None, help="Archive folder (default: the run's)."),
    target: str | None = typer.Option(None, help="Retrain for another target (native_language)."),
    predictions: str = typer.Option("oof", help="oof (retrain by fold) or test (model as is)."),
    folds: int = typer.Option(5, help="Folds for out-of-fold predictions."),
    calibrate: bool = typer.Option(False, help="Fit a temperature on development speakers."),
    out: Path = typer.Option(Path("findings"), help="Output folder (findings.html and data)."),
    jobs: int | None = typer.Option(None, help="Worker processes (default: all cores)."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log to the model's run."),
) -> None:
    """Word evidence, age of onset, accent similarity, failures by group, calibration."""
    from speechprint.findings.run import run_findings

    with fail.on_user_errors():
        result = run_findings(
            out,
            model=None if study else model,
            study=study,
            trial=trial,
            storage=storage,
            archive=archive,
            target=target,
            predictions=predictions,
            folds=folds,
            calibrate=calibrate,
            jobs=jobs,
            log_to_mlflow=not no_mlflow,
            on_section=show_section,
        )
    console.print(f"data and predictions: {result.prepare_seconds:.1f} s")
    where = "" if no_mlflow else f" (logged to run {result.run_id} under findings/)"
    console.print(f"page: {result.page}{where}")


def register(app: typer.Typer) -> None:
    app.command("findings")(findings_command)


def show_section(section: Any) -> None:
    """A findings section as it finishes: its title and time, then its summary as plain text (a
    realisation such as ``[s]`` would otherwise be read as a style tag and vanish)."""
    console.print(f"[bold]{escape(section.title)}[/] ({section.seconds:.1f} s)")
    console.print(section.summary, highlight=False, markup=False)
