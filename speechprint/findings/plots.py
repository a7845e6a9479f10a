"""Matplotlib without a display, and one way to save a figure for the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: the page embeds PNGs
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    pyplot().close(fig)
    return out
