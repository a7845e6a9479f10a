"""The labels a dataset can be built for; importable without pandas, for config checks."""

from __future__ import annotations

TARGETS = ("region", "native_language", "country", "sex")
