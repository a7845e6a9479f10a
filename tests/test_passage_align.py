"""Forced alignment of the passage: constructed posteriors (skips, unread words) and real speech
synthesised by eSpeak NG, which reports where each word starts (the answer is known)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

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


# -- eSpeak NG with word events: where each word really starts ----------------------------------
class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def speak_with_word_times(text: str, voice: str, rate: int) -> tuple[np.ndarray, int, dict]:
    """(int16 samples, sample rate, {character offset: start seconds}) from espeak_EVENT_WORD."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    data_root = str(Path(espeakng_loader.get_data_path()).parent).encode()
    sample_rate = lib.espeak_Initialize(2, 0, data_root, 0)  # 2: synchronous
    chunks, starts = [], {}

    def collect(wave, n, events) -> int:  # noqa: ANN001 - C callback
        if n > 0 and wave:
            chunks.append(np.ctypeslib.as_array(wave, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:  # 0: end of the event list
            if events[i].type == 1:  # espeakEVENT_WORD; text_position counts from 1
                starts[events[i].text_position - 1] = events[i].audio_position / 1000
            i += 1
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    assert lib.espeak_SetVoiceByName(voice.encode()) == 0
    lib.espeak_SetParameter(1, rate, 0)  # espeakRATE, words per minute
    blob = text.encode() + b"\0"
    lib.espeak_Synth(blob, len(blob), 0, 1, 0, 1, None, None)  # POS_CHARACTER, CHARS_UTF8
    lib.espeak_Terminate()
    return np.concatenate(chunks), sample_rate, starts


@pytest.mark.slow
@pytest.mark.parametrize(
    "voice,rate", [("en-us", 160), ("en-gb-x-rp", 190), ("en-us+f2", 140), ("es", 160)]
)
def test_alignment_of_synthetic_speech_is_within_100_ms(
    require_pretrained, voice: str, rate: int
) -> None:
    require_pretrained("hama", "espeakng_loader")
    from scipy.signal import resample_poly

    from speechprint.features import make_extractor
    from speechprint.features.alignment import recogniser_vocab
    from speechprint.text.lexicon import passage_text

    wave, sample_rate, truth = speak_with_word_times(passage_text(), voice, rate)
    audio = resample_poly(wave.astype(np.float32) / 32768, 16000, sample_rate).astype(np.float32)
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
    from scipy.signal import resample_poly

    from speechprint.features import make_extractor
    from speechprint.features.alignment import POSTERIOR_STRIDE, recogniser_vocab
    from speechprint.text.lexicon import passage_text

    wave, sample_rate, truth = speak_with_word_times(passage_text(), voice, 160)
    audio = resample_poly(wave.astype(np.float32) / 32768, 16000, sample_rate)[: 3 * 16000]
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
