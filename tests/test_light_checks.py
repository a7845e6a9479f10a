"""Quick mistakes get quick answers (issue 20, item 5): a study or experiment file's typo, a bad
name, parameter, option or data section is answered, exit 2, before torch, MLflow or
scikit-learn is imported; a path that is not a file says so. And the split that makes it so
holds: every declared model is implemented, with the parameters it declares."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from speechprint.catalogue.models import MODELS, Declared, declare, implements
from speechprint.core.config import load_yaml
from speechprint.core.errors import ConfigError
from speechprint.core.registry import RegistrationError

# Optuna (0.15 s) is not among them: the CLI configures its logging before any command.
HEAVY = ("torch", "mlflow", "sklearn")

# Runs the real command line in a fresh interpreter, then prints the heavy packages it imported
# (at exit, after the CLI's own exit code is set): the answer must come before any of them.
PROBE = f"""
import atexit, sys
def heavy():
    loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
    print("HEAVY:" + ",".join(loaded), file=sys.stderr)
atexit.register(heavy)
from speechprint.cli import main
sys.argv = ["speechprint", *sys.argv[1:]]
main()
"""

STUDY = {
    "name": "light",
    "data": {"archive": "demo-corpus", "min_count": 3},
    "extractors": ["mfcc_mean", "logmel"],
    "models": ["logreg", "mlp", "bilstm"],
    "budget": {"n_trials": 2},
}
EXPERIMENT = {
    "data": {"archive": "demo-corpus"},
    "extractor": {"name": "mfcc_mean", "params": {"n_mfcc": 13}},
    "model": {"name": "mlp", "params": {"hidden": 64}},
}


def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    """Exit code, the error line(s) and the heavy packages a ``speechprint ...`` process loaded."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    marker = [line for line in lines if line.startswith("HEAVY:")]
    assert marker, done.stderr
    heavy = [m for m in marker[-1].removeprefix("HEAVY:").split(",") if m]
    return done.returncode, "\n".join(line for line in lines if line not in marker), heavy


