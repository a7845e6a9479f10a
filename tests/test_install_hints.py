"""A missing optional package is one line that gives the exact command to install it."""

from __future__ import annotations

import subprocess
import sys

from speechprint.core.errors import EXTRA_HINT, MissingExtraError

# Python treats a module set to None in sys.modules as not installed: the state of an install
# that lacks resemblyzer, in a process of its own.
WITHOUT_RESEMBLYZER = """
import sys
sys.modules["resemblyzer"] = None
from speechprint.features.pretrained.speaker import load_voice_encoder
try:
    load_voice_encoder()
except ImportError as error:
    print(type(error).__name__, error)
"""


def test_speaker_embedding_without_resemblyzer_says_the_exact_command() -> None:
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_RESEMBLYZER], capture_output=True, text=True, timeout=300
    ).stdout
    assert out.startswith("MissingExtraError ")
    assert "pip install --no-deps resemblyzer==0.1.4" in out
    assert EXTRA_HINT not in out  # the extra alone would not fix it: no misleading hint
    assert len(out.strip().splitlines()) == 1


def test_other_missing_packages_point_at_the_extra() -> None:
    assert str(MissingExtraError("x needs y", name="y")) == f"x needs y: {EXTRA_HINT}"
