"""Which sounds betray an accent: the transfer-pattern table, and substitutions planted on
purpose in eSpeak NG speech found by the slot detector (``features.slots`` +
``findings.sounds.flag_slots``) against unchanged readings of the same text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speechprint.core.errors import DataError
from speechprint.findings.transfer import (
    FOUND,
    NOT_FOUND,
    TOO_THIN,
    check_all,
    load_patterns,
)

# Texts rich in one sound; respelled words (tests/espeak_plant.py) carry the planted change.
PLANTS = {
    "θ>s (French, Chinese)": (
        "Three thin thieves thought a thousand thoughtful things. Both of them threw the thick "
        "thread with faith and truth. I think the theatre is north of the path.",
        ("th", "s", "T", "s"),
        ("θ", "s"),
    ),
    "l>ɹ (Korean, Japanese)": (
        "Lucy left the lamp lit late. Lily likes long lazy lunches and the little lake looks "
        "lovely in the light.",
        ("l", "r", "l", "r"),
        ("l", "ɹ"),
    ),
}
REFERENCE_VOICES = [("en-us", 175), ("en-gb-x-rp", 160)]


def test_the_transfer_pattern_table_loads_with_its_sources() -> None:
    patterns = load_patterns()
    assert len(patterns) >= 12
    assert len({p.id for p in patterns}) == len(patterns)
    assert all("(19" in p.source or "(20" in p.source for p in patterns)  # a dated source
    changes = {c for p in patterns for c in p.changes}
    assert {"v>b", "z>s", "p>b", "θ>s", "ɹ>l", "ɪ>i", "v>w"} <= changes


def test_a_bad_pattern_names_the_file_and_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "patterns.yaml"
    bad.write_text(
        "- {id: x, languages: [spanish], changes: ['v>q'], position: any, claim: c, source: s}\n"
    )
    with pytest.raises(DataError, match=r"patterns.yaml, pattern 1 \(changes\)"):
        load_patterns(bad)


def test_every_pattern_is_reported_found_not_found_or_too_thin() -> None:
    """Spanish readers planted with /v/ as [b] in 40% of slots, natives 5%: found; every
    other pattern is reported too, most too thin (no such speakers here)."""
    rng = np.random.default_rng(0)
    rows, speakers = [], []
    for language, n, rate in [("english", 40, 0.05), ("spanish", 30, 0.4)]:
        for s in range(n):
            speaker = f"{language}{s}"
            speakers.append({"speaker": speaker, "native_language": language})
            for _ in range(10):
                heard = "b" if rng.random() < rate else "v"
                rows.append({"speaker": speaker, "expected": "v", "heard": heard, "final": False})
                rows.append({"speaker": speaker, "expected": "z", "heard": "z", "final": True})
    table = check_all(pd.DataFrame(rows), pd.DataFrame(speakers), load_patterns())
    assert len(table) == len(load_patterns())
    assert set(table["verdict"]) <= {FOUND, NOT_FOUND, TOO_THIN}
    verdict = dict(zip(table["pattern"], table["verdict"], strict=True))
    assert verdict["spanish-v-b"] == FOUND
    assert verdict["spanish-z-s"] == NOT_FOUND
    assert verdict["arabic-p-b"] == TOO_THIN
    found = table.set_index("pattern").loc["spanish-v-b"]
    assert found["rate_low"] < 0.4 < found["rate_high"] and found["diff_low"] > 0


@pytest.fixture(scope="module")
def planted(require_pretrained) -> dict[str, dict[str, list]]:  # noqa: ANN001
    """Per plant: the reference readings' slots, the plain reading's and the planted one's."""
    require_pretrained("hama", "espeakng_loader")
    from espeak_plant import planted_text
    from espeak_timing import speak

    from speechprint.features.pretrained.phones import hama_posteriors
    from speechprint.features.slots import hear
    from speechprint.text.g2p import text_words

    out = {}
    for name, (text, respelling, _) in PLANTS.items():
        words = text_words(text)
        changed_text, changed = planted_text(text, *respelling)

        def slots(said: str, voice: str = "en-us", rate: int = 160) -> list:
            return hear(hama_posteriors(speak(said, voice, rate).audio), words)[1]  # noqa: B023

        references = [slots(text, v, r) for v, r in REFERENCE_VOICES]
        out[name] = {
            "references": references,
            "plain": slots(text),
            "planted": slots(changed_text),
            "changed": changed,
        }
    return out


def _reference(readings: list[list]) -> dict[tuple[int, int], dict[str, float]]:
    shares: dict[tuple[int, int], Counter] = {}
    for slots in readings:
        for s in slots:
            if s.measured:
                shares.setdefault((s.word, s.index), Counter())[s.heard] += 1 / len(readings)
    return {k: dict(v) for k, v in shares.items()}


def test_planted_substitutions_are_found_and_unplanted_slots_rarely_flagged(planted) -> None:  # noqa: ANN001
    from speechprint.findings.sounds import flag_slots

    found = planted_slots = false = unplanted = 0
    for name, (_, _, (expected, realised)) in PLANTS.items():
        run = planted[name]
        slots = run["planted"]
        flags = flag_slots(slots, _reference(run["references"]))
        for slot, flag in zip(slots, flags, strict=True):
            if slot.word in run["changed"] and slot.expected == expected:
                planted_slots += 1
                found += flag and slot.heard == realised
            else:
                unplanted += 1
                false += flag
    assert planted_slots >= 15
    assert found >= 0.9 * planted_slots, f"{found} of {planted_slots} planted found"
    assert false <= 0.1 * unplanted, f"{false} of {unplanted} unplanted slots flagged"


def test_an_absent_substitution_is_not_found(planted) -> None:  # noqa: ANN001
    """In the unchanged readings the change is flagged in at most 10% of the sound's slots, pooled
    over the plants (a slip of the recogniser may happen), where the planted readings have 90%."""
    from speechprint.findings.sounds import flag_slots

    hits, slots = {}, {}
    for name, (_, _, (expected, realised)) in PLANTS.items():
        run = planted[name]
        flags = flag_slots(run["plain"], _reference(run["references"]))
        slots[name] = sum(s.expected == expected for s in run["plain"])
        hits[name] = sum(
            bool(f) and s.expected == expected and s.heard == realised
            for s, f in zip(run["plain"], flags, strict=True)
        )
    assert sum(hits.values()) <= 0.1 * sum(slots.values()), (hits, slots)


def test_group_substitutions_carry_intervals_and_are_flagged_above_the_native_rate() -> None:
    from speechprint.findings.sounds import confusion, slot_deviation, substitutions

    rng = np.random.default_rng(1)
    rows, speakers = [], []
    for language, n, rate in [("english", 30, 0.03), ("spanish", 25, 0.35)]:
        for s in range(n):
            speaker = f"{language}{s}"
            speakers.append({"speaker": speaker, "native_language": language})
            for word in range(8):
                heard = "b" if rng.random() < rate else "v"
                rows.append(
                    {"speaker": speaker, "word": word, "index": 0, "expected": "v"}
                    | {"heard": heard, "final": False}
                )
    slots, people = pd.DataFrame(rows), pd.DataFrame(speakers)
    table = substitutions(slots, people, "spanish")
    top = table.iloc[0]
    assert (top["expected"], top["heard"], bool(top["flagged"])) == ("v", "b", True)
    assert top["low"] < 0.35 < top["high"] and top["native_rate"] < 0.1
    shares = confusion(slots)
    assert shares.loc["v"].sum() == pytest.approx(1.0)
    assert (slot_deviation(slots, people, "spanish") > 0.2).all()
