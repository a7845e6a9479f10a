"""The passage's 69 words and one citation pronunciation each, in the phoneme recogniser's tokens.

Forced alignment needs what each word should sound like. The pronunciations were drafted with
hama's own G2P (``hama.G2PModel``, word by word) and corrected by hand where it slipped ("maybe",
"we", "also", "into", "go"), so every token is one the recogniser emits and no G2P runs at
alignment time. A General American citation form is a reference for *where* a word is, not a
judgement of how it should be said: CTC alignment tolerates other realisations of the sounds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from speechprint.data.synth import paragraph

PRONUNCIATIONS: dict[str, tuple[str, ...]] = {
    "please": ("p", "l", "i", "z"),
    "call": ("k", "ɔ", "l"),
    "stella": ("s", "t", "ɛ", "l", "ə"),
    "ask": ("æ", "s", "k"),
    "her": ("h", "ɝ"),
    "to": ("t", "u"),
    "bring": ("b", "ɹ", "ɪ", "ŋ"),
    "these": ("ð", "i", "z"),
    "things": ("θ", "ɪ", "ŋ", "z"),
    "with": ("w", "ɪ", "θ"),
    "from": ("f", "ɹ", "ɑ", "m"),
    "the": ("ð", "ə"),
    "store": ("s", "t", "ɔ", "ɹ"),
    "six": ("s", "ɪ", "k", "s"),
    "spoons": ("s", "p", "u", "n", "z"),
    "of": ("ə", "v"),
    "fresh": ("f", "ɹ", "ɛ", "ʃ"),
    "snow": ("s", "n", "oʊ"),
    "peas": ("p", "i", "z"),
    "five": ("f", "aɪ", "v"),
    "thick": ("θ", "ɪ", "k"),
    "slabs": ("s", "l", "æ", "b", "z"),
    "blue": ("b", "l", "u"),
    "cheese": ("t͡ʃ", "i", "z"),
    "and": ("æ", "n", "d"),
    "maybe": ("m", "eɪ", "b", "i"),
    "a": ("ə",),
    "snack": ("s", "n", "æ", "k"),
    "for": ("f", "ɔ", "ɹ"),
    "brother": ("b", "ɹ", "ʌ", "ð", "ɚ"),
    "bob": ("b", "ɑ", "b"),
    "we": ("w", "i"),
    "also": ("ɔ", "l", "s", "oʊ"),
    "need": ("n", "i", "d"),
    "small": ("s", "m", "ɔ", "l"),
    "plastic": ("p", "l", "æ", "s", "t", "ɪ", "k"),
    "snake": ("s", "n", "eɪ", "k"),
    "big": ("b", "ɪ", "ɡ"),
    "toy": ("t", "ɔɪ"),
    "frog": ("f", "ɹ", "ɔ", "ɡ"),
    "kids": ("k", "ɪ", "d", "z"),
    "she": ("ʃ", "i"),
    "can": ("k", "æ", "n"),
    "scoop": ("s", "k", "u", "p"),
    "into": ("ɪ", "n", "t", "u"),
    "three": ("θ", "ɹ", "i"),
    "red": ("ɹ", "ɛ", "d"),
    "bags": ("b", "æ", "ɡ", "z"),
    "will": ("w", "ɪ", "l"),
    "go": ("ɡ", "oʊ"),
    "meet": ("m", "i", "t"),
    "wednesday": ("w", "ɛ", "n", "z", "d", "eɪ"),
    "at": ("æ", "t"),
    "train": ("t", "ɹ", "eɪ", "n"),
    "station": ("s", "t", "eɪ", "ʃ", "ə", "n"),
}


@dataclass(frozen=True)
class Word:
    index: int  # position in the passage, 0-based
    text: str  # as printed ("Stella")
    start_char: int  # offset in the passage text
    phonemes: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"12 snow"``: unique even where a word occurs twice ("her", "the", "things")."""
        return f"{self.index:02d} {self.text.lower()}"


def passage_text() -> str:
    return paragraph()


def passage_words() -> list[Word]:
    """The passage's words in order, each with its pronunciation (69 for the archive's text)."""
    text = passage_text()
    return [
        Word(i, m.group(), m.start(), PRONUNCIATIONS[m.group().lower()])
        for i, m in enumerate(re.finditer(r"[A-Za-z']+", text))
    ]


def lexicon_digest() -> str:
    """Changes whenever the passage or a pronunciation changes: part of the alignment cache key."""
    blob = repr([(w.text, w.phonemes) for w in passage_words()]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