def write(tmp_path: Path, name: str, raw: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def edit(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``raw`` with ``path`` (dotted; a final ``-key`` deletes) set to ``value``."""
    copy = yaml.safe_load(yaml.safe_dump(raw))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[key]
    if last.startswith("-"):
        del node[last[1:]]
    else:
        node[last] = value
    return copy


STUDY_MISTAKES = {
    "unknown key": (edit(STUDY, "budget.n_trial", 3), r"budget\.n_trial: unknown key"),
    "unknown model": (edit(STUDY, "models", ["logreg", "mpl"]), r"models\[1\]: unknown model"),
    "unknown extractor parameter": (
        edit(STUDY, "extractors", [{"name": "mfcc_mean", "params": {"n_mfc": 13}}]),
        r"extractors\[0\]\.params: unknown parameter",
    ),
    "space override": (edit(STUDY, "space", {"mlp.hiden": [64]}), r"space\.mlp\.hiden"),
    "baseline pair": (
        edit(STUDY, "baselines", [{"pair": "logmel+logreg2"}]),
        r"baselines\[0\]\.pair",
    ),
    "wrong type": (edit(STUDY, "train", {"epochs": "many"}), r"train\.epochs"),
    "unknown target": (edit(STUDY, "data.target", "regoin"), r"unknown target 'regoin'"),
    "missing archive": (STUDY, r"data\.archive"),
}


@pytest.mark.parametrize("mistake", list(STUDY_MISTAKES))
def test_a_study_file_mistake_is_answered_without_the_stack(tmp_path: Path, mistake: str) -> None:
    raw, message = STUDY_MISTAKES[mistake]
    code, error, heavy = run_cli(tmp_path, "study", "run", str(write(tmp_path, "s.yaml", raw)))
    assert code == 2, error
    assert re.search(message, error), error
    assert heavy == [], f"{mistake}: answered after importing {heavy}"
    assert not (tmp_path / "studies").exists()


EXPERIMENT_MISTAKES = {
    "unknown key": (edit(EXPERIMENT, "modle", {"name": "mlp"}), r"modle: unknown key"),
    "unknown model": (edit(EXPERIMENT, "model.name", "mpl"), r"model\.name: unknown model"),
    "unknown model parameter": (
        edit(EXPERIMENT, "model.params", {"hiden": 64}),
        r"model: unknown parameter\(s\) hiden for model 'mlp'; did you mean hidden",
    ),
    "incompatible pair": (
        edit(EXPERIMENT, "model", {"name": "tdnn"}),
        r"model: model 'tdnn' needs",
    ),
    "missing archive": (EXPERIMENT, r"data\.archive"),
}


@pytest.mark.parametrize("mistake", list(EXPERIMENT_MISTAKES))
def test_an_experiment_file_mistake_is_answered_without_the_stack(
    tmp_path: Path, mistake: str
) -> None:
    raw, message = EXPERIMENT_MISTAKES[mistake]
    code, error, heavy = run_cli(tmp_path, "run", str(write(tmp_path, "e.yaml", raw)))
    assert code == 2, error
    assert re.search(message, error), error
    assert heavy == [], f"{mistake}: answered after importing {heavy}"


def test_a_bad_option_is_answered_without_the_stack(tmp_path: Path) -> None:
    study = write(tmp_path, "s.yaml", STUDY)
    code, error, heavy = run_cli(tmp_path, "study", "run", str(study), "--n-trials", "0")
    assert (code, heavy) == (2, []), error
    assert "--n-trials must be at least 1" in error


def test_a_device_is_not_a_file(tmp_path: Path) -> None:
    code, error, heavy = run_cli(tmp_path, "study", "run", os.devnull)
    assert (code, heavy) == (2, []), error
    assert f"{os.devnull}: not a file" in error


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.yaml", "file not found"),
        (lambda tmp: tmp, "a folder, not a file"),
        (lambda tmp: Path(os.devnull), "not a file (a device or pipe)"),
    ],
)
def test_a_config_path_that_is_not_a_file_says_what_it_is(
    tmp_path: Path, make: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_yaml(make(tmp_path))


def test_a_binary_config_is_not_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match="not a text file"):
        load_yaml(path)


def test_every_declared_model_is_implemented_with_its_declared_parameters() -> None:
    import speechprint.models  # noqa: F401  (implements every declared model)

    assert MODELS.names()
    assert [e.name for e in MODELS.entries() if isinstance(e.obj, Declared)] == []


def test_a_builder_that_drifts_from_its_declaration_is_refused() -> None:
    declare("drift_probe", accepts={"pooled"}, family="sklearn", params=("C",))
    try:
        assert MODELS.get("drift_probe").obj.params == ("C",)  # checkable before the builder
        with pytest.raises(RegistrationError, match="the builder takes"):
            implements("drift_probe")(lambda input_dim, n_classes, c=1.0: None)
        with pytest.raises(RegistrationError, match="declared but not implemented"):
            MODELS.get("drift_probe").obj(3, 2)
        with pytest.raises(RegistrationError, match="not declared"):
            implements("never_declared")(lambda input_dim, n_classes: None)
    finally:
        MODELS.unregister("drift_probe")


def test_evaluate_answers_a_missing_corpus_without_the_stack(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-corpus")
    code, error, heavy = run_cli(
        tmp_path, "evaluate", "--model", "models:/x@y", "--archive", missing
    )
    assert (code, heavy) == (2, []), error
    assert "archive not found" in error


def test_predict_says_a_device_is_not_a_file_before_the_model(tmp_path: Path) -> None:
    code, error, _ = run_cli(tmp_path, "predict", os.devnull, "--model", "models:/x@y")
    assert code == 2, error
    assert f"not a file (a device or pipe): {os.devnull}" in error
    assert "cannot load model" not in error


def test_every_built_in_model_is_known_to_the_light_checks() -> None:
    """Names a study file may use are the declarations alone (speechprint.models unimported)."""
    code = (
        "import speechprint.catalogue.models as c; light = set(c.MODELS.names()); "
        "import speechprint.models; print(sorted(set(c.MODELS.names()) - light))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"implemented but not declared: {done.stdout}"


def test_a_model_of_the_package_registered_without_a_declaration_is_refused() -> None:
    def build(input_dim: int, n_classes: int) -> None:
        return None

    build.__module__ = "speechprint.models.undeclared"
    with pytest.raises(RegistrationError, match="declare it in speechprint.catalogue.models"):
        MODELS.register("undeclared_probe", accepts={"pooled"})(build)
    assert "undeclared_probe" not in MODELS
