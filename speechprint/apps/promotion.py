"""``promote`` as users run it: the study's candidate, checked on another corpus before it moves.

A study file's ``transfer:`` section (stored with the study when it runs) names another corpus the
promoted model must keep hearing. The refit candidate, and the alias's holder beside it, are
scored there per speaker (``cross_corpus_score``, each speaker's first clips); the alias moves
only if the candidate reaches the floor (``min_score``) and does not lose more than
``max_drop`` against the holder: the lower end of the paired bootstrap interval of the
difference, over the same speakers, must stay above ``-max_drop`` (non-inferiority). The corpus
is read before anything is refit, so a wrong folder costs nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechprint.apps.crosscorpus import (
    CrossCorpusResult,
    cross_corpus_score,
    load_classifier,
    read_label_map,
)
from speechprint.catalogue.config import TransferSpec
from speechprint.core.errors import SpeechPrintError
from speechprint.data.corpora import load_corpus
from speechprint.evaluation.metrics import PairedDifference, paired_bootstrap
from speechprint.evaluation.units import unit_metrics
from speechprint.release.gate import Gate, GateVerdict
from speechprint.release.promote import Promotion, promote
from speechprint.study.identity import stored_transfer
from speechprint.study.storage import load_study

log = logging.getLogger(__name__)


def promote_study(
    study_name: str,
    *,
    storage: str | None = None,
    check_transfer: bool = True,
    jobs: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Promotion:
    """``release.promote.promote`` with the study's transfer check as its gate (when it has one
    and ``check_transfer``); ``options`` are promote's (model_name, alias, archive, trial...)."""
    section = stored_transfer(load_study(study_name, storage)) if check_transfer else None
    gate = None if section is None else transfer_gate(section, jobs=jobs, progress=progress)
    return promote(study_name, storage=storage, jobs=jobs, gate=gate, **options)


def transfer_gate(
    section: TransferSpec, *, jobs: int | None = None, progress: bool = False
) -> Gate:
    """The gate of ``section``: its corpus and label map are read now (a wrong path is an error
    before any refit), the models when the gate is asked."""
    try:
        corpus = load_corpus(section.archive, section.corpus, regions=section.regions)
        mapping = read_label_map(section.labels) if section.labels else None
    except SpeechPrintError as error:
        raise type(error)(f"the study's transfer check: {error}") from None

    def score(run_id: str) -> CrossCorpusResult:
        log.info("scoring run %s on %s (%s)", run_id, section.corpus, section.archive)
        return cross_corpus_score(
            load_classifier(f"runs:/{run_id}/model"),
            corpus,
            source=section.source,
            label_map=mapping,
            jobs=jobs,
            progress=progress,
            max_clips_per_speaker=section.clips_per_speaker,
        )

    def gate(candidate_run_id: str, incumbent_run_id: str | None) -> GateVerdict:
        ours = SpeakerAnswers.of(score(candidate_run_id))
        theirs = None if incumbent_run_id is None else SpeakerAnswers.of(score(incumbent_run_id))
        return transfer_verdict(section, ours, theirs)

    return gate


@dataclass(frozen=True)
class SpeakerAnswers:
    """One model on the transfer corpus: each speaker's true and predicted label, by name (two
    models may order their labels differently), and its balanced accuracy with its interval."""

    corpus: str
    truth: dict[str, str]
    called: dict[str, str]
    score: float
    low: float
    high: float
    group_lines: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: CrossCorpusResult) -> SpeakerAnswers:
        level = unit_metrics(result.metrics, "speaker")
        labels = list(level["labels"])
        speakers = [str(s) for s in level["speakers"]]
        low, high = level["balanced_accuracy_ci"]
        groups = tuple(
            f"{g.group} ({g.label}): {g.share:.0%} [{g.low:.0%}-{g.high:.0%}] of {g.speakers}"
            for g in result.groups
        )
        return cls(
            corpus=result.corpus,
            truth={s: labels[int(i)] for s, i in zip(speakers, level["y_true"], strict=True)},
            called={s: labels[int(i)] for s, i in zip(speakers, level["y_pred"], strict=True)},
            score=float(level["balanced_accuracy"]),
            low=float(low),
            high=float(high),
            group_lines=groups,
        )

    def describe(self) -> str:
        return f"{self.score:.3f} [95% CI {self.low:.3f}-{self.high:.3f}]"


def paired_answers(ours: SpeakerAnswers, theirs: SpeakerAnswers) -> PairedDifference:
    """Ours minus theirs in balanced accuracy on the speakers both answered."""
    speakers = sorted(set(ours.called) & set(theirs.called))
    names = sorted(
        {ours.truth[s] for s in speakers}
        | {ours.called[s] for s in speakers}
        | {theirs.called[s] for s in speakers}
    )
    index = {name: i for i, name in enumerate(names)}
    truth = np.array([index[ours.truth[s]] for s in speakers], dtype=int)
    a = np.array([index[ours.called[s]] for s in speakers], dtype=int)
    b = np.array([index[theirs.called[s]] for s in speakers], dtype=int)
    return paired_bootstrap(truth, a, b)


def transfer_verdict(
    section: TransferSpec, ours: SpeakerAnswers, theirs: SpeakerAnswers | None
) -> GateVerdict:
    """Whether the candidate (``ours``) keeps hearing the transfer corpus: at least
    ``min_score``, and, against the alias's holder (``theirs``), a paired interval whose lower
    end stays above ``-max_drop``."""
    where = f"{ours.corpus} ({len(ours.called)} speakers, balanced accuracy per speaker)"
    details = [f"on {where}: it {ours.describe()}"]
    details += [f"  {line}" for line in ours.group_lines]
    tags = {
        "transfer_corpus": ours.corpus,
        "transfer_balanced_accuracy": f"{ours.score:.4f}",
        "transfer_balanced_accuracy_ci95": f"{ours.low:.4f}-{ours.high:.4f}",
    }
    failures = []
    if section.min_score is not None and ours.score < section.min_score:
        failures.append(f"it scores {ours.score:.3f} on {ours.corpus}, below {section.min_score}")
    if theirs is not None:
        difference = paired_answers(ours, theirs)
        details.append(f"the holder {theirs.describe()}; {difference.verdict('it', 'holder')}")
        details += [f"  holder {line}" for line in theirs.group_lines]
        tags["transfer_vs_holder"] = (
            f"{difference.difference:+.3f} [{difference.low:+.3f}, {difference.high:+.3f}]"
        )
        if difference.low < -section.max_drop:
            failures.append(
                f"its paired interval against the holder on {ours.corpus} reaches "
                f"{difference.low:+.3f}, below -{section.max_drop}"
            )
    tags["transfer_passed"] = str(not failures).lower()
    if failures:
        return GateVerdict(False, "; ".join(failures) + ".", details, tags)
    return GateVerdict(True, f"On {ours.corpus} it keeps {ours.score:.3f}.", details, tags)
