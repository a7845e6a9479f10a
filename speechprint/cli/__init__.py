"""Command line: a thin layer over the library, one typer sub-app per module."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(
    name="speechprint",
    help="Accent identification research harness: data, features, studies, MLflow, promotion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_registered = False


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"speechprint {version('speechprint')}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for user errors too."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress notes (INFO)."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """Accent identification research harness: data, features, studies, MLflow, promotion."""
    from speechprint.cli.common import fail, setup_logging

    fail.debug = debug
    setup_logging(verbose)


def _register_subcommands() -> None:
    # Imported here so each sub-app stays in its own file and importing the package stays light.
    global _registered
    if _registered:
        return
    _registered = True
    _flags_without_type()
    from speechprint.cli import data, evaluate, features, findings, model, probe, pronounce, study

    app.add_typer(data.app, name="data")
    app.add_typer(features.app, name="features")
    app.add_typer(study.app, name="study")
    app.add_typer(study.runs_app, name="runs")
    app.command("run")(study.experiment_run)
    app.command("evaluate")(evaluate.evaluate_command)
    model.register(app)
    app.add_typer(probe.app, name="probe")
    findings.register(app)
    pronounce.register(app)


def _flags_without_type() -> None:
    """``--help`` lists a flag without Typer's ``<bool>`` type column: a flag takes no value, and
    ``<bool>`` reads as if it did (``--debug true``). Typer offers no setting for it."""
    from typer.core import TyperOption

    if getattr(TyperOption, "_speechprint_flags", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]
    TyperOption._speechprint_flags = True  # type: ignore[attr-defined]


class _InterruptionNotes(logging.Filter):
    """Drops Optuna's two warnings about a trial a Ctrl-C stopped: its traceback, then "Trial N
    failed with value None."; any other trial's warnings pass."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0] if record.exc_info else None
        message = record.getMessage()
        trial = message.split(" failed with ", 1)[0]  # "Trial 7"
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self.interrupted.add(trial)
            return False
        return not (trial in self.interrupted and message.endswith("failed with value None."))


def main() -> None:
    import signal
    import warnings

    import optuna

    from speechprint.core import stopping

    # SIGTERM (a scheduler's, ``timeout``'s or ``docker stop``'s request) ends a command as Ctrl-C
    # does: a study records the interruption and says how to resume, workers close their trials,
    # pools shut down.
    stopping.install(once=(signal.SIGTERM,), repeatable=(signal.SIGINT,))

    # Our own per-trial lines replace Optuna's log; experimental-feature notices are known.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # A Ctrl-C inside a trial: Optuna logs the KeyboardInterrupt with its traceback (25 lines)
    # before the tidy "Interrupted." line; the trial's own line already says how it ended.
    logging.getLogger("optuna.study._optimize").addFilter(_InterruptionNotes())
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    _register_subcommands()
    app()
