"""A check the candidate must pass before the alias moves, beside the selection evidence.

The selection evidence (cross-validated balanced accuracy on the archive's development speakers)
says which model hears the archive best; it cannot say whether that model still hears anything
else. A gate can: ``promote`` asks it, after the refit and only when the alias would move, with the
candidate's run and the alias holder's (None for a first model). The check itself (another corpus,
scored by an application) is given to ``promote``, so this layer needs no corpus reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str  # one sentence: why the alias may move or not
    details: list[str] = field(default_factory=list)  # lines for people (figures, per group)
    tags: dict[str, str] = field(default_factory=dict)  # recorded on the candidate's version


class Gate(Protocol):
    def __call__(self, candidate_run_id: str, incumbent_run_id: str | None) -> GateVerdict: ...
