"""One small registry mechanism, shared by feature extractors and models.

Components are registered by name (the name is what configs, studies and MLflow refer to), and
may carry their search space beside them: ``space(trial) -> dict`` with parameter names prefixed by
the component's name, so conditional branches of a study never collide.

Registration is the single source of a component's name and metadata: a registry may be given a
``validate`` hook that checks (and normalises) ``meta`` when a component registers, so a bad
component fails at import time, naming itself, instead of deep inside a study. Third-party
components arrive through ``importlib.metadata`` entry points (loaded on first lookup or listing).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, Literal, TypeVar

from speechprint.core.errors import SpeechPrintError

T = TypeVar("T")
SearchSpace = Callable[[Any], dict[str, Any]]  # optuna.Trial -> params (kept untyped: no import)
# Checks a registration and returns its normalised metadata: (name, obj, meta) -> meta.
Validator = Callable[[str, Any, dict[str, Any]], dict[str, Any]]

# The shared vocabulary of feature kinds: what extractors produce and models accept.
Kind = Literal["pooled", "sequence"]
KINDS: frozenset[str] = frozenset({"pooled", "sequence"})

logger = logging.getLogger(__name__)


class UnknownNameError(SpeechPrintError, KeyError):
    """A lookup of a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class RegistrationError(SpeechPrintError, ValueError):
    """A component that cannot be registered as declared; the message names it."""


class DuplicateNameError(RegistrationError):
    """A second component under a name that is already taken."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    space: SearchSpace | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name -> component. Duplicate names raise; failed lookups list what is available.

    >>> things = Registry("thing")
    >>> @things.register("answer")
    ... def answer() -> int:
    ...     return 42
    >>> things.get("answer").obj()
    42
    >>> things.names()
    ['answer']
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_points: str | None = None,
        validate: Validator | None = None,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_points
        self._validate = validate
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = entry_points is None
        self._lock = threading.RLock()

    def register(
        self, name: str, *, space: SearchSpace | None = None, **meta: Any
    ) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self._add(Entry(name=name, obj=obj, space=space, meta=dict(meta)))
            return obj

        return decorator

    def _add(self, entry: Entry[T]) -> None:
        if entry.name in self._entries:
            raise DuplicateNameError(f"{self.kind} {entry.name!r} is already registered")
        meta = entry.meta
        if self._validate is not None:
            meta = self._validate(entry.name, entry.obj, dict(meta))
        self._entries[entry.name] = Entry(entry.name, entry.obj, entry.space, meta)

    def unregister(self, name: str) -> Entry[T]:
        """Remove ``name`` (tests, plugins being reloaded); returns the removed entry."""
        if name not in self._entries:
            raise self._unknown(name)
        return self._entries.pop(name)

    @contextlib.contextmanager
    def temporary(
        self,
        name: str,
        obj: T,
        *,
        space: SearchSpace | None = None,
        replace: bool = False,
        **meta: Any,
    ) -> Iterator[Entry[T]]:
        """Register ``obj`` for the duration of a ``with`` block, then remove it.

        ``replace=True`` shadows an existing entry of that name and restores it afterwards.
        """
        previous = self._entries.pop(name, None) if replace else None
        try:
            self._add(Entry(name=name, obj=obj, space=space, meta=dict(meta)))
        except BaseException:
            if previous is not None:
                self._entries[name] = previous
            raise
        try:
            yield self._entries[name]
        finally:
            self._entries.pop(name, None)
            if previous is not None:
                self._entries[name] = previous

    def get(self, name: str) -> Entry[T]:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> UnknownNameError:
        valid = ", ".join(self.names()) or "(none registered)"
        return UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}")

    def peek(self, name: str) -> Entry[T] | None:
        """The entry registered as ``name`` so far, or None; loads no plugins (for validators)."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    # --- plugins -------------------------------------------------------------------------------

    def discover(self) -> None:
        """(Re)load this registry's entry points now; lookups do it once by themselves."""
        with self._lock:
            self._plugins_loaded = False
            self._load_plugins()

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            # Set first: a plugin that lists this registry while importing must not recurse.
            self._plugins_loaded = True
            assert self.entry_point_group is not None
            for entry_point in metadata.entry_points(group=self.entry_point_group):
                self._load_entry_point(entry_point)

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        """Import one plugin (importing it registers it); a broken one is logged, not raised."""
        if entry_point.name in self._entries:
            return  # loaded by an earlier discovery (or registered by a direct import)
        try:
            entry_point.load()
        except Exception as error:  # any plugin bug: the built-in components must keep working
            logger.warning(
                "skipping %s plugin %r (entry point %s = %s in group %r): %s: %s",
                self.kind,
                entry_point.name,
                entry_point.name,
                entry_point.value,
                self.entry_point_group,
                type(error).__name__,
                error,
            )
            return
        if entry_point.name not in self._entries:
            logger.warning(
                "%s plugin entry point %r (%s) loaded but registered no %s named %r",
                self.kind,
                entry_point.name,
                entry_point.value,
                self.kind,
                entry_point.name,
            )
