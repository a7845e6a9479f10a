"""What every command shares: user errors become one clear line and exit code 2."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console

err_console = Console(stderr=True, soft_wrap=True)  # error lines stay greppable
# Piped output (logs, CI, notebooks) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)


class _Fail:
    @contextlib.contextmanager
    def on_user_errors(self) -> Iterator[None]:
        """Turn the library's user-facing errors into a message (no traceback) and exit 2."""
        try:
            yield
        except (ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError) as error:
            if isinstance(error, KeyError) and not _is_user_key_error(error):
                raise
            message = str(error) if not isinstance(error, KeyError) else str(error.args[0])
            err_console.print(f"[bold red]error:[/] {message}")
            raise typer.Exit(2) from None


def _is_user_key_error(error: KeyError) -> bool:
    from speechprint.registry import UnknownNameError

    return isinstance(error, UnknownNameError)


fail = _Fail()
