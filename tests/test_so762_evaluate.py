"""Cross-corpus evaluation on real speechocean762 speakers (adults and children apart).

The model is small and real: class-balanced logistic regression on MFCC means of a few real
saa8k speakers of three regions (east asian among them), so it is fast and its labels include the
one every so762 speaker carries. What is tested is the machinery (the share of speakers labelled
east asian per age group, its interval over speakers, where the others went), not the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from speechprint.apps.crosscorpus import cross_corpus_score
from speechprint.data.corpora import load_corpus
from speechprint.evaluation.shares import age_group, group_shares, share_interval

ADULTS, CHILDREN = ("1027", "1029"), ("0001", "0005")


def saa_subset(archive: Path, out: Path, per_class: int = 8) -> Path:
    """A copy of the archive's layout holding ``per_class`` real speakers of three regions."""
    raw = pd.read_csv(archive / "speakers_all.csv", dtype=str)
    have = {p.stem for p in (archive / "recordings").iterdir()}
    raw = raw[raw["filename"].isin(have)]
    countries = {"east": ["china", "south korea", "japan"], "na": ["usa"], "uk": ["uk"]}
    picked = pd.concat(
        raw[raw["country"].str.strip().str.lower().isin(c)].head(per_class)
        for c in countries.values()
    )
    (out / "recordings").mkdir(parents=True)
    for name in picked["filename"]:
        (out / "recordings" / f"{name}.mp3").symlink_to(archive / "recordings" / f"{name}.mp3")
    picked.to_csv(out / "speakers_all.csv", index=False)
    return out


def so762_subset(so762: Path, out: Path, clips: int = 3) -> Path:
    """Four real so762 speakers (two adults, two children), ``clips`` clips each, Kaldi layout
    with absolute audio paths."""
    keep = set(ADULTS + CHILDREN)
    (out / "train").mkdir(parents=True)
    for name in ("text", "utt2spk", "spk2age", "spk2gender", "wav.scp"):
        lines = (so762 / "train" / name).read_text().splitlines()
        if name == "wav.scp":
            lines = [f"{u}\t{so762 / p}" for u, p in (line.split("\t") for line in lines)]
        (out / "train" / name).write_text("\n".join(lines) + "\n")
    speaker_of = dict(
        line.split() for line in (so762 / "train" / "utt2spk").read_text().splitlines()
    )
    wav = [line for line in (out / "train" / "wav.scp").read_text().splitlines()]
    chosen = [line for line in wav if speaker_of[line.split("\t")[0]] in keep]
    (out / "train" / "wav.scp").write_text("\n".join(chosen) + "\n")
    return out


