"""Any recording aligned to any text: words and their phonemes, with times and a confidence.

The passage's aligner (``alignment.py``: CTC Viterbi over ``phoneme_posteriors``, skippable
words, a path that may stop early) runs on the words of any text (``text.g2p.text_words``).
Each aligned word's phonemes are then read off the same Viterbi path, so nothing is decoded
twice:

- a phoneme **starts** at the first frame of its CTC spike less ``PHONE_LAG`` (the spike comes
  after the sound's acoustic onset), and ends where the word's next phoneme starts, or with its
  word;
- its **GOP** (goodness of pronunciation) is the mean, over its spike frames, of the expected
  phoneme's log-posterior minus the best other phoneme's (blank and word boundary excluded):
  above 0 the expected sound won, below 0 another did;
- its **score** is the mean log-posterior against the best token of all, blank included (as a
  word's), and a phoneme below ``MIN_PHONE_SCORE`` is marked unsure. A phoneme of a word that was
  skipped, unsure or not reached takes its word's status and no times: it is never guessed.

A word with no pronunciation (G2P gave no English sound) is skipped before the search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechprint.features.alignment import (
    ALIGNED,
    POSTERIOR_STRIDE,
    SKIPPED,
    UNSURE,
    WordSpan,
    build_graph,
    recogniser_vocab,
    spans_from_path,
    viterbi,
)
from speechprint.features.frames import SAMPLES_PER_ENCODER_FRAME, WHISPER_SR
from speechprint.text.lexicon import Word

# A phoneme's CTC spike comes after its acoustic onset. Measured on 12 eSpeak NG sentences (3
# voices) against eSpeak's phoneme events, median start error: lag 0 -> 42 ms, 0.02 -> 27 ms,
# 0.04 -> 18 ms, 0.08 -> 25 ms. A word's first phoneme starts with its word (ONSET_LAG).
PHONE_LAG = 0.04
MIN_PHONE_SCORE = -8.0  # mean log(p(expected) / p(best)) over the phoneme's spike frames
FRAME_SECONDS = POSTERIOR_STRIDE * SAMPLES_PER_ENCODER_FRAME / WHISPER_SR


@dataclass(frozen=True)
class PhoneSpan:
    word: int  # position of its word in the text's words
    phoneme: str  # one of text.g2p.ENGLISH_PHONEMES (or a user lexicon's symbol)
    start: float  # seconds; NaN unless aligned or unsure
    end: float
    gop: float  # NaN unless aligned or unsure
    score: float
    status: str


@dataclass(frozen=True)
class Alignment:
    """One recording aligned to one text's words."""

    words: list[Word]
    word_spans: list[WordSpan]  # one per word, ``index`` = position in ``words``
    phones: list[PhoneSpan]  # every phoneme of every word, in order

    @property
    def aligned_share(self) -> float:
        """Share of the text's words aligned (0.0 for an empty text)."""
        if not self.word_spans:
            return 0.0
        return sum(s.status == ALIGNED for s in self.word_spans) / len(self.word_spans)


def align_text(log_probs: np.ndarray, words: list[Word]) -> Alignment:
    """Align ``words`` (``text_words(text)``) in one recording's 50 frames/s log-posteriors
    (``alignment.posterior_extractor()``'s output)."""
    vocab, blank, gaps = recogniser_vocab()
    sayable = [i for i, w in enumerate(words) if w.phonemes and all(p in vocab for p in w.phonemes)]
    spans = [WordSpan(i, np.nan, np.nan, np.nan, SKIPPED) for i in range(len(words))]
    phones = {
        i: [PhoneSpan(i, p, np.nan, np.nan, np.nan, np.nan, SKIPPED) for p in w.phonemes]
        for i, w in enumerate(words)
    }
    if sayable and len(log_probs):
        inner = [words[i] for i in sayable]
        graph = build_graph(inner, vocab, blank)
        path, skipped = viterbi(log_probs, graph, gaps)
        found = spans_from_path(log_probs, FRAME_SECONDS, inner, graph, path, skipped, blank)
        competitors = _competitor_best(log_probs, [blank, *gaps])
        for position, span in zip(sayable, found, strict=True):
            spans[position] = WordSpan(position, span.start, span.end, span.score, span.status)
            word_phones = _phones_of(
                log_probs, competitors, graph, path, span, words[position], position
            )
            phones[position] = word_phones
    ordered = [p for i in range(len(words)) for p in phones[i]]
    return Alignment(list(words), spans, ordered)


def _competitor_best(log_probs: np.ndarray, excluded: list[int]) -> np.ndarray:
    """Per frame, the two best phoneme columns (blank and boundaries excluded): ``(T, 2)``
    indices, so a phoneme's best competitor is the best other than itself."""
    masked = np.array(log_probs, copy=True)
    masked[:, excluded] = -np.inf
    return np.argsort(masked, axis=1)[:, -2:][:, ::-1]


def _phones_of(
    log_probs: np.ndarray,
    competitors: np.ndarray,
    graph: object,
    path: np.ndarray,
    span: WordSpan,
    word: Word,
    position: int,
) -> list[PhoneSpan]:
    """The phonemes of one word off the Viterbi path (``graph`` is ``alignment._Graph``)."""
    if span.status not in (ALIGNED, UNSURE):
        return [
            PhoneSpan(position, p, np.nan, np.nan, np.nan, np.nan, span.status)
            for p in word.phonemes
        ]
    word_of = graph.word_of  # type: ignore[attr-defined]
    tokens = graph.tokens  # type: ignore[attr-defined]
    first_state = int(np.flatnonzero(word_of == span.index)[0])
    best = log_probs.max(axis=1)
    rows = []
    for k, phoneme in enumerate(word.phonemes):
        state = first_state + 2 * k  # tokens and blanks alternate inside a word
        frames = np.flatnonzero(path == state)
        token = int(tokens[state])
        own = log_probs[frames, token]
        top, second = competitors[frames, 0], competitors[frames, 1]
        rival = np.where(top == token, second, top)
        gop = float(np.mean(own - log_probs[frames, rival]))
        score = float(np.mean(own - best[frames]))
        rows.append((phoneme, frames[0] * FRAME_SECONDS - PHONE_LAG, gop, score))
    out = []
    for k, (phoneme, start, gop, score) in enumerate(rows):
        start = max(start, span.start) if k else span.start
        end = max(start, rows[k + 1][1]) if k + 1 < len(rows) else span.end
        end = min(end, span.end)
        status = span.status if score >= MIN_PHONE_SCORE else UNSURE
        out.append(PhoneSpan(position, phoneme, start, end, gop, score, status))
    return out
