"""The MP3 decoder's own notes kept off the terminal.

libsndfile decodes MP3 with libmpg123, which writes notes about damaged frames straight to file
descriptor 2 ("Note: Illegal Audio-MPEG-Header 0x... at offset ...", "[src/libmpg123/...]
warning: ..."), twice per corrupt file, past Python's ``sys.stderr``. Speechprint reports each
unusable file in its own words, so those lines are dropped; anything else written to the
descriptor meanwhile (another thread's log line) is written back once decoding is done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

# libmpg123's forms ("Warning: Xing stream size off ..."); Python's and ours are "WARNING:" or
# "...: UserWarning: ...", never these.
NOTE_PREFIXES = ("Note: ", "Warning: ", "[src/libmpg123/")
_lock = threading.Lock()
_depth = 0  # decoders running in this process's threads: the first redirects, the last restores
_saved: int | None = None
_sink: IO[bytes] | None = None


@contextlib.contextmanager
def decoder_notes_dropped() -> Iterator[None]:
    """Inside: file descriptor 2 goes to a temporary file; on leaving, its lines come back
    without the decoder's notes. A no-op where descriptor 2 cannot be redirected."""
    if not _enter():
        yield
        return
    try:
        yield
    finally:
        _leave()


def _enter() -> bool:
    global _depth, _saved, _sink
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
                sink = tempfile.TemporaryFile()
                saved = os.dup(2)
                os.dup2(sink.fileno(), 2)
            except (OSError, ValueError, AttributeError):
                return False
            _saved, _sink = saved, sink
        _depth += 1
        return True


def _leave() -> None:
    global _depth, _saved, _sink
    with _lock:
        _depth -= 1
        if _depth or _saved is None or _sink is None:
            return
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(_saved, 2)
        os.close(_saved)
        _sink.seek(0)
        kept = [line for line in _sink.read().splitlines(keepends=True) if not _is_note(line)]
        _sink.close()
        _saved, _sink = None, None
    if kept:
        os.write(2, b"".join(kept))


def _is_note(line: bytes) -> bool:
    return line.decode("utf-8", "replace").startswith(NOTE_PREFIXES)