@pytest.fixture(scope="module")
def classifier(shared_archive: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from speechprint.train import RunConfig, run
    from speechprint.train.prepare import prepare_data

    root = saa_subset(shared_archive, tmp_path_factory.mktemp("saa-subset"))
    config = RunConfig(
        archive=str(root),
        extractor="mfcc_mean",
        model="logreg",
        min_count=3,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        jobs=1,
    )
    return run(config, prepare_data(config, progress=False)).classifier


@pytest.fixture(scope="module")
def so762_four(shared_so762: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return so762_subset(shared_so762, tmp_path_factory.mktemp("so762"))


def test_shares_per_age_group_on_real_so762_speakers(
    classifier, so762_four: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    assert "east asian" in classifier.labels
    result = cross_corpus_score(
        classifier,
        load_corpus(so762_four, "speechocean762"),
        source="region",
        max_clips_per_speaker=2,
        jobs=1,
        cache_dir=str(tmp_path / "cache"),
    )
    assert (result.speakers, result.clips) == (4, 8) and result.mapped == {
        "east asian": "east asian"
    }
    groups = {g.group: g for g in result.groups}
    assert set(groups) == {"adult", "child"}
    for group in groups.values():
        assert group.label == "east asian" and group.speakers == 2
        assert sum(group.predicted.values()) == 2
        assert group.share == group.predicted.get("east asian", 0) / 2
        assert 0.0 <= group.low <= group.share <= group.high <= 1.0
    # One label: balanced accuracy over all speakers is the share labelled east asian.
    everyone = sum(g.share * g.speakers for g in groups.values()) / 4
    assert result.metrics["balanced_accuracy"] == pytest.approx(everyone)


def test_a_speakers_clips_joined_into_one_recording(
    classifier, so762_four: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    import soundfile as sf

    archive = load_corpus(so762_four, "speechocean762")
    result = cross_corpus_score(
        classifier, archive, source="region", join_clips=2, jobs=1, cache_dir=str(tmp_path)
    )
    assert (result.speakers, result.clips) == (4, 4)  # one recording per speaker
    joined = sorted((tmp_path / "joined-clips").glob("*.flac"))
    assert len(joined) == 4 and {g.speakers for g in result.groups} == {2}
    clips = archive.with_audio.sort_values(["speakerid", "filename"]).groupby("speakerid").head(2)
    first = clips[clips["speakerid"] == "0001"]
    expected = sum(sf.info(p).duration for p in first["path"]) + 0.3
    durations = sorted(sf.info(p).duration for p in joined)
    assert any(abs(d - expected) < 0.05 for d in durations)


def test_evaluate_command_reports_adults_and_children(
    classifier, so762_four: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from speechprint.cli import _register_subcommands, app
    from speechprint.inference.pyfunc import save_pyfunc

    model = save_pyfunc(classifier, tmp_path / "model")
    _register_subcommands()
    args = ["evaluate", "--model", str(model), "--corpus", "speechocean762"]
    args += ["--archive", str(so762_four), "--source", "region", "--max-clips-per-speaker", "1"]
    args += ["--jobs", "1", "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["speakers"] == 4 and summary["clip"]["n"] == 4
    assert [g["group"] for g in summary["groups"]] == ["adult", "child"]
    assert all(len(g["share_ci"]) == 2 and g["speakers"] == 2 for g in summary["groups"])
    human = CliRunner().invoke(app, args)
    assert human.exit_code == 0, human.output
    assert "speakers given their own label" in human.stdout and "adult" in human.stdout


def test_share_interval_and_groups() -> None:
    assert age_group(18) == "adult" and age_group(17.5) == "child"
    assert age_group(None) == age_group(float("nan")) == "age unknown"
    assert share_interval([1, 1, 1]) == (1.0, 1.0)
    low, high = share_interval([1, 0] * 20)
    assert low < 0.5 < high and high - low < 0.4
    shares = group_shares(
        [0, 0, 0, 1], [0, 1, 1, 1], ["adult", "adult", "child", "child"], ["a", "b"]
    )
    assert [(s.group, s.label, s.speakers, s.share) for s in shares] == [
        ("adult", "a", 2, 0.5),
        ("child", "a", 1, 0.0),
        ("child", "b", 1, 1.0),
    ]
    assert shares[0].predicted == {"a": 1, "b": 1} and shares[1].predicted == {"b": 1}


def test_an_ensemble_on_other_texts_is_scored_by_its_members_that_do_not_need_the_passage(
    classifier, so762_four: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    """so762's clips read other sentences: a member laid out by the passage's words would see
    utterance means, so the ensemble is scored by the others (and the words member's features
    are never extracted); members are averaged, each on its own features, then tempered."""
    import dataclasses

    import numpy as np

    from speechprint.apps.crosscorpus import file_probabilities
    from speechprint.evaluation.metrics import apply_temperature
    from speechprint.features import extract_features
    from speechprint.inference.ensemble import EnsembleClassifier

    words = dataclasses.replace(
        classifier, extractor_name="whisper_words", extractor_params={"model": "base"}
    )
    archive = load_corpus(so762_four, "speechocean762")
    cache = tmp_path / "cache"
    options = {"source": "region", "max_clips_per_speaker": 2, "jobs": 1, "cache_dir": str(cache)}
    alone = cross_corpus_score(classifier, archive, **options)
    ensemble = cross_corpus_score(EnsembleClassifier([classifier, words]), archive, **options)
    assert "members that do not need it (mfcc_mean+logreg)" in ensemble.note
    assert alone.note == ""
    assert ensemble.metrics["y_pred"] == alone.metrics["y_pred"]  # speakers
    assert ensemble.metrics["clip"]["y_pred"] == alone.metrics["clip"]["y_pred"]
    assert not list(cache.glob("whisper_words*"))  # never extracted

    paths = [str(p) for p in archive.with_audio["path"][:3]]

    def extract(extractor):  # noqa: ANN001, ANN202
        return extract_features(paths, extractor, jobs=1, cache_dir=str(cache), progress=False)

    single, _ = file_probabilities(classifier, paths, extract)
    pair, _ = file_probabilities(EnsembleClassifier([classifier] * 2, 0.5), paths, extract)
    for path in paths:
        expected = apply_temperature(single[path][None], 0.5)[0]
        np.testing.assert_allclose(pair[path], expected, rtol=1e-5)


def test_evaluate_prints_notes_about_the_data_not_mlflows_own(
    classifier, so762_four: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    """A fresh process, as a user runs it: loading the model makes MLflow warn about type hints,
    which is not the user's to act on; only ``DataWarning``s reach the terminal."""
    import os
    import subprocess
    import sys
    import warnings

    from speechprint.cli.common import ours
    from speechprint.core.errors import DataWarning
    from speechprint.inference.pyfunc import save_pyfunc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("Add type hints to the `predict` method", UserWarning, stacklevel=1)
        warnings.warn("2 countries have no region", DataWarning, stacklevel=1)
    assert [str(w.message) for w in ours(caught)] == ["2 countries have no region"]

    model = save_pyfunc(classifier, tmp_path / "model")
    args = ["evaluate", "--model", str(model), "--corpus", "speechocean762"]
    args += ["--archive", str(so762_four), "--source", "region", "--max-clips-per-speaker", "1"]
    args += ["--jobs", "1", "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [sys.executable, "-m", "speechprint", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "speakers given their own label" in done.stdout
    assert "type hints" not in done.stderr and "warning:" not in done.stderr
