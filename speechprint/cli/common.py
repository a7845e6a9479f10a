"""What every command shares: the console, logging, and the exit codes.

One rule for every command (docs/USAGE.md, "Exit codes"):

- 0: done.
- 1: a bug: any exception that is not a ``SpeechPrintError`` keeps its traceback.
- 2: a user error: something the user can fix (a bad file, option, path, name; input that cannot
  be read), one ``error: ...`` line per problem, no traceback. Typer's usage errors are 2 too.
  ``speechprint --debug ...`` adds the traceback and keeps the code.
- 130: interrupted (Ctrl-C, SIGTERM), with how to resume where there is something to resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator

import typer
from rich.console import Console

from speechprint.core.errors import DataWarning, SpeechPrintError

err_console = Console(stderr=True, soft_wrap=True)  # error lines stay greppable
# Tables follow the terminal's width (or COLUMNS, which rich reads, when set); piped output with
# no COLUMNS (logs, CI, notebooks) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)


BUG = 1
USER_ERROR = 2
INTERRUPTED = 130


class _Fail:
    debug = False

    @contextlib.contextmanager
    def on_user_errors(self) -> Iterator[None]:
        """Turn a ``SpeechPrintError`` into its message and exit 2 (with --debug, after its
        traceback: the code says what kind of failure it was, whatever is shown)."""
        try:
            yield
        except SpeechPrintError as error:
            if self.debug:
                import traceback

                traceback.print_exc(file=sys.stderr)
            err_console.print(f"[bold red]error:[/] {_escape(str(error))}")
            raise typer.Exit(USER_ERROR) from None


fail = _Fail()


def setup_logging(verbose: bool = False) -> None:
    """The library's log records go to stderr: warnings always, progress notes with -v."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("speechprint")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def print_trial(study, trial) -> None:  # noqa: ANN001 - Optuna callback signature
    """The one trial line (serial runs, workers, quick start), coloured by state."""
    from speechprint.study.summary import trial_line

    colour = {"COMPLETE": "green", "PRUNED": "yellow"}.get(trial.state.name, "red")
    line = _escape(trial_line(study, trial))
    console.print(line.replace(trial.state.name, f"[{colour}]{trial.state.name}[/]", 1))


def ours(caught: Iterable[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    """The notices about the user's data among the warnings a command recorded; MLflow's and
    other libraries' own notes ("add type hints", deprecations) are not the user's to act on."""
    return [w for w in caught if issubclass(w.category, DataWarning)]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
