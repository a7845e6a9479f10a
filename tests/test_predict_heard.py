"""Predictions say what was heard: the transcript used, its source and the share aligned; a model
whose features need the passage, asked about another text, says so, and an ensemble then leans on
its members that do not need it.

The recordings are eSpeak NG speech (one of another text, one of the passage's first sentences);
the classifiers are small real ones (a logistic regression fitted on random vectors of each
extractor's size): what is tested is the listening and the answer, not the accent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprint.features import make_extractor
from speechprint.inference.classifier import AccentClassifier
from speechprint.inference.ensemble import EnsembleClassifier
from speechprint.inference.pyfunc import predict_frame

LABELS = ("east asian", "north american")
OTHER_TEXT = "We call it a bear. Please open the window."


def fitted(name: str, params: dict, seed: int = 0) -> AccentClassifier:
    from sklearn.linear_model import LogisticRegression

    dim = make_extractor(name, params).output_dim()
    x = np.random.default_rng(seed).standard_normal((8, dim))
    model = LogisticRegression().fit(x, np.array([0, 1] * 4))
    ones, zeros = np.ones(dim, np.float32), np.zeros(dim, np.float32)
    return AccentClassifier(name, params, LABELS, "logreg", {}, dim, True, zeros, ones, model=model)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from speechprint.data.synth import synthesize

    folder = tmp_path_factory.mktemp("speech")
    texts = {
        "other": OTHER_TEXT,
        "passage": "Please call Stella. Ask her to bring these things with her from the store.",
    }
    out = {}
    for name, text in texts.items():
        wave, rate = synthesize(text, "en-us", seed=0)
        sf.write(folder / f"{name}.wav", wave, rate)
        out[name] = folder / f"{name}.wav"
    return out


@pytest.fixture(scope="module")
def models(require_pretrained) -> dict[str, object]:  # noqa: ANN001
    require_pretrained("ctranslate2", "hama")
    utterance = fitted("mfcc_mean", {})
    words = fitted("whisper_words", {"model": "base"}, seed=1)
    return {"utterance": utterance, "words": words, "both": EnsembleClassifier([utterance, words])}


def predict(model: object, path: Path, text: str | None = None) -> dict:
    frame = pd.DataFrame({"path": [str(path)]})
    if text is not None:
        frame["text"] = [text]
    row = predict_frame(model, frame).iloc[0].to_dict()
    assert row["error"] == "", row["error"]
    return row


def test_a_recording_of_another_text_says_what_was_heard(models, recordings) -> None:  # noqa: ANN001
    row = predict(models["utterance"], recordings["other"])
    assert row["transcript_source"] == "whisper" and "call it" in row["transcript"].lower()
    assert 0.5 <= row["aligned_share"] <= 1.0 and row["note"] == ""
    given = predict(models["utterance"], recordings["other"], text=OTHER_TEXT)
    assert (given["transcript_source"], given["transcript"]) == ("given", OTHER_TEXT)
    assert given["aligned_share"] >= 0.5


def test_the_passage_is_recognised_as_the_passage(models, recordings) -> None:  # noqa: ANN001
    row = predict(models["words"], recordings["passage"])
    assert row["transcript_source"] == "passage" and row["transcript"].startswith("Please call")
    assert row["note"] == "" and 0.0 < row["aligned_share"] < 0.5  # two sentences of five


def test_a_model_that_needs_the_passage_says_so(models, recordings) -> None:  # noqa: ANN001
    row = predict(models["words"], recordings["other"])
    assert "not the archive's passage" in row["note"] and "whisper_words" in row["note"]
    assert "utterance statistics alone" in row["note"]
    # An ensemble averages only the member that does not need the passage.
    both = predict(models["both"], recordings["other"])
    alone = predict(models["utterance"], recordings["other"])
    assert both["probabilities"] == pytest.approx(alone["probabilities"])
    assert "averaged only its members that do not need it (mfcc_mean)" in both["note"]
    on_passage = predict(models["both"], recordings["passage"])
    assert on_passage["note"] == "" and on_passage["probabilities"] != pytest.approx(
        predict(models["utterance"], recordings["passage"])["probabilities"]
    )


def test_predict_command_with_a_text(models, recordings, tmp_path: Path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from speechprint.cli import _register_subcommands, app
    from speechprint.inference.pyfunc import save_pyfunc

    model = save_pyfunc(models["words"], tmp_path / "model")
    _register_subcommands()
    args = ["predict", str(recordings["other"]), "--model", str(model), "--text", OTHER_TEXT]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["heard"]["transcript"] == OTHER_TEXT and answer["heard"]["source"] == "given"
    assert "not the archive's passage (it says" in answer["note"]
    human = CliRunner().invoke(app, args)
    assert human.exit_code == 0, human.output
    assert "heard (given" in human.stdout and "note:" in human.stdout


def test_an_ensemble_leans_on_the_members_that_do_not_need_the_passage() -> None:
    from speechprint.inference.ensemble import uses_passage
    from speechprint.inference.heard import needs_passage

    utterance, words = fitted("mfcc_mean", {}), fitted("whisper_words", {"model": "base"})
    seeds = EnsembleClassifier([utterance, fitted("mfcc_mean", {}, seed=2)])  # a seed average
    nested = EnsembleClassifier([seeds, words, EnsembleClassifier([words])], temperature=2.0)
    assert uses_passage(nested) and not uses_passage(seeds)
    lean = nested.without_passage()
    assert lean is not None and lean.members == [seeds] and lean.temperature == 2.0
    assert EnsembleClassifier([words]).without_passage() is None
    fused = {"parts": [{"name": "whisper_layers"}, {"name": "whisper_words", "params": {}}]}
    assert needs_passage("fusion", fused) and not needs_passage("phones", {})
