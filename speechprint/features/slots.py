"""What the phoneme recogniser heard where the text expected each phoneme (its *slots*).

``phone_alignment.align_text`` places every expected phoneme of an aligned word on the CTC
Viterbi path. Forced alignment always finds *some* frame for the expected sound, so what was
said is read from the posteriors around it, not from the path: a slot's **territory** runs from
half-way after the previous slot's spike to half-way before the next one's (at most
``MAX_REACH`` frames either side), so a substituted sound's spike falls in the slot it replaced
whichever frame the aligner chose. Over the territory the recogniser's posteriors (blank and
word boundary left out) are summed and folded into English phonemes (``REALISED``):

- ``distribution``: the share of the heard phoneme mass per realised phoneme;
- ``heard``: the most likely realisation; ``DELETED`` when the territory holds less than
  ``MIN_MASS`` frames' worth of any phoneme, or when the heard sound is a neighbouring slot's own
  expected sound that the neighbour also heard (a dropped /d/ after /n/ leaves /n/'s spike);
- ``gop``: the alignment's goodness of pronunciation (``PhoneSpan.gop``).

Only slots of aligned (or unsure) words are measured; a skipped or unreached word is a reading
slip, not a pronunciation, and its slots carry ``heard == ""`` and NaN numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from speechprint.features.alignment import (
    ALIGNED,
    UNSURE,
    build_graph,
    recogniser_vocab,
    viterbi,
)
from speechprint.features.phone_alignment import Alignment, PhoneSpan, align_text
from speechprint.text.g2p import ENGLISH_PHONEMES, fold
from speechprint.text.lexicon import Word

GLOTTAL = "ʔ"  # kept apart: a glottal stop for a final /t/ is a realisation, not a deletion
REALISED: tuple[str, ...] = (*ENGLISH_PHONEMES, GLOTTAL)
DELETED = "∅"
MIN_MASS = 0.5  # frames' worth of summed phoneme posterior: less is silence or blank
MAX_REACH = 8  # frames (160 ms) a territory may extend beyond its slot's own spike
# Recogniser tokens g2p.fold drops but that are realisations of English phonemes heard in L2
# speech (Spanish [β] for /b v/, a uvular r, a retroflex stop), folded to the nearest.
_HEARD_FOLD: dict[str, str] = {
    "β": "b",
    "ɓ": "b",
    "ɸ": "f",
    "ʋ": "v",
    "ɣ": "ɡ",
    "χ": "h",
    "ħ": "h",
    "ç": "h",
    "ʁ": "ɹ",
    "ʀ": "ɹ",
    "ɻ": "ɹ",
    "ɽ": "ɹ",
    "ɲ": "n",
    "ñ": "n",
    "ɴ": "ŋ",
    "ɱ": "m",
    "ɕ": "ʃ",
    "ʂ": "ʃ",
    "ʐ": "ʒ",
    "ʑ": "ʒ",
    "t͡ɕ": "t͡ʃ",
    "t͡ɕʰ": "t͡ʃ",
    "t͡ɕ͈": "t͡ʃ",
    "ɖ": "d",
    "ɗ": "d",
    "ʈ": "t",
    "ɯ": "u",
    "ɘ": "ə",
    "ɰ": "w",
    "ɥ": "w",
    "ʎ": "l",
    "ʏ": "ʊ",
    "ɮ": "l",
    "ʔ": GLOTTAL,
}


@dataclass(frozen=True)
class Slot:
    word: int  # position of its word in the text's words
    index: int  # position of the phoneme in its word
    expected: str
    heard: str  # a REALISED phoneme, DELETED, or "" (not measured)
    p_expected: float  # share of the heard mass on the expected phoneme
    mass: float  # frames' worth of phoneme posterior in the territory
    gop: float
    status: str  # the word's alignment status
    start: float  # seconds (the alignment's phoneme times)
    end: float
    distribution: np.ndarray  # (len(REALISED),) shares summing to 1; NaN when not measured

    @property
    def measured(self) -> bool:
        return self.heard != ""

    @property
    def substituted(self) -> bool:
        return self.measured and self.heard not in (self.expected, DELETED)

    @property
    def deleted(self) -> bool:
        return self.heard == DELETED


@functools.cache
def fold_matrix() -> np.ndarray:
    """``(recogniser tokens, REALISED)`` 0/1: which realised phoneme each token counts for
    (blank, boundaries, marks and tones count for none)."""
    vocab, _, gaps = recogniser_vocab()
    column = {p: i for i, p in enumerate(REALISED)}
    matrix = np.zeros((len(vocab), len(REALISED)), dtype=np.float32)
    for token, row in vocab.items():
        if row in gaps:
            continue
        folded = _HEARD_FOLD.get(token) or next(iter(fold([token])), None)
        if folded in column:
            matrix[row, column[folded]] = 1.0
    return matrix


def hear(log_probs: np.ndarray, words: list[Word]) -> tuple[Alignment, list[Slot]]:
    """Align ``words`` (``text.g2p.text_words``) in 50 frames/s log-posteriors
    (``alignment.posterior_extractor()``) and read every expected phoneme's slot."""
    alignment = align_text(log_probs, words)
    spikes = _spike_frames(log_probs, words, alignment)
    bounds = _territories(spikes, len(log_probs))
    posteriors = np.exp(log_probs) @ fold_matrix()
    slots: list[Slot] = []
    for n, phone in enumerate(alignment.phones):
        k = n - _first_phone(alignment, phone.word)
        if n not in bounds:
            slots.append(_unmeasured(phone, k))
            continue
        lo, hi = bounds[n]
        heard_mass = posteriors[lo:hi].sum(axis=0)
        mass = float(heard_mass.sum())
        shares = heard_mass / mass if mass > 0 else np.full(len(REALISED), np.nan)
        column = REALISED.index(phone.phoneme) if phone.phoneme in REALISED else None
        p_expected = float(shares[column]) if column is not None and mass > 0 else 0.0
        heard = REALISED[int(np.argmax(heard_mass))] if mass >= MIN_MASS else DELETED
        slot = Slot(
            phone.word,
            k,
            phone.phoneme,
            heard,
            p_expected,
            mass,
            phone.gop,
            phone.status,
            phone.start,
            phone.end,
            shares,
        )
        slots.append(slot)
    return alignment, _merged_into_neighbours(slots)


