"""Every check before any work: bad data and names fail before an MLflow experiment, run, Optuna
study or storage file exists, with the file and key path in the one-line message."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from test_study import tiny_spec

from speechprint.apps.experiment import run_experiment
from speechprint.core.errors import ConfigError, DataError, SpeechPrintError
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec

BAD_TABLES = {
    "empty": b"",
    "blank lines": b"\n\n\n",
    "header only": b"speakerid,filename,native_language,country,sex,age\n",
    "missing columns": b"speaker,file\n1,a\n",
    "binary": bytes(range(256)) * 8,
    "ragged": b'speakerid,filename,native_language,country,sex,age\n1,"a,b\n',
}


def nothing_tracked(tracking: str) -> bool:
    """No experiment besides MLflow's Default, no study storage."""
    experiments = mlflow.MlflowClient(tracking).search_experiments()
    return [e.name for e in experiments] in ([], ["Default"]) and not Path("studies").exists()


@pytest.fixture()
def broken_archive(tiny_archive: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    archive = Path(shutil.copytree(tiny_archive, tmp_path / "broken"))
    (archive / "speakers_all.csv").write_bytes(BAD_TABLES[request.param])
    return archive


def experiment_file(tmp_path: Path, archive: Path, **data: object) -> Path:
    raw = {
        "experiment": "checks",
        "data": {"archive": str(archive), "min_count": 3, **data},
        "extractor": "mfcc_mean",
        "model": "logreg",
        "train": {"epochs": 1},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("broken_archive", list(BAD_TABLES), indirect=True)
def test_an_unusable_speakers_table_is_refused_before_any_study_or_run(
    broken_archive: Path, tracking: str, cache_dir: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(broken_archive, models=["logreg"], extractors=["mfcc_mean"])
    with pytest.raises(DataError, match=r"^<dict>: data(\.archive)?: .*(speakers_all|class)"):
        run_study(spec, cache_dir=str(cache_dir))
    path = experiment_file(tmp_path, broken_archive)
    with pytest.raises(DataError, match=rf"^{path}: data(\.archive)?: "):
        run_experiment(path, cache_dir=str(cache_dir))
    assert nothing_tracked(tracking)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"target": "regoin"}, r"data.target: unknown target 'regoin'; did you mean region\?"),
        ({"target": "speakerid"}, r"data.target: unknown target 'speakerid'"),
        ({"corpus": "nope"}, r"data.archive: .*nope"),
        ({"regions": "nowhere"}, r"data.archive: .*nowhere"),
        ({"min_count": 50}, r"data: target 'region' has 0 class"),
    ],
)
def test_bad_data_settings_are_refused_before_any_study_or_run(
    tiny_archive: Path, tracking: str, cache_dir: Path, tmp_path: Path, data: dict, message: str
) -> None:
    raw = {"name": "tiny", "extractors": ["mfcc_mean"], "models": ["logreg"]}
    with pytest.raises(SpeechPrintError, match=message):
        spec = StudySpec.from_dict(
            {**raw, "data": {"archive": str(tiny_archive), "min_count": 3, **data}}
        )
        run_study(spec, cache_dir=str(cache_dir))
    with pytest.raises(SpeechPrintError, match=message):
        run_experiment(experiment_file(tmp_path, tiny_archive, **data), cache_dir=str(cache_dir))
    assert nothing_tracked(tracking)


def test_a_missing_study_is_named_and_no_storage_file_is_made(tracking: str) -> None:
    from speechprint.release.promote import promote
    from speechprint.study.storage import StorageError, load_study

    with pytest.raises(StorageError, match=r"no study named 'absent': storage file .* not exist"):
        load_study("absent")
    with pytest.raises(StorageError, match="no study named 'absent'"):
        promote("absent")
    journal = Path("elsewhere/absent.journal.log")
    with pytest.raises(StorageError, match="absent.journal.log does not exist"):
        load_study("absent", str(journal))
    assert not Path("studies").exists() and not Path("elsewhere").exists()


def test_an_empty_study_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    for text in ("", "# only a comment\n", "{}\n"):
        path.write_text(text)
        with pytest.raises(ConfigError) as error:
            StudySpec.from_yaml(path)
        assert "\n" not in str(error.value)
        assert str(error.value).startswith(f"{path}: ")
