"""Any English text to words and phonemes, in the phoneme recogniser's tokens.

Forced alignment needs what each word should sound like. A word's pronunciation comes from, in
order: a user lexicon (``load_lexicon``), the passage's hand-corrected lexicon
(``text/lexicon.py``), a short table of function words that hama's G2P gets wrong ("the",
"we", "who": it is multilingual and reads some as other languages), then hama's G2P
(``hama.G2PModel``) word by word. G2P output is folded into ``ENGLISH_PHONEMES`` (General
American, 41 sounds, every one a recogniser token): diacritics and tones dropped, near sounds
mapped (``o`` -> ``oʊ``, ``r`` -> ``ɹ``), the rest dropped. A word left with no sound keeps an
empty pronunciation and is skipped by the aligner, never guessed.

Text is normalised first: lower case, punctuation dropped (apostrophes kept inside words),
digits read out ("25" -> "twenty five", up to 9999; longer numbers digit by digit).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from speechprint.core.errors import DataError
from speechprint.text.lexicon import PRONUNCIATIONS, Word

ENGLISH_PHONEMES: tuple[str, ...] = (
    # consonants
    *("p", "b", "t", "d", "k", "ɡ", "f", "v", "θ", "ð", "s", "z", "ʃ", "ʒ", "h"),
    *("t͡ʃ", "d͡ʒ", "m", "n", "ŋ", "l", "ɹ", "w", "j"),
    # vowels
    *("i", "ɪ", "eɪ", "ɛ", "æ", "ɑ", "ɔ", "oʊ", "ʊ", "u", "ʌ", "ə", "ɝ", "ɚ"),
    *("aɪ", "aʊ", "ɔɪ"),
)

# G2P symbols outside the inventory: the English sound nearest to each (a tuple may split one).
_FOLD: dict[str, tuple[str, ...]] = {
    "o": ("oʊ",),
    "e": ("eɪ",),
    "a": ("ɑ",),
    "g": ("ɡ",),
    "r": ("ɹ",),
    "ɾ": ("t",),
    "ɫ": ("l",),
    "ɜ": ("ɝ",),
    "ɒ": ("ɑ",),
    "ɐ": ("ə",),
    "ä": ("ɑ",),
    "à": ("ɑ",),
    "ã": ("æ",),
    "ĩ": ("ɪ",),
    "ì": ("ɪ",),
    "ǐ": ("ɪ",),
    "ẽ": ("ɛ",),
    "õ": ("oʊ",),
    "ũ": ("u",),
    "y": ("j",),
    "ɟ": ("d͡ʒ",),
    "ʝ": ("j",),
    "c": ("k",),
    "x": ("h",),
    "ɦ": ("h",),
    "kʰ": ("k",),
    "pʰ": ("p",),
    "tʰ": ("t",),
    "eə": ("ɛ", "ə"),
    "ɪə": ("ɪ", "ə"),
    "ja": ("j", "ɑ"),
    "je": ("j", "ɛ"),
    "jo": ("j", "oʊ"),
    "ju": ("j", "u"),
    "jʌ": ("j", "ʌ"),
    "wa": ("w", "ɑ"),
    "we": ("w", "ɛ"),
    "wi": ("w", "i"),
    "wʌ": ("w", "ʌ"),
    "ɨ": ("ɪ",),
    "ʉ": ("u",),
    "ɤ": ("ʌ",),
    "ɵ": ("oʊ",),
    "ø": ("ə",),
    "œ": ("ɛ",),
    "ᵊ": ("ə",),
}

# Frequent words hama's multilingual G2P misreads ("we" as "weɪ", "who" as "u").
FUNCTION_WORDS: dict[str, tuple[str, ...]] = {
    "a": ("ə",),
    "an": ("æ", "n"),
    "the": ("ð", "ə"),
    "i": ("aɪ",),
    "we": ("w", "i"),
    "me": ("m", "i"),
    "who": ("h", "u"),
    "when": ("w", "ɛ", "n"),
    "what": ("w", "ʌ", "t"),
    "where": ("w", "ɛ", "ɹ"),
    "why": ("w", "aɪ"),
    "one": ("w", "ʌ", "n"),
    "two": ("t", "u"),
    "have": ("h", "æ", "v"),
    "is": ("ɪ", "z"),
    "are": ("ɑ", "ɹ"),
    "were": ("w", "ɝ"),
    "do": ("d", "u"),
    "does": ("d", "ʌ", "z"),
    "has": ("h", "æ", "z"),
    "us": ("ʌ", "s"),
    "these": ("ð", "i", "z"),
    "those": ("ð", "oʊ", "z"),
    "they're": ("ð", "ɛ", "ɹ"),
    "it's": ("ɪ", "t", "s"),
    "it": ("ɪ", "t"),
    "don't": ("d", "oʊ", "n", "t"),
    "yes": ("j", "ɛ", "s"),
    "also": ("ɔ", "l", "s", "oʊ"),
    "only": ("oʊ", "n", "l", "i"),
    "though": ("ð", "oʊ"),
    "enough": ("ɪ", "n", "ʌ", "f"),
    "was": ("w", "ʌ", "z"),
    "of": ("ə", "v"),
    "to": ("t", "u"),
    "you": ("j", "u"),
    "he": ("h", "i"),
}

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen".split()
_ONES += "fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+", re.UNICODE)
_COMBINING_OR_MARK = re.compile(r"[\u0300-\u036f\u02b0-\u02ff\u2070-\u209f\u00b9\u00b2\u00b3‿͡]")


def number_words(number: int) -> list[str]:
    """English words for 0..9999 ("2026" -> two thousand twenty six); digits one by one above.

    >>> number_words(2026)
    ['two', 'thousand', 'twenty', 'six']
    """
    if number >= 10000:
        return [_ONES[int(d)] for d in str(number)]
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        return [_TENS[number // 10]] + (number_words(number % 10) if number % 10 else [])
    big, unit = (1000, "thousand") if number >= 1000 else (100, "hundred")
    rest = number % big
    return number_words(number // big) + [unit] + (number_words(rest) if rest else [])


def normalise(text: str) -> list[tuple[str, int]]:
    """``(word, character offset)`` in reading order: lower case, punctuation dropped, digits
    read out (each word of a number keeps the number's offset)."""
    text = unicodedata.normalize("NFC", text.replace("\u2019", "'"))
    out: list[tuple[str, int]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.isdigit():
            out.extend((word, match.start()) for word in number_words(int(token)))
        else:
            out.append((token.lower(), match.start()))
    return out


def fold(symbols: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """G2P symbols as ``ENGLISH_PHONEMES``: marks dropped, near sounds mapped, others dropped."""
    inventory = set(ENGLISH_PHONEMES)
    out: list[str] = []
    for symbol in symbols:
        if symbol in inventory or symbol in _FOLD:
            out.extend(_FOLD.get(symbol, (symbol,)))
            continue
        bare = unicodedata.normalize("NFC", _COMBINING_OR_MARK.sub("", symbol))
        if bare in inventory or bare in _FOLD:
            out.extend(_FOLD.get(bare, (bare,)))
    return tuple(out)


@functools.cache
def _g2p_model():  # type: ignore[no-untyped-def]
    try:
        from hama import G2PModel
    except ImportError as error:
        raise ImportError(
            "G2P of text outside the lexicons needs hama: install speechprint[pretrained]",
            name="hama",
        ) from error
    return G2PModel()


@functools.lru_cache(maxsize=65536)
def g2p_word(word: str) -> tuple[str, ...]:
    """hama's G2P of one normalised word, folded into ``ENGLISH_PHONEMES`` (cached: ~17 ms)."""
    result = _g2p_model().predict(word)
    return fold([a.phoneme for a in result.alignments])


def pronounce(word: str, lexicon: Mapping[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    """One normalised word's phonemes: user lexicon, passage lexicon, function words, then G2P."""
    for table in (lexicon or {}, PRONUNCIATIONS, FUNCTION_WORDS):
        if word in table:
            return tuple(table[word])
    return g2p_word(word)


def text_words(text: str, lexicon: Mapping[str, tuple[str, ...]] | None = None) -> list[Word]:
    """The words of ``text`` in order, each with its pronunciation (``Word.start_char`` is the
    offset in ``text``; a number's words share it)."""
    return [
        Word(i, word, start, pronounce(word, lexicon))
        for i, (word, start) in enumerate(normalise(text))
    ]


def load_lexicon(path: str | Path) -> dict[str, tuple[str, ...]]:
    """A user lexicon: one ``word<TAB>phonemes`` per line (phonemes separated by spaces, each
    one of ``ENGLISH_PHONEMES``); blank lines and lines starting with ``#`` are ignored."""
    inventory = set(ENGLISH_PHONEMES)
    out: dict[str, tuple[str, ...]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the lexicon ({error})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, tab, phonemes = line.partition("\t")
        symbols = phonemes.split()
        unknown = [s for s in symbols if s not in inventory]
        if not tab or not word.strip() or not symbols or unknown:
            why = (
                f"unknown phoneme(s) {' '.join(unknown)}"
                if unknown
                else "expected word<TAB>phonemes"
            )
            raise DataError(
                f"{path}, line {number}: {why}; phonemes are {' '.join(ENGLISH_PHONEMES)}"
            )
        out[word.strip().lower()] = tuple(symbols)
    return out


def words_digest(words: list[Word]) -> str:
    """Changes whenever a word or its pronunciation changes (for cache keys)."""
    blob = repr([(w.text, w.phonemes) for w in words]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
