"""What was said, when no transcript is given: Whisper's own recognition (CTranslate2).

``recognise_encoded`` decodes English text from encoder frames that were computed anyway (the
``phones`` profile pools the same frames), so recognition costs only the decoder. Greedy search
(beam 1): measured on saa8k/so762, beam 5 cost about twice the decoder time for a transcript
the aligner reads only as a guide (words it cannot find are skipped, not forced).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from speechprint.features.pretrained.common import WINDOW_SAMPLES, import_ctranslate2, window_starts
from speechprint.features.pretrained.whisper import load_whisper, whisper_log_mel

PROMPT = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
BEAM_SIZE = 1
MAX_TOKENS = 224  # a 30 s window holds at most ~100 spoken words
NO_SPEECH = 0.6  # Whisper's no-speech probability above which a window may be silent
MIN_MEAN_LOGPROB = -1.0
TOKENS_PER_SECOND = 7  # fast speech: ~4 words/s, ~1.5 tokens a word


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet back to bytes (Whisper's tokens are spelt in it)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def decode_tokens(tokens: list[str]) -> str:
    """Whisper token strings (``"Ġthe"``) to text; special tokens (``<|...|>``) dropped."""
    table = _byte_decoder()
    raw = bytes(
        table[ch] for token in tokens if not token.startswith("<|") for ch in token if ch in table
    )
    return raw.decode("utf-8", errors="replace").strip()


def recognise_encoded(model: Any, encoded: Any, seconds: float = 30.0) -> list[str]:
    """English text per window of ``encoded`` (a CTranslate2 StorageView ``(B, frames, d)``,
    ``seconds`` of audio each). Encodings of trimmed windows (shorter than 30 s) can make the
    decoder loop on a phrase: tokens are bounded by the audio's length and 4-grams may not
    repeat."""
    batch = int(encoded.shape[0])
    results = model.generate(
        encoded,
        [PROMPT] * batch,
        beam_size=BEAM_SIZE,
        max_length=min(MAX_TOKENS, int(8 + TOKENS_PER_SECOND * seconds)),
        no_repeat_ngram_size=4,
        suppress_blank=True,
        return_no_speech_prob=True,
        return_scores=True,
    )
    # On silence Whisper still says something ("you"). As Whisper's own transcribe does, a
    # window is silent when it judges it so and its text is unlikely (mean log-probability of
    # the tokens, CTranslate2's score with length penalty 1): digits alone can pass the first.
    return [
        ""
        if r.no_speech_prob > NO_SPEECH and r.scores[0] < MIN_MEAN_LOGPROB
        else drop_loop(decode_tokens(r.sequences[0]))
        for r in results
    ]


def drop_loop(text: str) -> str:
    """The first round of a decoder loop ("a big arm a big arm a big"), else ``text``: a text
    that is one phrase repeated at least twice (case and punctuation aside) keeps one phrase.

    >>> drop_loop("Mandy has a big arm Mandy has a Big Arm Mandy has")
    'Mandy has a big arm'
    >>> drop_loop("three two two seven")
    'three two two seven'
    """
    words = text.split()
    bare = [re.sub(r"\W", "", w.lower()) for w in words]
    for period in range(1, len(words) // 2 + 1):
        if bare[period:] == bare[: len(bare) - period] and (period > 1 or len(words) > 2):
            return " ".join(words[:period])
    return text


def transcribe(wave: np.ndarray, model: str = "base", compute_type: str = "int8") -> str:
    """What Whisper heard in a 16 kHz recording (30 s windows, texts joined)."""
    ctranslate2 = import_ctranslate2()
    whisper = load_whisper(model, compute_type)
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    mels = np.stack(
        [whisper_log_mel(wave[s : s + WINDOW_SAMPLES]) for s in window_starts(len(wave))]
    )
    encoded = whisper.encode(ctranslate2.StorageView.from_array(mels))
    return " ".join(t for t in recognise_encoded(whisper, encoded) if t)
