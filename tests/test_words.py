"""``whisper_words`` (Whisper frames pooled by the passage's aligned words) and ``word_probe``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechprint.models import build_model
from speechprint.models.linear import GroupPCA


def test_group_pca_reduces_each_group_on_its_own() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3 * 8)).astype(np.float32)  # noqa: N806 - sklearn's name
    X[:, 8:16] *= 100.0  # a loud group must not take the other groups' components
    reduced = GroupPCA(groups=3, components=2).fit(X).transform(X)
    assert reduced.shape == (40, 6)
    for group in range(3):
        block = X[:, group * 8 : (group + 1) * 8]
        alone = GroupPCA(groups=1, components=2).fit(block).transform(block)
        assert np.allclose(np.abs(reduced[:, group * 2 : group * 2 + 2]), np.abs(alone), atol=1e-3)
    with pytest.raises(ValueError, match="5 groups do not divide 24"):
        GroupPCA(groups=5).fit(X)


def test_a_word_probe_finds_the_one_word_that_carries_the_accent() -> None:
    """Ten groups of noise, one of which moves with the class: the probe scores far above chance
    on new speakers while a probe told there is one group sees mostly noise."""
    rng = np.random.default_rng(1)
    n, groups, width = 300, 10, 64
    y = np.arange(n) % 3
    X = rng.normal(size=(n, groups * width)).astype(np.float32)  # noqa: N806
    X[:, 3 * width : 3 * width + 4] += 1.5 * np.eye(3)[y] @ rng.normal(size=(3, 4))
    probe = build_model(
        "word_probe", X.shape[1], 3, {"layer_groups": groups, "components": 8, "C": 0.1}
    )
    probe.fit(X[:200], y[:200])
    assert (probe.predict(X[200:]) == y[200:]).mean() > 0.8
    assert probe.predict_proba(X[200:]).shape == (100, 3)


def _espeak_passage(seconds: float | None = None) -> tuple[np.ndarray, dict[int, float]]:
    from espeak_timing import speak

    from speechprint.text.lexicon import passage_text

    spoken = speak(passage_text(), "en-us", 160)
    audio = spoken.audio if seconds is None else spoken.audio[: int(seconds * 16000)]
    return audio, dict(spoken.words)


@pytest.mark.slow
def test_each_word_group_holds_that_words_frames(require_pretrained: Any, cache_dir: Path) -> None:
    """On eSpeak speech (where every word starts is known) each aligned word's group is nearest
    to the mean of the frames where that word truly is, among all words; words after a cut are
    the utterance mean, not a guess; over files the vector is the one over the waveform."""
    require_pretrained("ctranslate2", "hama", "espeakng_loader")
    import soundfile

    from speechprint.features import extract_features, make_extractor
    from speechprint.text.lexicon import passage_words

    audio, starts = _espeak_passage()
    words = make_extractor("whisper_words", {"model": "tiny.en"})
    groups = words.transform(audio).reshape(words.layer_groups(), -1)
    assert groups.shape == (2 + 69, 384)
    frames = make_extractor("whisper_encoder", {"model": "tiny.en"}).transform(audio)
    assert np.allclose(groups[0], frames.mean(axis=0), atol=1e-4)
    # eSpeak reports most words' starts; a word's true frames run to the next reported start.
    known = [(w.index, starts[w.start_char]) for w in passage_words() if w.start_char in starts]
    assert len(known) >= 60
    ends = [t for _, t in known[1:]] + [len(audio) / 16000]
    truth = np.stack(
        [
            frames[int(a / 0.04) : max(int(a / 0.04) + 1, int(b / 0.04))].mean(axis=0)
            for (_, a), b in zip(known, ends)
        ]
    )
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    ours = unit(groups[[2 + i for i, _ in known]])
    nearest = (ours @ unit(truth).T).argmax(axis=1)
    assert (nearest == np.arange(len(known))).mean() >= 0.8, nearest

    cut = words.transform(audio[: 3 * 16000]).reshape(71, -1)
    said = sum(1 for _, t in known if t < 2.8)
    assert np.allclose(cut[2 + said + 2 :], cut[0])  # unread words: the utterance mean
    assert not np.allclose(cut[2], cut[0])  # the first words were read

    wav = cache_dir.parent / "passage.wav"
    soundfile.write(wav, audio, 16000, subtype="FLOAT")
    over_files = extract_features([wav], words, progress=False, cache_dir=cache_dir)
    assert np.allclose(over_files.features[str(wav)], groups.reshape(-1), atol=1e-4)
    assert any(p.name.startswith("phoneme_posteriors") for p in cache_dir.iterdir())
