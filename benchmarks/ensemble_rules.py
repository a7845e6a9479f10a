"""Which promotion rule generalises? Development speakers only: the test split is not read.

    python benchmarks/ensemble_rules.py --study saa-region17-pretrained

Every rule (the top trial; the top K trials averaged; the best trial of each of the top K pairs
averaged, as ``promote --ensemble K [--ensemble-by pair]`` build them) picks its members on half
of the development speakers, from the stored out-of-fold predictions of a cross-validated study,
and is scored on the other half; over ``--halvings`` stratified halvings, both ways. Picking on
the same speakers it is scored on would reward the rule that overfits the folds most.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.model_selection import StratifiedKFold

from speechprint.evaluation.evidence import oof_rows, per_speaker
from speechprint.evaluation.metrics import balanced_accuracy
from speechprint.release.candidates import best_of_each_pair
from speechprint.study.storage import load_study
from speechprint.tracking import store as tracking


def out_of_fold(study_name: str, storage: str | None) -> tuple[list, np.ndarray, dict]:
    """Complete trials, the speakers' classes, and each trial's (speakers, classes) probabilities."""
    study, client = load_study(study_name, storage), tracking.client()
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    by_trial = {t.number: per_speaker(oof_rows(client, t)) for t in trials}
    speakers = sorted(set.intersection(*(set(s) for s in by_trial.values())))
    first = next(iter(by_trial.values()))
    y = np.array([first[s][0] for s in speakers])
    proba = {n: np.array([rows[s][1] for s in speakers]) for n, rows in by_trial.items()}
    return trials, y, proba


def rules(trials: list, y: np.ndarray, proba: dict, rows: np.ndarray, ks: list[int]) -> dict:
    """Each rule's members, chosen on ``rows`` only."""

    def score(t) -> float:  # noqa: ANN001
        return balanced_accuracy(y[rows], proba[t.number][rows].argmax(1), 0)

    ranked = sorted(trials, key=score, reverse=True)
    chosen = {"top trial": ranked[:1]}
    for k in ks:
        chosen[f"top {k} trials"] = ranked[:k]
        chosen[f"best of top {k} pairs"] = best_of_each_pair(ranked)[:k]
    return {name: [t.number for t in members] for name, members in chosen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--k", type=int, nargs="+", default=[2, 3, 5])
    parser.add_argument("--halvings", type=int, default=10)
    args = parser.parse_args()
    trials, y, proba = out_of_fold(args.study, args.storage)

    def scored(members: list[int], rows: np.ndarray) -> float:
        mean = np.mean([proba[n][rows] for n in members], axis=0)
        return balanced_accuracy(y[rows], mean.argmax(1), 0)

    everyone = np.arange(len(y))
    print(f"{len(trials)} complete trials, {len(y)} development speakers, out of fold")
    for name, members in rules(trials, y, proba, everyone, args.k).items():
        print(f"  on all of them: {name:22s} {scored(members, everyone):.3f}  trials {members}")
    held_out: dict[str, list[float]] = {}
    for seed in range(args.halvings):
        for pick, score in StratifiedKFold(2, shuffle=True, random_state=seed).split(y, y):
            for name, members in rules(trials, y, proba, pick, args.k).items():
                held_out.setdefault(name, []).append(scored(members, score))
    top = np.array(held_out["top trial"])
    print(f"chosen on one half, scored on the other ({2 * args.halvings} halvings):")
    for name, values in sorted(held_out.items(), key=lambda kv: -np.mean(kv[1])):
        gain = np.array(values) - top
        print(
            f"  {name:22s} {np.mean(values):.3f}  vs the top trial {gain.mean():+.3f} "
            f"(better in {np.mean(gain > 0):.0%} of halvings)"
        )


if __name__ == "__main__":
    main()
