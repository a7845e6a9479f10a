"""eSpeak NG speech with the time of every word and phoneme it spoke (its own events): what an
aligner's answers are measured against. Used by the alignment tests and the phonetic benchmark."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_EVENT_WORD, _EVENT_PHONEME = 1, 7


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


@dataclass(frozen=True)
class Spoken:
    audio: np.ndarray  # float32, 16 kHz
    words: list[tuple[int, float]]  # (character offset in the text, start seconds)
    phonemes: list[tuple[str, float]]  # (IPA, start seconds), pauses left out


def speak(text: str, voice: str = "en-us", rate: int = 160) -> Spoken:
    """Speak ``text``, collecting espeakEVENT_WORD and espeakEVENT_PHONEME (IPA) events."""
    import espeakng_loader
    from scipy.signal import resample_poly

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetPhonemeEvents.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
    lib.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    data_root = str(Path(espeakng_loader.get_data_path()).parent).encode()
    sample_rate = lib.espeak_Initialize(2, 0, data_root, 0)  # 2: synchronous
    lib.espeak_ng_SetPhonemeEvents(1, 1)  # enable, IPA names
    chunks, words, phonemes = [], [], []

    def collect(wave, n, events) -> int:  # noqa: ANN001 - C callback
        if n > 0 and wave:
            chunks.append(np.ctypeslib.as_array(wave, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:  # 0: end of the list
            event = events[i]
            if event.type == _EVENT_WORD:  # text_position counts from 1
                words.append((event.text_position - 1, event.audio_position / 1000))
            elif event.type == _EVENT_PHONEME:
                name = bytes(event.id).split(b"\0")[0].decode("utf-8", "replace")
                if name.strip() and name not in ("_", "ˈ", "ˌ"):
                    phonemes.append((name, event.audio_position / 1000))
            i += 1
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    assert lib.espeak_SetVoiceByName(voice.encode()) == 0
    lib.espeak_SetParameter(1, rate, 0)  # espeakRATE, words per minute
    blob = text.encode() + b"\0"
    lib.espeak_Synth(blob, len(blob), 0, 1, 0, 1, None, None)  # POS_CHARACTER, CHARS_UTF8
    lib.espeak_Terminate()
    wave = np.concatenate(chunks).astype(np.float32) / 32768
    audio = resample_poly(wave, 16000, sample_rate).astype(np.float32)
    return Spoken(audio, words, phonemes)


def fold_espeak(symbol: str) -> list[str]:
    """An eSpeak IPA phoneme as ``ENGLISH_PHONEMES`` (stress and length marks dropped; a
    diphthong + r gives two)."""
    from speechprint.text.g2p import fold

    bare = symbol.replace("ˈ", "").replace("ˌ", "").replace("ː", "")
    bare = {"dʒ": "d͡ʒ", "tʃ": "t͡ʃ", "ᵻ": "ɪ", "ɐ": "ə", "ɜ": "ɝ", "ɡ": "ɡ", "ɬ": "l"}.get(
        bare, bare
    )
    if bare.endswith("ɹ") and len(bare) > 1:
        return [*fold([bare[:-1]]), "ɹ"]
    return list(fold([bare]))


def start_errors(spoken: Spoken, phones: list) -> list[float]:
    """|aligned start - eSpeak's start| for each aligned phoneme matched to the same sound
    spoken (sequences matched with difflib, so a phoneme G2P and eSpeak disagree on is left
    out)."""
    import difflib

    truth = [(p, t) for name, t in spoken.phonemes for p in fold_espeak(name)[:1]]
    ours = [p for p in phones if p.status == "aligned"]
    matcher = difflib.SequenceMatcher(
        a=[p for p, _ in truth], b=[p.phoneme for p in ours], autojunk=False
    )
    errors = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            errors.append(abs(ours[block.b + k].start - truth[block.a + k][1]))
    return errors
