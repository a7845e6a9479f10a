"""One exception family for what a user can fix.

The CLI catches ``SpeechPrintError`` only: it prints the message (one line that names the file or
field) and exits with status 2. Every other exception is a bug and keeps its traceback. Each
subclass also derives from the built-in exception it refines, so ``except ValueError`` keeps
working for callers that used it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SpeechPrintError(Exception):
    """A problem the user can fix: a bad file, a missing folder, an unknown name."""


class ConfigError(SpeechPrintError, ValueError):
    """A study, experiment or option that cannot be used as written; names the file and key."""


class DataError(SpeechPrintError, ValueError):
    """An archive, table or recording that cannot be read as the user pointed at it."""


class ServiceError(SpeechPrintError, RuntimeError):
    """A tracking server or study storage that cannot be reached or used."""


EXTRA_HINT = "install speechprint[pretrained] (pip install 'speechprint[pretrained]')"


class DataWarning(UserWarning):
    """A notice about the user's data that does not stop the work (countries without a region):
    the CLI prints these, and only these, so other libraries' notes stay off the user's screen."""


class MissingExtraError(SpeechPrintError, ImportError):
    """An optional dependency of the ``pretrained`` extra is not installed.

    ``name`` is the missing package (``ImportError.name``); the message always says how to
    install the extra, so the CLI's one-line error is enough to fix it.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        if "pip install" not in message:  # a message may give its own, exact command
            message = f"{message}: {EXTRA_HINT}"
        super().__init__(message, name=name)


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the valid name closest to a mistyped ``name``, else ``""``.

    >>> did_you_mean("n_warmup_step", ["n_startup_trials", "n_warmup_steps"])
    '; did you mean n_warmup_steps?'
    >>> did_you_mean("zzz", ["mlp"])
    ''
    """
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
