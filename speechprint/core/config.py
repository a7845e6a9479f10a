"""Strict, typed configuration: pydantic models that refuse unknown keys, with readable errors.

Every config schema (study files, experiment files, training options) derives from
``StrictModel``. ``parse`` turns pydantic's errors into one ``ConfigError`` that names the file and
the key path, with a suggestion for typos::

    studies/x.yaml: pruner.n_warmup_step: unknown key; did you mean n_warmup_steps?
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from speechprint.core.errors import ConfigError, did_you_mean

M = TypeVar("M", bound=pydantic.BaseModel)


class StrictModel(pydantic.BaseModel):
    """Unknown keys are errors; values are checked on assignment too."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file or invalid YAML is a ``ConfigError``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a file: give the YAML file in it")
    if not path.is_file():  # a device, a pipe, a socket: /dev/null exists but holds no config
        raise ConfigError(f"{path}: not a file (a device or pipe): give a YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:  # unreadable: permissions, a broken disk
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file (not UTF-8): give a YAML file") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw


def parse(model: type[M], data: Any, *, source: str = "<config>") -> M:
    """Validate ``data`` against ``model``; errors name ``source`` and each key path.

    >>> class Pruner(StrictModel):
    ...     n_warmup_steps: int = 5
    >>> parse(Pruner, {"n_warmup_step": 8}, source="x.yaml")
    Traceback (most recent call last):
    ...
    speechprint.core.errors.ConfigError: x.yaml: n_warmup_step: unknown key; did you mean n_warmup_steps?
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ConfigError(format_errors(model, error, source=source)) from None


def format_errors(
    model: type[pydantic.BaseModel],
    error: pydantic.ValidationError,
    *,
    source: str,
    prefix: tuple[Any, ...] = (),
) -> str:
    """One line, whatever the number of problems (a user error is one line, the CLI's rule):
    ``source: key.path: message; key.path: message``, the missing keys named together.

    >>> class Study(StrictModel):
    ...     name: str
    ...     models: list[str]
    >>> parse(Study, {}, source="x.yaml")
    Traceback (most recent call last):
    ...
    speechprint.core.errors.ConfigError: x.yaml: required key(s) missing: name, models
    """
    problems = []
    missing = [
        _dotted(prefix + tuple(item["loc"]))
        for item in error.errors(include_url=False)
        if item["type"] == "missing"
    ]
    if missing:
        problems.append(f"required key(s) missing: {', '.join(missing)}")
    for item in error.errors(include_url=False):
        loc = prefix + tuple(item["loc"])
        path = _dotted(loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _suggestion(model, tuple(item["loc"]))
        elif item["type"] == "missing":
            continue
        else:
            message = item["msg"]
            if item["type"] not in ("value_error", "assertion_error") and "input" in item:
                message += f" (got {item['input']!r})"
            message = message.removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return f"{source}: " + "; ".join(dict.fromkeys(problems))


def _dotted(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(str(part))
    return "".join(parts)


def _suggestion(model: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> str:
    """``; did you mean X?`` for the closest valid key at ``loc``, or "" when none is close."""
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return ""
    valid = list(owner.model_fields)
    return did_you_mean(str(loc[-1]), valid) or f"; valid keys: {', '.join(valid)}"


def _model_at(model: Any, loc: tuple[Any, ...]) -> type[pydantic.BaseModel] | None:
    """The pydantic model class reached by following ``loc`` through field annotations.

    Parts that are not field names (list indices, dict keys, union tags) are stepped over.
    """
    current = _unwrap(model)
    for part in loc:
        if current is not None and isinstance(part, str) and part in current.model_fields:
            current = _unwrap(current.model_fields[part].annotation)
    return current


def _unwrap(annotation: Any) -> type[pydantic.BaseModel] | None:
    """The first model class inside ``Optional[...]``, ``list[...]``, ``dict[...]`` or a union."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None
