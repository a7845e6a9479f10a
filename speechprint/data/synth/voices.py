"""The demo corpus's classes: eSpeak NG voice groups, each mapped to a real country.

English variants, and other languages' voices reading the English text with their own letter-to-
sound rules, which gives a strong, consistent "accent".

Only voices of languages written in the Latin alphabet are used for the non-English classes: voices
for languages written in another script (hi, ru, ar, cmn, fa, ko, ...) switch to the English
voice's rules for Latin-alphabet words, so they would read the paragraph as plain English.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCENT_CLASSES", "AccentClass"]


@dataclass(frozen=True)
class AccentClass:
    """One class of the demo corpus: eSpeak NG voices -> a real country and native language."""

    voices: tuple[str, ...]
    country: str
    native_language: str
    birthplaces: tuple[str, ...]
    english_native: bool = False


# Countries are real archive countries in lower case; the region table maps them (in comments, the
# seed table's region each lands in: eight distinct regions, checked by tests/test_synth.py).
ACCENT_CLASSES: tuple[AccentClass, ...] = (
    AccentClass(  # north american
        ("en-us",),
        "usa",
        "english",
        ("pittsburgh, pennsylvania, usa", "davenport, iowa, usa", "miami, florida, usa"),
        english_native=True,
    ),
    AccentClass(  # british isles
        ("en", "en-gb-x-rp", "en-gb-scotland"),
        "uk",
        "english",
        ("london, uk", "manchester, uk", "glasgow, scotland, uk", "edinburgh, scotland, uk"),
        english_native=True,
    ),
    AccentClass(  # caribbean
        ("en-029",),
        "jamaica",
        "english",
        ("kingston, jamaica", "montego bay, jamaica"),
        english_native=True,
    ),
    AccentClass(  # western european non-romance
        ("de",), "germany", "german", ("berlin, germany", "munich, germany", "hamburg, germany")
    ),
    AccentClass(  # romance
        ("es",), "spain", "spanish", ("madrid, spain", "barcelona, spain", "seville, spain")
    ),
    AccentClass(  # eastern european
        ("pl",), "poland", "polish", ("warsaw, poland", "krakow, poland", "gdansk, poland")
    ),
    AccentClass(  # latin american
        ("pt-br",), "brazil", "portuguese", ("sao paulo, brazil", "rio de janeiro, brazil")
    ),
    AccentClass(  # southeast asian
        ("id",), "indonesia", "indonesian", ("jakarta, indonesia", "surabaya, indonesia")
    ),
)

_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4")
