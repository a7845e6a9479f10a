"""Any recording aligned to any text: sentences other than the passage spoken by eSpeak NG,
which reports when it starts every phoneme (the answer is known); constructed posteriors for
what the aligner must not guess."""

from __future__ import annotations

import numpy as np
import pytest

from speechprint.text.lexicon import Word

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "My grandmother bought seven yellow umbrellas at the market on Tuesday.",
    # Over 8 s: crosses the recogniser's windows (phones.hama_posteriors).
    "Could you please send me the report before noon tomorrow? Children were laughing while "
    "the teacher read a funny story about a giant whale.",
]


def test_a_word_without_english_sounds_is_skipped_and_its_phonemes_have_no_times(
    require_pretrained,
) -> None:
    require_pretrained("hama")
    from speechprint.features.alignment import recogniser_vocab
    from speechprint.features.phone_alignment import align_text

    vocab, blank, _ = recogniser_vocab()
    words = [Word(0, "ask", 0, ("æ", "s", "k")), Word(1, "hmm", 4, ())]
    said = ["<blank>"] * 3 + ["æ", "æ", "<blank>", "s", "<blank>", "k"] + ["<blank>"] * 4
    log_probs = np.full((len(said), len(vocab)), -30.0)
    log_probs[np.arange(len(said)), [vocab[s] for s in said]] = -0.01
    alignment = align_text(log_probs, words)
    assert [s.status for s in alignment.word_spans] == ["aligned", "skipped"]
    assert alignment.aligned_share == 0.5
    assert [p.phoneme for p in alignment.phones] == ["æ", "s", "k"]
    starts = [p.start for p in alignment.phones]
    assert starts == sorted(starts) and all(p.gop > 0 for p in alignment.phones)
    assert alignment.phones[1].start == pytest.approx(6 * 0.02 - 0.04)


@pytest.mark.parametrize("voice,rate", [("en-us", 160), ("en-gb-x-rp", 180)])
def test_phoneme_starts_of_synthetic_sentences_are_within_50_ms(
    require_pretrained, voice: str, rate: int
) -> None:
    require_pretrained("hama", "espeakng_loader")
    from espeak_timing import speak, start_errors

    from speechprint.features.phone_alignment import align_text
    from speechprint.features.pretrained.phones import hama_posteriors
    from speechprint.text.g2p import text_words

    errors, spoken_phonemes = [], 0
    for sentence in SENTENCES:
        spoken = speak(sentence, voice, rate)
        alignment = align_text(hama_posteriors(spoken.audio), text_words(sentence))
        assert alignment.aligned_share >= 0.9, [s.status for s in alignment.word_spans]
        errors += start_errors(spoken, alignment.phones)
        spoken_phonemes += len(spoken.phonemes)
    assert len(errors) >= 0.8 * spoken_phonemes, f"{len(errors)} of {spoken_phonemes} matched"
    assert np.median(errors) <= 0.050, f"median phoneme-start error {np.median(errors):.3f} s"
