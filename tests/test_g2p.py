"""Any English text to words and phonemes: normalisation, the lexicons' order, a user lexicon."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechprint.core.errors import DataError
from speechprint.text.g2p import ENGLISH_PHONEMES, fold, load_lexicon, normalise, text_words
from speechprint.text.lexicon import PRONUNCIATIONS


def test_text_is_normalised_case_punctuation_and_digits_read_out() -> None:
    words = normalise("Stella's 25 SPOONS, please!")
    assert [w for w, _ in words] == ["stella's", "twenty", "five", "spoons", "please"]
    assert [offset for _, offset in words] == [0, 9, 9, 12, 20]


def test_g2p_symbols_fold_into_the_english_inventory() -> None:
    assert fold(["k", "o", "r", "̪", "kʰ", "ĩ", "⁵"]) == ("k", "oʊ", "ɹ", "k", "ɪ")
    assert len(set(ENGLISH_PHONEMES)) == len(ENGLISH_PHONEMES) == 41


def test_user_lexicon_overrides_the_passage_lexicon_and_g2p(
    tmp_path: Path, require_pretrained
) -> None:
    require_pretrained("hama")
    lexicon = tmp_path / "mine.tsv"
    lexicon.write_text(
        "# my corrections\nzorblax\tz ɔ ɹ b l æ k s\nStella\ts t ɛ l ɑ\n", encoding="utf-8"
    )
    mine = load_lexicon(lexicon)
    words = text_words("Please call Zorblax, the brother of Stella.", mine)
    by_word = {w.text: w.phonemes for w in words}
    assert by_word["zorblax"] == ("z", "ɔ", "ɹ", "b", "l", "æ", "k", "s")  # user lexicon
    assert by_word["stella"] == ("s", "t", "ɛ", "l", "ɑ") != PRONUNCIATIONS["stella"]
    assert by_word["brother"] == PRONUNCIATIONS["brother"]  # passage lexicon's hand correction
    assert by_word["the"] == ("ð", "ə")  # function words before G2P
    assert all(p in ENGLISH_PHONEMES for w in words for p in w.phonemes)
    # A word only G2P knows still gets English sounds.
    (umbrella,) = [w for w in text_words("umbrella") if w.text == "umbrella"]
    assert len(umbrella.phonemes) >= 5 and set(umbrella.phonemes) <= set(ENGLISH_PHONEMES)


@pytest.mark.parametrize(
    "line,why",
    [("please p l i z", "expected word<TAB>phonemes"), ("please\tp l iː z", "unknown phoneme")],
)
def test_a_bad_lexicon_line_names_the_file_and_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"call\tk ɔ l\n\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad.tsv, line 3: {why}"):
        load_lexicon(path)
