"""What a run raises on purpose: a pair that cannot train, a loss that diverged."""

from __future__ import annotations

from speechprint.core.errors import ConfigError


class IncompatibleError(ConfigError):
    """An extractor/model pair that cannot be trained together."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite (a study prunes such a trial with this reason)."""
