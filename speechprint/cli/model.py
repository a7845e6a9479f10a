"""`speechprint promote | predict | report | ui | quickstart`."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from speechprint.cli.common import USER_ERROR, console, err_console, fail, print_trial


def promote_command(
    study: str = typer.Option(..., "--study", help="Study whose best trial to promote."),
    storage: str | None = typer.Option(None, help="Optuna storage (default: under studies/)."),
    model_name: str = typer.Option("speechprint-accent", help="Registered model name."),
    alias: str = typer.Option("champion", help="Alias to move if the selection evidence wins."),
    archive: str | None = typer.Option(None, help="Archive folder (if it moved since the study)."),
    trial: int | None = typer.Option(
        None, help="Promote this trial instead of the best (e.g. to put a baseline on record)."
    ),
    ensemble: int = typer.Option(
        0, help="Promote the average of the top K trials (by cross-validated score) instead."
    ),
    ensemble_by: str = typer.Option(
        "trial",
        help="trial: the top K trials; pair: the best trial of each of the top K "
        "extractor x model pairs (members that differ).",
    ),
    transfer: bool = typer.Option(
        True,
        help="Check the study file's transfer corpus before the alias moves (--no-transfer: "
        "the selection evidence alone).",
    ),
    jobs: int | None = typer.Option(None, help="Extraction processes (default: all cores)."),
) -> None:
    """Refit the study's best configuration on train+val, register it, score it once on test;
    move the alias only on the selection evidence (never on test), and only if the model keeps
    hearing the study's transfer corpus (its `transfer:` section) as well as the holder does."""
    from speechprint.apps.promotion import promote_study

    with fail.on_user_errors():
        decision = promote_study(
            study,
            check_transfer=transfer,
            jobs=jobs,
            progress=True,
            storage=storage,
            model_name=model_name,
            alias=alias,
            archive=archive,
            trial=trial,
            ensemble=ensemble,
            ensemble_by=ensemble_by,
        )
    colour = "green" if decision.promoted else "yellow"
    console.print(f"[{colour}]{_escape(decision.summary())}[/]")
    if not decision.new_version:
        console.print(
            f"(v{decision.version} was already registered for this candidate: nothing new)"
        )
    console.print(
        f"load it with: mlflow.pyfunc.load_model('models:/{model_name}@{decision.alias}')"
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def predict_command(
    files: list[Path] = typer.Argument(
        ..., help="Audio files (mp3, wav, flac, ogg; any rate), or folders of them."
    ),
    model: str = typer.Option("models:/speechprint-accent@champion", help="MLflow model URI."),
    top_k: int = typer.Option(3, help="How many labels to show per file."),
    text: str | None = typer.Option(
        None, help="What the recordings say, when known (default: Whisper recognises it)."
    ),
    listen: bool = typer.Option(
        True, help="Say what each recording said and how much of it was aligned."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Where is each speaker likely from, and what did they say? A folder stands for the audio
    files in it. Unreadable files are reported, the others predicted; exit code 2 then."""
    from speechprint.apps.predict import predict_files

    with fail.on_user_errors():
        results = predict_files(files, model_uri=model, top_k=top_k, text=text, listen=listen)
    failed = 0
    for result in results:
        if result.get("error"):
            failed += 1
            err_console.print(f"[red]error:[/] {result['file']}: {result['error']}")
        if as_json:
            typer.echo(json.dumps(result))
        elif not result.get("error"):
            ranked = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in result["top"])
            console.print(f"{result['file']}: {ranked}", soft_wrap=True)
            _print_heard(result)
    if failed:
        raise typer.Exit(USER_ERROR)  # unusable input is the user's to fix, as everywhere


def _print_heard(result: dict[str, Any]) -> None:
    """The transcript used (and where it came from), the share aligned, and any note."""
    heard = result.get("heard") or {}
    if heard.get("transcript"):
        share = heard.get("aligned_share")
        aligned = "" if share is None else f", {share:.0%} of its words aligned"
        console.print(
            f"  heard ({heard.get('source')}{aligned}): {_escape(heard['transcript'])}",
            soft_wrap=True,
        )
    if result.get("note"):
        console.print(f"  [yellow]note:[/] {_escape(result['note'])}", soft_wrap=True)


def report_command(
    study: str = typer.Option(..., "--study", help="Study name."),
    out: Path = typer.Option(Path("reports"), help="Output folder (PNG + summary.md)."),
    storage: str | None = typer.Option(None, help="Optuna storage (default: under studies/)."),
    model_name: str = typer.Option("speechprint-accent", help="Registered model name."),
    findings: bool = typer.Option(
        False, "--findings", help="Also the findings sections for the best trial (minutes)."
    ),
) -> None:
    """Optimisation history, importances, confusion matrix, per-class recall, pair comparison."""
    from speechprint.apps.report import write_report

    with fail.on_user_errors():
        summary = write_report(
            study, out, storage=storage, model_name=model_name, findings=findings
        )
    console.print(f"report written: {summary} (figures beside it; also on the study's MLflow run)")


def ui_command(
    study: str | None = typer.Option(None, "--study", help="Study whose storage to open."),
    storage: str | None = typer.Option(None, help="Optuna storage for optuna-dashboard."),
    port: int = typer.Option(5000, help="MLflow UI port."),
    dashboard_port: int = typer.Option(8080, help="optuna-dashboard port."),
    start: bool = typer.Option(False, "--start", help="Start the MLflow UI instead of printing."),
) -> None:
    """Print (or start) the MLflow UI and optuna-dashboard commands, both on 127.0.0.1."""
    from speechprint.study.storage import default_storage
    from speechprint.tracking import store as tracking

    uri = tracking.tracking_uri()
    mlflow_cmd = [
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    artifact_root = tracking.artifact_root()
    if artifact_root:
        mlflow_cmd += ["--default-artifact-root", artifact_root]
    optuna_storage = storage or (default_storage(study) if study else "sqlite:///studies/NAME.db")
    dashboard_cmd = [
        "optuna-dashboard",
        optuna_storage,
        "--host",
        "127.0.0.1",
        "--port",
        str(dashboard_port),
    ]
    # soft_wrap: a command wrapped at the terminal's width breaks when copied.
    console.print("MLflow UI:        " + shlex.join(mlflow_cmd), soft_wrap=True, markup=False)
    console.print(
        "optuna-dashboard: " + shlex.join(dashboard_cmd) + "  (pip install optuna-dashboard)",
        soft_wrap=True,
        markup=False,
    )
    if study:
        console.print(f"open the trials: {_study_link(study, port)}", soft_wrap=True)
    if start:
        console.print(f"starting the MLflow UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
        subprocess.run(mlflow_cmd, check=False)


def _study_link(study: str, port: int) -> str:
    """The UI link that lists ``study``'s trials best first (MLflow 3.17 opens GenAI otherwise)."""
    from speechprint.tracking import store as tracking

    link = tracking.study_link(tracking.client(), study, f"http://127.0.0.1:{port}")
    return link or f"(no MLflow experiment named {study!r} yet: run the study first)"


def quickstart_command(
    workdir: Path = typer.Option(Path("."), help="Where the demo corpus, stores and report go."),
    n_trials: int | None = typer.Option(None, help="Override the quick-start study's budget."),
    speakers_per_class: int = typer.Option(10, help="Demo speakers per accent class."),
) -> None:
    """The whole loop on the embedded demo corpus: synth -> study -> promote -> predict -> report."""
    from speechprint.apps.quickstart import run_quickstart

    with fail.on_user_errors():
        summary = run_quickstart(
            workdir,
            n_trials=n_trials,
            speakers_per_class=speakers_per_class,
            on_step=console.rule,
            on_line=console.print,
            on_trial=print_trial,
        )
    table = Table("what", "where")
    links = {k: str(v) for k, v in summary.items() if str(v).startswith("http")}
    for key, value in summary.items():
        if key not in links:
            table.add_row(key, str(value))
    console.print(table)
    for key, link in links.items():  # unwrapped, so a terminal shows them whole to copy or click
        console.print(f"{key}: {link}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("promote")(promote_command)
    app.command("predict")(predict_command)
    app.command("report")(report_command)
    app.command("ui")(ui_command)
    app.command("quickstart")(quickstart_command)
