"""Age of onset: do speakers who met English earlier sound more native to the model?

For non-native speakers (native language other than English), the model's probability of a
native-English class (regions north american, british isles and oceanian in the seed table; the
class ``english`` for the native-language target) against ``age_onset``: a kernel-smoothed curve
with a bootstrap band, Spearman's rank correlation with its interval, and the same per native
language with at least ``MIN_GROUP`` speakers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.findings.page import Section
from speechprint.findings.plots import pyplot, save
from speechprint.findings.stats import bootstrap, kernel_smooth

NATIVE_ENGLISH = ("north american", "british isles", "oceanian", "english")
MIN_GROUP = 20


def native_probability(proba: np.ndarray, labels: tuple[str, ...]) -> np.ndarray | None:
    columns = [i for i, label in enumerate(labels) if label in NATIVE_ENGLISH]
    return proba[:, columns].sum(axis=1) if columns else None


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from scipy.stats import spearmanr

    def rho(i: np.ndarray) -> float:
        return float(spearmanr(x[i], y[i]).statistic) if len(np.unique(x[i])) > 1 else np.nan

    return rho(np.arange(len(x))), *bootstrap(rho, len(x))


def section(subject: Any, out: Path) -> Section:
    title = "Age of onset: the earlier English, the more native?"
    p_native = native_probability(subject.proba, subject.labels)
    frame = subject.frame.assign(p_native=p_native if p_native is not None else np.nan)
    frame["age_onset"] = pd.to_numeric(frame.get("age_onset"), errors="coerce")
    learners = frame[(frame["native_language"] != "english") & frame["age_onset"].notna()]
    if p_native is None or len(learners) < 5:
        return Section(
            "onset",
            title,
            "Not computed: the model has no native-English class, or "
            f"fewer than 5 non-native speakers have an age of onset ({len(learners)}).",
        )
    x, y = learners["age_onset"].to_numpy(float), learners["p_native"].to_numpy(float)
    rho, low, high = spearman(x, y)
    rows = [
        {"group": "all non-native", "n": len(x), "spearman": rho, "ci_low": low, "ci_high": high}
    ]
    for language, block in learners.groupby("native_language"):
        if len(block) >= MIN_GROUP:
            r, lo, hi = spearman(
                block["age_onset"].to_numpy(float), block["p_native"].to_numpy(float)
            )
            rows.append(
                {
                    "group": str(language),
                    "n": len(block),
                    "spearman": r,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    table = pd.DataFrame(rows)
    image = _plot(x, y, out / "onset.png")
    data = out / "onset.csv"
    table.to_csv(data, index=False)
    learners[["path", "native_language", "age_onset", "p_native"]].to_csv(
        out / "onset_speakers.csv", index=False
    )
    direction = "falls" if rho < 0 else "rises"
    sure = "; the interval excludes zero" if low > 0 or high < 0 else "; the interval includes zero"
    groups = "; ".join(
        f"{r.group} {r.spearman:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] (n={r.n})"
        for r in table.iloc[1:].itertuples()
    )
    summary = (
        f"For {len(x)} non-native speakers, the probability the model gives a native-English "
        f"class {direction} with the age English was first learned: Spearman's rho "
        f"{rho:+.2f} [95% CI {low:+.2f} to {high:+.2f}]{sure}. "
        + (
            f"By native language (at least {MIN_GROUP} speakers): {groups}."
            if groups
            else f"No native language has {MIN_GROUP} or more such speakers."
        )
    )
    return Section("onset", title, summary, [image], [data, out / "onset_speakers.csv"])


def _plot(x: np.ndarray, y: np.ndarray, out: Path) -> Path:
    grid = np.linspace(x.min(), x.max(), 60)
    bandwidth = max(1.0, 0.1 * (x.max() - x.min()))
    rng = np.random.default_rng(0)
    curves = []
    for _ in range(300):
        i = rng.integers(0, len(x), len(x))
        curves.append(kernel_smooth(x[i], y[i], grid, bandwidth))
    low, high = np.nanpercentile(np.array(curves), [2.5, 97.5], axis=0)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(x, y, s=10, alpha=0.4, c="#468")
    ax.fill_between(grid, low, high, alpha=0.25, color="#c63", label="95% bootstrap band")
    ax.plot(grid, kernel_smooth(x, y, grid, bandwidth), c="#c63", lw=2, label="kernel smooth")
    ax.set(
        xlabel="age of onset of English (years)",
        ylabel="P(native-English class)",
        ylim=(0, 1),
        title="Non-native speakers: nativeness to the model vs age of onset",
    )
    ax.legend()
    return save(fig, out)
