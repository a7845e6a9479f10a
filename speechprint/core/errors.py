"""One exception family for what a user can fix.

The CLI catches ``SpeechPrintError`` only: it prints the message (one line that names the file or
field) and exits with status 2. Every other exception is a bug and keeps its traceback. Each
subclass also derives from the built-in exception it refines, so ``except ValueError`` keeps
working for callers that used it.
"""

from __future__ import annotations


class SpeechPrintError(Exception):
    """A problem the user can fix: a bad file, a missing folder, an unknown name."""


class ConfigError(SpeechPrintError, ValueError):
    """A study, experiment or option that cannot be used as written; names the file and key."""


class DataError(SpeechPrintError, ValueError):
    """An archive, table or recording that cannot be read as the user pointed at it."""


class ServiceError(SpeechPrintError, RuntimeError):
    """A tracking server or study storage that cannot be reached or used."""