def _first_phone(alignment: Alignment, word: int) -> int:
    return sum(len(w.phonemes) for w in alignment.words[:word])


def _unmeasured(phone: PhoneSpan, k: int) -> Slot:
    nan = float("nan")
    return Slot(
        phone.word,
        k,
        phone.phoneme,
        "",
        nan,
        nan,
        nan,
        phone.status,
        nan,
        nan,
        np.full(len(REALISED), np.nan),
    )


def _spike_frames(
    log_probs: np.ndarray, words: list[Word], alignment: Alignment
) -> dict[int, tuple[int, int]]:
    """``{phone position: (first, last) frame of its token on the path}`` for measured words.

    The path is recomputed as ``align_text`` computes it (same graph, same Viterbi), since the
    alignment keeps times, not frames."""
    vocab, blank, gaps = recogniser_vocab()
    sayable = [i for i, w in enumerate(words) if w.phonemes and all(p in vocab for p in w.phonemes)]
    if not sayable or not len(log_probs):
        return {}
    graph = build_graph([words[i] for i in sayable], vocab, blank)
    path, _ = viterbi(log_probs, graph, gaps)
    out: dict[int, tuple[int, int]] = {}
    for inner, position in enumerate(sayable):
        if alignment.word_spans[position].status not in (ALIGNED, UNSURE):
            continue
        first_state = int(np.flatnonzero(graph.word_of == inner)[0])
        base = _first_phone(alignment, position)
        for k in range(len(words[position].phonemes)):
            frames = np.flatnonzero(path == first_state + 2 * k)
            if len(frames):
                out[base + k] = (int(frames[0]), int(frames[-1]))
    return out


def _territories(spikes: dict[int, tuple[int, int]], n_frames: int) -> dict[int, tuple[int, int]]:
    """Each measured slot's ``[lo, hi)`` frames: half-way to its measured neighbours' spikes."""
    order = sorted(spikes)
    out = {}
    for i, n in enumerate(order):
        first, last = spikes[n]
        lo, hi = max(0, first - MAX_REACH), min(n_frames, last + 1 + MAX_REACH)
        if i:
            lo = max(lo, (spikes[order[i - 1]][1] + first) // 2 + 1)
        if i + 1 < len(order):
            hi = min(hi, (last + spikes[order[i + 1]][0]) // 2 + 1)
        out[n] = (lo, max(hi, last + 1))
    return out


def _merged_into_neighbours(slots: list[Slot]) -> list[Slot]:
    """A slot that heard its word-neighbour's expected sound, which the neighbour heard too,
    lost its own sound: a deletion (the aligner had to lend it a frame of the neighbour's)."""
    out = list(slots)
    for n, slot in enumerate(slots):
        if not slot.substituted:
            continue
        for m in (n - 1, n + 1):
            if 0 <= m < len(slots) and slots[m].word == slot.word:
                other = slots[m]
                if other.expected == slot.heard and other.heard == other.expected:
                    out[n] = replace(slot, heard=DELETED)
                    break
    return out
