"""eSpeak NG speech with a phoneme changed on purpose, for testing a substitution detector.

This libespeak-ng build reads ``[[...]]`` phoneme input as letters (checked: "[[h'Ebi]]" is spelt
out), so a word is respelled instead ("five" -> "fibe") and kept only when eSpeak's own
phonemes for the respelling (``espeak_TextToPhonemes``) are the original word's with exactly
the planned change: what is planted is what eSpeak says it speaks."""

from __future__ import annotations

import ctypes
import functools
import re
from pathlib import Path


@functools.cache
def _library() -> ctypes.CDLL:
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.espeak_TextToPhonemes.argtypes += [ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    return lib


def mnemonics(word: str, voice: str = "en-us") -> str:
    """eSpeak's phoneme mnemonics for one word (``"very"`` -> ``"v'Eri"``)."""
    import espeakng_loader

    lib = _library()
    lib.espeak_Initialize(2, 0, str(Path(espeakng_loader.get_data_path()).parent).encode(), 0)
    lib.espeak_SetVoiceByName(voice.encode())
    pointer = ctypes.c_char_p(word.encode())
    out = lib.espeak_TextToPhonemes(ctypes.byref(pointer), 1, 0).decode()  # 1: UTF-8 text
    lib.espeak_Terminate()
    return out.strip()


def respell(word: str, letter: str, new_letter: str, phoneme: str, new_phoneme: str) -> str | None:
    """A spelling of ``word`` that eSpeak says with ``phoneme`` -> ``new_phoneme`` (mnemonics)
    and nothing else changed, or None."""
    want = mnemonics(word).replace(phoneme, new_phoneme)
    if want == mnemonics(word):
        return None
    for candidate in (word.replace(letter, new_letter), word.replace(letter, new_letter * 2)):
        if mnemonics(candidate) == want:
            return candidate
    return None


def planted_text(
    text: str, letter: str, new_letter: str, phoneme: str, new_phoneme: str
) -> tuple[str, set[int]]:
    """``text`` with every word that can be respelled so (see ``respell``) respelled, and the
    positions (0-based, reading order) of the words changed."""
    parts = re.split(r"([A-Za-z']+)", text)
    position, changed = -1, set()
    for k, part in enumerate(parts):
        if re.fullmatch(r"[A-Za-z']+", part):
            position += 1
            new = respell(part.lower(), letter, new_letter, phoneme, new_phoneme)
            if new is not None:
                parts[k], _ = new, changed.add(position)
    return "".join(parts), changed
