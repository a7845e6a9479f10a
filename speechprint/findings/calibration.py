"""Can the probabilities be trusted: reliability of the top-1 probability, ECE, temperature.

The temperature is fitted on development predictions only (out of fold: never the test split),
by minimising the negative log-likelihood of ``softmax(log p / T)``. ``T > 1`` softens an
over-confident model. It is stored with the model (``AccentClassifier.temperature``; the pyfunc
applies it when loaded with ``model_config={"temperature": T}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.evaluation.metrics import apply_temperature
from speechprint.findings.page import Section
from speechprint.findings.plots import pyplot, save


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Per confidence bin: mean confidence, accuracy, count; and the expected calibration error."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        members = index == b
        if not members.any():
            continue
        conf, acc = float(confidence[members].mean()), float(correct[members].mean())
        ece += members.mean() * abs(conf - acc)
        bins.append(
            {
                "low": edges[b],
                "high": edges[b + 1],
                "confidence": conf,
                "accuracy": acc,
                "n": int(members.sum()),
            }
        )
    return {"ece": float(ece), "bins": bins, "n": int(len(y))}


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The ``T`` in [0.05, 20] minimising NLL of ``apply_temperature(proba, T)``."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = apply_temperature(proba, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))


def section(subject: Any, out: Path, *, calibrate: bool) -> Section:
    y = subject.frame["y"].to_numpy()
    before = reliability(subject.proba, y)
    result: dict[str, Any] = {"before": before, "temperature": None}
    curves = [("as trained", before)]
    if calibrate and subject.predictions == "oof":
        temperature = fit_temperature(subject.proba, y)
        after = reliability(apply_temperature(subject.proba, temperature), y)
        result.update(temperature=temperature, after=after)
        curves.append((f"temperature {temperature:.2f}", after))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="perfect calibration")
    for name, curve in curves:
        ax.plot(
            [b["confidence"] for b in curve["bins"]],
            [b["accuracy"] for b in curve["bins"]],
            marker="o",
            label=f"{name} (ECE {curve['ece']:.3f})",
        )
    ax.set(
        xlabel="top-1 probability",
        ylabel="share correct",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability of the top-1 probability",
    )
    ax.legend()
    image = save(fig, out / "calibration.png")
    data = out / "calibration.json"
    data.write_text(json.dumps(result, indent=2))
    return Section(
        "calibration",
        "Can its probabilities be trusted?",
        _summary(result, subject),
        [image],
        [data],
    )


def _summary(result: dict[str, Any], subject: Any) -> str:
    before = result["before"]
    mean_conf = np.average(
        [b["confidence"] for b in before["bins"]], weights=[b["n"] for b in before["bins"]]
    )
    mean_acc = np.average(
        [b["accuracy"] for b in before["bins"]], weights=[b["n"] for b in before["bins"]]
    )
    tone = "over-confident" if mean_conf > mean_acc else "under-confident"
    text = (
        f"Over {before['n']} speakers the model's top-1 probability averages {mean_conf:.2f} "
        f"while it is right {mean_acc:.0%} of the time: it is {tone}, with an expected "
        f"calibration error of {before['ece']:.3f}."
    )
    if result["temperature"] is not None:
        text += (
            f" A temperature of {result['temperature']:.2f}, fitted on the development "
            f"speakers' out-of-fold predictions only, brings the ECE to "
            f"{result['after']['ece']:.3f} (the same predictions, so an optimistic figure)."
        )
    elif subject.predictions == "test":
        text += " No temperature is fitted here: these are test predictions, never used to fit."
    return text
