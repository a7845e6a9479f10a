"""Cross-corpus evaluation: a model trained on the (synthetic) archive, scored on a VCTK layout
through a label map, with the labels that could not be mapped listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_corpora import write_vctk

from speechprint.apps.crosscorpus import cross_corpus_score, read_label_map
from speechprint.core.errors import ConfigError, DataError
from speechprint.data.corpora import load_corpus

LABEL_MAP = """# VCTK accents -> the archive's regions
from,to
English,british isles
Scottish,british isles
American,north american
Irish,
Welsh,atlantis
"""


@pytest.fixture(scope="module")
def classifier(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from speechprint.train import RunConfig, run
    from speechprint.train.prepare import prepare_data

    cache = tmp_path_factory.mktemp("cache")
    config = RunConfig(
        archive=str(tiny_archive),
        extractor="mfcc_mean",
        model="logreg",
        min_count=3,
        cache_dir=str(cache),
        jobs=1,
    )
    return run(config, prepare_data(config, progress=False)).classifier


@pytest.fixture(scope="module")
def vctk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vctk(tmp_path_factory.mktemp("vctk"), utterances=2)


@pytest.mark.slow  # trains a model first
def test_cross_corpus_score_lists_unmapped_labels(classifier, vctk: Path, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "map.csv").write_text(LABEL_MAP)
    mapping = read_label_map(tmp_path / "map.csv")
    assert mapping["irish"] == "" and mapping["english"] == "british isles"
    result = cross_corpus_score(
        classifier,
        load_corpus(vctk, "vctk"),
        label_map=mapping,
        jobs=1,
        cache_dir=str(tmp_path / "cache"),
    )
    # p225, p226 (English), p234 (Scottish), p315 (American): 4 speakers, 2 clips each.
    assert (result.speakers, result.clips) == (4, 8) and result.corpus == "vctk"
    assert result.unmapped == {"(no label)": 1, "france": 1, "irish": 1}  # p999, p280, p245
    assert result.not_in_model == ["atlantis"]
    assert result.mapped == {
        "american": "north american",
        "english": "british isles",
        "scottish": "british isles",
    }
    metrics = result.metrics
    assert metrics["unit"] == "speaker" and metrics["n"] == 4 and metrics["clip"]["n"] == 8
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
    assert set(metrics["clip"]["files"]) <= {str(p) for p in vctk.rglob("*.flac")}


@pytest.mark.slow  # trains a model first
def test_without_a_map_only_shared_names_count(classifier, vctk: Path, tmp_path: Path) -> None:  # noqa: ANN001
    archive = load_corpus(vctk, "vctk")
    result = cross_corpus_score(
        classifier, archive, source="region", jobs=1, cache_dir=str(tmp_path / "cache"), unit="clip"
    )
    assert set(result.mapped) <= set(classifier.labels) and result.metrics["unit"] == "clip"
    assert "unclassified" in result.unmapped  # p280's unknown accent has no region
    with pytest.raises(DataError, match="no clip of .* has a label the model knows"):
        cross_corpus_score(
            classifier,
            archive,
            label_map={"english": "nowhere"},
            jobs=1,
            cache_dir=str(tmp_path / "cache"),
        )
    with pytest.raises(ConfigError, match="no column 'dialect'"):
        cross_corpus_score(classifier, archive, source="dialect")


def test_label_map_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("source,target\na,b\n")
    with pytest.raises(ConfigError, match="bad.csv: needs a header with 'from' and 'to'"):
        read_label_map(bad)
    bad.write_text("from,to\na,b\na,c\n")
    with pytest.raises(ConfigError, match="row 3: 'a' mapped twice"):
        read_label_map(bad)
    with pytest.raises(ConfigError, match="missing.csv: cannot read"):
        read_label_map(tmp_path / "missing.csv")


@pytest.mark.slow
def test_evaluate_command_on_a_saved_model(classifier, vctk: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from speechprint.cli import _register_subcommands, app
    from speechprint.inference.pyfunc import save_pyfunc

    model = save_pyfunc(classifier, tmp_path / "model")
    (tmp_path / "map.csv").write_text(LABEL_MAP)
    _register_subcommands()
    args = [
        "evaluate",
        "--model",
        str(model),
        "--corpus",
        "vctk",
        "--archive",
        str(vctk),
        "--labels",
        str(tmp_path / "map.csv"),
        "--jobs",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["unit"] == "speaker" and summary["speakers"] == 4 and summary["clip"]["n"] == 8
    assert summary["unmapped"] == {"(no label)": 1, "france": 1, "irish": 1}
    human = CliRunner().invoke(app, args)
    assert human.exit_code == 0, human.output
    text = " ".join(human.stdout.split())
    assert "not mapped (speakers left out): (no label) (1), france (1), irish (1)" in text
    assert "map targets the model does not know: atlantis" in text


@pytest.mark.slow
def test_lazy_features_train_the_same_model(tiny_archive: Path, tmp_path: Path) -> None:
    """Training on memory-mapped features gives the numbers training on arrays gives."""
    import numpy as np

    from speechprint.features.lazy import PackedFeatures
    from speechprint.train import RunConfig, run
    from speechprint.train.prepare import prepare_data

    results = {}
    for lazy in (False, True):
        config = RunConfig(
            archive=str(tiny_archive),
            extractor="mfcc_mean",
            model="logreg",
            min_count=3,
            cache_dir=str(tmp_path),
            jobs=1,
            lazy_features=lazy,
        )
        data = prepare_data(config, progress=False)
        assert isinstance(data.features.features, PackedFeatures) == lazy
        results[lazy] = run(config, data)
    assert results[True].val["balanced_accuracy"] == results[False].val["balanced_accuracy"]
    assert results[True].val["y_pred"] == results[False].val["y_pred"]
    np.testing.assert_array_equal(results[True].classifier.mean, results[False].classifier.mean)
