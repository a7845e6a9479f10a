"""Forced alignment of the passage: constructed posteriors (skips, unread words) and real speech
synthesised by eSpeak NG, which reports where each word starts (the answer is known)."""

from __future__ import annotations

import numpy as np
import pytest
from espeak_timing import speak

from speechprint.features.alignment import ALIGNED, NOT_REACHED, SKIPPED, align_posteriors
from speechprint.text.lexicon import PRONUNCIATIONS, Word, passage_words


def _toy() -> tuple[list[Word], dict[str, int]]:
    words = [Word(i, t, 0, tuple(t)) for i, t in enumerate(["ab", "cd", "ef", "gh"])]
    vocab = {c: i for i, c in enumerate("abcdefgh")} | {"<blank>": 8, "<wb>": 9}
    return words, vocab


def _posteriors(sequence: list[str], vocab: dict[str, int]) -> np.ndarray:
    """Frames that say exactly ``sequence`` (one symbol per frame, '-' = blank)."""
    lp = np.full((len(sequence), len(vocab)), -40.0)  # an absent sound: e^-40
    for t, symbol in enumerate(sequence):
        lp[t, vocab["<blank>" if symbol == "-" else symbol]] = -0.01
    return lp


def test_a_missing_word_is_skipped_and_unread_words_are_not_guessed() -> None:
    words, vocab = _toy()
    said = list("--aa-bb---ee-ff---") + ["-"] * 6  # "ab", "ef": "cd" skipped, "gh" never said
    spans = align_posteriors(_posteriors(said, vocab), 0.04, words, vocab, 8, [8, 9])
    assert [s.status for s in spans] == [ALIGNED, SKIPPED, ALIGNED, NOT_REACHED]
    assert np.isnan(spans[1].start) and np.isnan(spans[3].start)
    assert spans[0].start == pytest.approx(0.0, abs=0.09) and spans[2].end == pytest.approx(0.60)


def test_every_passage_word_has_a_pronunciation_in_the_recogniser_tokens() -> None:
    words = passage_words()
    assert len(words) == 69 and {w.text.lower() for w in words} == set(PRONUNCIATIONS)


@pytest.mark.slow
@pytest.mark.parametrize(
    "voice,rate", [("en-us", 160), ("en-gb-x-rp", 190), ("en-us+f2", 140), ("es", 160)]
)
def test_alignment_of_synthetic_speech_is_within_100_ms(
    require_pretrained, voice: str, rate: int
) -> None:
    require_pretrained("hama", "espeakng_loader")
    from speechprint.features import make_extractor
    from speechprint.features.alignment import recogniser_vocab
    from speechprint.text.lexicon import passage_text

    spoken = speak(passage_text(), voice, rate)
    audio, truth = spoken.audio, dict(spoken.words)
    from speechprint.features.alignment import POSTERIOR_STRIDE

    extractor = make_extractor("phoneme_posteriors", {"frame_stride": POSTERIOR_STRIDE})
    vocab, blank, gaps = recogniser_vocab()
    frame_seconds = extractor.frame_stride * 320 / 16000
    spans = align_posteriors(
        extractor.transform(audio), frame_seconds, passage_words(), vocab, blank, gaps
    )
    errors = [
        abs(span.start - truth[word.start_char])
        for word, span in zip(passage_words(), spans)
        if span.status == ALIGNED and word.start_char in truth
    ]
    assert len(errors) >= 55, f"only {len(errors)} of 69 words aligned"
    assert np.median(errors) < 0.100, f"median start error {np.median(errors):.3f} s"


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["en-us", "pl"])
def test_a_cut_recording_aligns_what_was_said_and_leaves_the_rest_unread(
    require_pretrained, voice: str
) -> None:
    require_pretrained("hama", "espeakng_loader")
    from speechprint.features import make_extractor
    from speechprint.features.alignment import POSTERIOR_STRIDE, recogniser_vocab
    from speechprint.text.lexicon import passage_text

    spoken = speak(passage_text(), voice, 160)
    audio, truth = spoken.audio[: 3 * 16000], dict(spoken.words)
    extractor = make_extractor("phoneme_posteriors", {"frame_stride": POSTERIOR_STRIDE})
    vocab, blank, gaps = recogniser_vocab()
    spans = align_posteriors(
        extractor.transform(audio.astype(np.float32)),
        0.02 * POSTERIOR_STRIDE,
        passage_words(),
        vocab,
        blank,
        gaps,
    )
    said = sum(1 for word in passage_words() if truth.get(word.start_char, 99.0) < 2.8)
    statuses = [span.status for span in spans]
    assert abs(statuses.count(ALIGNED) - said) <= 1, statuses
    assert statuses[said + 1 :] == [NOT_REACHED] * (len(spans) - said - 1)  # not guessed
