"""What a study was created from: its study file's definition, stored with the study.

Resuming a study from an edited file (another model, extractor, ``space:``, training setting, data
section or ``--archive``) would either break Optuna at the first new trial (its categorical
choices are fixed once sampled) or mix trials that measure different things. So the definition
is stored on the study when it is created and compared before any trial, feature or run exists.
The budget, description, storage, sampler, pruner, baselines and transfer check may change between
invocations.

Importable without torch, MLflow or scikit-learn (Optuna only).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from speechprint.catalogue.config import TransferSpec
from speechprint.core.errors import ConfigError
from speechprint.study.spec import StudySpec
from speechprint.study.storage import (
    absolute,
    default_storage,
    open_storage,
    redact,
    storage_file,
)

DEFINITION_ATTR = "definition"
FINGERPRINT_ATTR = "definition_fingerprint"
TRANSFER_ATTR = "transfer"  # the study file's transfer section, as its last run read it
# Keys that may change on a resume: they decide how long and how the search runs, or what
# promotion checks (``transfer``), not what a trial measures.
MUTABLE_KEYS = {"description", "budget", "storage", "sampler", "pruner", "baselines", "transfer"}
NEW_VERSION_FLAG = "--new-version"


def definition(spec: StudySpec) -> dict[str, Any]:
    """The parts of ``spec`` every trial of one study must share, as plain JSON values."""
    # Not its name either: a version NAME-v2 holds the definition its name was chosen for.
    dump = spec.model_dump(mode="json", exclude=MUTABLE_KEYS | {"name"})
    dump["data"]["archive"] = str(Path(dump["data"]["archive"]).expanduser().resolve())
    return dump


def fingerprint(defined: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(defined, sort_keys=True).encode()).hexdigest()[:16]


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted key paths whose values differ.

    >>> changed_keys({"models": ["a"], "data": {"seed": 0, "archive": "x"}},
    ...              {"models": ["a", "b"], "data": {"seed": 0, "archive": "y"}})
    ['data.archive', 'models']
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [prefix.rstrip(".") or "(the whole definition)"]
    keys = sorted(set(old) | set(new))
    return [
        path for key in keys for path in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
    ]


def storage_of(spec: StudySpec, name: str, storage: str | None, workers: int) -> str:
    """Where the study called ``name`` lives: the given storage, else its own file."""
    return absolute(storage or spec.storage or default_storage(name, workers))


def stored_definition(name: str, url: str) -> dict[str, Any] | None:
    """The definition stored with study ``name`` at ``url``: None when there is no such study,
    ``{}`` for a study created before definitions were stored. Never creates a storage file."""
    path = storage_file(url)
    if path is not None and not path.exists():
        return None
    storage = open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return dict(storage.get_study_user_attrs(study_id).get(DEFINITION_ATTR) or {})


def resolve(
    spec: StudySpec, *, storage: str | None, workers: int, new_version: bool = False
) -> StudySpec:
    """The study to run: ``spec`` itself when its study is new or was created from the same
    definition; with ``new_version``, the first version ``NAME-vN`` that is new or matches.

    Anything else is a ``ConfigError`` saying what changed and what to do, before any work.
    """
    wanted = definition(spec)
    name, version = spec.name, 1
    while True:
        url = storage_of(spec, name, storage, workers)
        stored = stored_definition(name, url)
        if stored is None or not stored or stored == wanted:
            return spec if name == spec.name else spec.model_copy(update={"name": name})
        if not new_version:
            raise _changed_error(spec, stored, wanted, url, storage, workers)
        version += 1
        name = f"{spec.name}-v{version}"


def _changed_error(
    spec: StudySpec,
    stored: dict[str, Any],
    wanted: dict[str, Any],
    url: str,
    storage: str | None,
    workers: int,
) -> ConfigError:
    changed = ", ".join(changed_keys(stored, wanted))
    archive = ""
    if "data.archive" in changed:
        archive = f" (it read {stored['data']['archive']})"
    return ConfigError(
        f"{spec.source}: study {spec.name!r} in {redact(url)} was created from another "
        f"definition; changed: {changed}{archive}. Its trials would not be comparable: give the "
        f"study a new name, or rerun with {NEW_VERSION_FLAG} to start (or resume) "
        f"{spec.name}-vN beside it"
    )


def record(study: Any, spec: StudySpec) -> None:
    """Store ``spec``'s definition with a study that has none yet (new, or older than this)."""
    if DEFINITION_ATTR in study.user_attrs:
        return
    defined = definition(spec)
    study.set_user_attr(DEFINITION_ATTR, defined)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint(defined))


def record_transfer(study: Any, spec: StudySpec) -> None:
    """Store the study file's ``transfer:`` section (paths absolute) for ``promote``; a file
    without one removes it. Mutable: it says what promotion checks, not what a trial measures."""
    section = spec.transfer
    stored = None if section is None else section.resolved().model_dump(mode="json")
    study.set_user_attr(TRANSFER_ATTR, stored)


def stored_transfer(study: Any) -> TransferSpec | None:
    """The transfer check stored with ``study`` (None: the study has none)."""
    stored = study.user_attrs.get(TRANSFER_ATTR)
    return None if not stored else TransferSpec.model_validate(stored)
