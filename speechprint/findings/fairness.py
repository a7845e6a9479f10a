"""For whom it fails: balanced accuracy by sex, age, recording length and age of English onset."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.findings.page import Section
from speechprint.findings.plots import pyplot, save
from speechprint.findings.stats import balanced_accuracy, bootstrap

MIN_GROUP = 5  # speakers: smaller groups are listed but not compared


def groups(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Group labels per attribute (NaN where unknown)."""
    age = pd.to_numeric(frame.get("age"), errors="coerce")
    onset = pd.to_numeric(frame.get("age_onset"), errors="coerce")
    duration = pd.to_numeric(frame.get("duration"), errors="coerce")
    return {
        "sex": frame.get("sex").astype("object"),
        "age band": pd.cut(
            age, [0, 25, 45, 65, 200], right=False, labels=["<25", "25-44", "45-64", "65+"]
        ).astype("object"),
        "recording length": _length_bands(duration),
        "age of onset": _onset_bands(frame, onset),
    }


def _onset_bands(frame: pd.DataFrame, onset: pd.Series) -> pd.Series:
    """Bands of the age English was first learned; native speakers are a group of their own."""
    bands = pd.cut(
        onset, [0, 6, 13, 19, 200], right=False, labels=["0-5", "6-12", "13-18", "19+"]
    ).astype("object")
    native = frame.get("native_language", pd.Series(index=frame.index, dtype=object)) == "english"
    return bands.where(~native, "native English")


def _length_bands(duration: pd.Series) -> pd.Series:
    """Thirds of the recording lengths (fewer bands when lengths tie, as in the demo corpus)."""
    if not duration.notna().any():
        return pd.Series(np.nan, index=duration.index, dtype="object")
    edges = np.unique(np.round([0.0, *np.nanpercentile(duration, [33.3, 66.7]), np.inf], 1))
    names = [
        f"{a:.0f}-{b:.0f} s" if np.isfinite(b) else f"> {a:.0f} s" for a, b in zip(edges, edges[1:])
    ]
    return pd.cut(duration, edges, labels=names).astype("object")


def _natural(group: object) -> tuple[float, str]:
    """Bands in numeric order ("<25" first, "6-12" before "13-18"), names after them."""
    text = str(group)
    if text.startswith("<"):
        return (-1.0, text)
    match = re.match(r"(\d+)", text.lstrip("> "))
    return (float(match.group(1)) if match else float("inf"), text)


def scores(frame: pd.DataFrame, y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    rows = []
    for attribute, labels in groups(frame).items():
        for group in sorted(labels.dropna().unique(), key=_natural):
            members = np.flatnonzero(labels.to_numpy() == group)
            yt, yp = y[members], pred[members]
            low, high = bootstrap(_balanced_accuracy_of(yt, yp), len(members))
            rows.append(
                {
                    "attribute": attribute,
                    "group": str(group),
                    "n": len(members),
                    "balanced_accuracy": balanced_accuracy(yt, yp),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def gaps(table: pd.DataFrame, frame: pd.DataFrame, y: np.ndarray, pred: np.ndarray) -> list[str]:
    """Per attribute: best minus worst group, with a bootstrap interval of the difference."""
    lines, labels_by = [], groups(frame)
    for attribute, block in table[table["n"] >= MIN_GROUP].groupby("attribute", sort=False):
        if len(block) < 2:
            continue
        best, worst = (
            block.loc[block["balanced_accuracy"].idxmax()],
            block.loc[block["balanced_accuracy"].idxmin()],
        )
        labels = labels_by[attribute].to_numpy()
        a, b = np.flatnonzero(labels == best["group"]), np.flatnonzero(labels == worst["group"])
        rng = np.random.default_rng(1)
        diffs = [
            balanced_accuracy(y[s], pred[s]) - balanced_accuracy(y[t], pred[t])
            for s, t in ((rng.choice(a, len(a)), rng.choice(b, len(b))) for _ in range(500))
        ]
        low, high = np.nanpercentile(diffs, [2.5, 97.5])
        gap = best["balanced_accuracy"] - worst["balanced_accuracy"]
        verdict = "exceeds its interval (a real gap)" if low > 0 else "is within noise"
        lines.append(
            f"{attribute}: {best['group']} {best['balanced_accuracy']:.2f} vs "
            f"{worst['group']} {worst['balanced_accuracy']:.2f}, gap {gap:.2f} "
            f"[95% CI {low:.2f} to {high:.2f}] {verdict}"
        )
    return lines


def section(subject: Any, out: Path) -> Section:
    y, pred = subject.frame["y"].to_numpy(), subject.predicted
    table = scores(subject.frame, y, pred)
    lines = gaps(table, subject.frame, y, pred)
    plt = pyplot()
    attributes = list(dict.fromkeys(table["attribute"]))
    fig, axes = plt.subplots(1, len(attributes), figsize=(3.2 * len(attributes), 3.6), sharey=True)
    for ax, attribute in zip(np.atleast_1d(axes), attributes):
        block = table[table["attribute"] == attribute]
        x = np.arange(len(block))
        err = [
            block["balanced_accuracy"] - block["ci_low"],
            block["ci_high"] - block["balanced_accuracy"],
        ]
        ax.bar(x, block["balanced_accuracy"], yerr=err, color="#7a9", capsize=3)
        ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(block["group"], block["n"])], fontsize=7)
        ax.set_title(attribute)
    np.atleast_1d(axes)[0].set_ylabel("balanced accuracy (95% CI)")
    image = save(fig, out / "fairness.png")
    data = out / "fairness.csv"
    table.to_csv(data, index=False)
    real = [line for line in lines if "exceeds" in line]
    summary = (
        "Balanced accuracy by group, with bootstrap intervals. "
        + ("; ".join(lines) + ". " if lines else "")
        + (
            f"{len(real)} of {len(lines)} gaps exceed their interval (best against worst group, "
            "picked after looking: a borderline gap deserves a second sample)."
            if lines
            else "No attribute had two groups of 5 or more speakers."
        )
    )
    return Section("fairness", "For whom does it fail?", summary, [image], [data])


def _balanced_accuracy_of(y_true: np.ndarray, y_pred: np.ndarray) -> Callable[[np.ndarray], float]:
    """Balanced accuracy of the resampled rows ``i`` of one group (for ``bootstrap``)."""
    return lambda i: balanced_accuracy(y_true[i], y_pred[i])
