"""Where a study lives: Optuna storage URLs, opened with clear errors.

Importable without torch, MLflow or scikit-learn, so read-only commands (``study show``, ``ui``)
start fast. RDB storages get Optuna's heartbeat, so any worker on any machine can fail a trial whose
process died (``speechprint.study.recovery`` closes its MLflow run and queues it once more).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from speechprint.core.errors import ServiceError
from speechprint.study.recovery import StaleTrialCallback


class StorageError(ServiceError):
    """The Optuna storage cannot be opened, or holds no such study."""


def default_storage(name: str, workers: int = 1) -> str:
    """A file under ``studies/``: SQLite for one process, a journal file for several workers.

    An existing journal file wins, so a study started with ``--workers`` resumes without it.
    """
    studies = Path("studies")  # made by ``open_storage`` when a study is created, not here
    journal = studies / f"{name}.journal.log"
    if workers > 1 or journal.exists():
        return str(journal.resolve())
    return f"sqlite:///{(studies / f'{name}.db').resolve()}"


def absolute(url: str) -> str:
    """A journal path made absolute, so what is printed and tagged names the file anywhere."""
    return url if "://" in url else str(Path(url).resolve())


def redact(url: str) -> str:
    """The URL without its user and password, for messages and tags.

    >>> redact("postgresql+psycopg://me:secret@db.example.org/optuna")
    'postgresql+psycopg://***@db.example.org/optuna'
    """
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def storage_file(url: str) -> Path | None:
    """The file a journal path or a SQLite URL names; None for a server (or in-memory) URL.

    >>> str(storage_file("sqlite:///studies/x.db")), storage_file("postgresql://h/db")
    ('studies/x.db', None)
    """
    if "://" not in url:
        return Path(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite, postgresql+psycopg, ...) or a plain file path (JournalStorage).

    Unreachable storage is a clear error here, before any training starts.
    """
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    database = storage_file(url)
    if database is not None:  # SQLite creates the file, not the folder it goes in
        database.parent.mkdir(parents=True, exist_ok=True)

    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=_engine_kwargs(url),
                heartbeat_interval=15,
                grace_period=60,
                heartbeat_stale_trial_callback=StaleTrialCallback(max_retry=1),
            )
        except (IntegrityError, ProgrammingError) as error:
            # Machines started together on an empty database race to create Optuna's tables:
            # the loser sees "already exists"; the schema is there a moment later.
            if attempt == 2:
                raise _storage_error(url, error) from error
            time.sleep(1.0 + attempt)
        except Exception as error:  # noqa: BLE001 - any connection failure
            raise _storage_error(url, error) from error
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict[str, Any] | None:
    if url.startswith("sqlite"):
        return None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # A host that drops packets would otherwise hang for the OS's TCP timeout (minutes).
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def _storage_error(url: str, error: Exception) -> StorageError:
    first_line = str(error).splitlines()[0] if str(error) else ""
    return StorageError(
        f"cannot open the Optuna storage {redact(url)}: {type(error).__name__}: {first_line}"
    )


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """An existing study; a missing one is a ``StorageError`` naming the storage."""
    url = storage or default_storage(name)
    path = storage_file(url)
    if path is not None and not path.exists():  # opening it would create an empty database
        raise StorageError(f"no study named {name!r}: storage file {path} does not exist")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError as error:
        raise StorageError(f"no study named {name!r} in {redact(url)}") from error
