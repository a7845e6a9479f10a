"""One small registry mechanism, shared by feature extractors and models.

Components are registered by name (the name is what configs, studies and MLflow refer to), and
may carry their search space beside them: ``space(trial) -> dict`` with parameter names prefixed by
the component's name, so conditional branches of a study never collide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
SearchSpace = Callable[[Any], dict[str, Any]]  # optuna.Trial -> params (kept untyped: no import)


class UnknownNameError(KeyError):
    """A lookup of a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


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

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, space: SearchSpace | None = None, **meta: Any
    ) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name=name, obj=obj, space=space, meta=dict(meta))
            return obj

        return decorator

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none registered)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
