"""Study files: strict schema, names resolved, ``space:`` overrides; all before any study exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import FixedTrial
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app
from speechprint.core.errors import ConfigError
from speechprint.study.space import OverriddenTrial, suggest_config
from speechprint.study.spec import StudySpec

REPO_ROOT = Path(__file__).resolve().parents[1]
_register_subcommands()


def raw_study(archive: Path | str = "demo-corpus", **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "spec-test",
        "data": {"archive": str(archive), "min_count": 3},
        "extractors": ["mfcc_mean", "mfcc_deltas"],
        "models": ["logreg", "mlp", "bilstm"],
        "budget": {"n_trials": 3},
        "train": {"epochs": 3},
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"pruner": {"n_warmup_step": 8}},
            r"pruner\.n_warmup_step: unknown key; did you mean n_warmup_steps\?",
        ),
        (
            {"sampler": {"n_startup_trial": 5}},
            r"sampler\.n_startup_trial: unknown key; did you mean n_startup_trials\?",
        ),
        ({"cv": {"fold": 3}}, r"cv\.fold: unknown key; did you mean folds\?"),
        (
            {"data": {"archive": "x", "min_cout": 3}},
            r"data\.min_cout: unknown key; did you mean min_count\?",
        ),
        ({"train": {"epochs": 3, "lr_rate": 0.1}}, r"train\.lr_rate: unknown key"),
        ({"budgett": {"n_trials": 3}}, r"budgett: unknown key; did you mean budget\?"),
        (
            {"budget": {"n_trials": 3, "epochs": 4}},
            r"budget: 'epochs' is not a budget setting: set train\.epochs",
        ),
        (
            {"pruner": {"name": "none", "n_warmup_steps": 3}},
            r"pruner: .*n_warmup_steps: not a setting of the 'none'",
        ),
        ({"pruner": {"name": "medain"}}, r"pruner\.name: .*'median', 'hyperband' or 'none'"),
        ({"train": {"device": "gpu"}}, r"train\.device"),
    ],
)
def test_typos_name_the_file_and_key_path(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"studies/x\.yaml: {message}"):
        StudySpec.from_dict(raw_study(**change), source="studies/x.yaml")


def test_typoed_study_file_fails_before_any_study_or_run_is_created(
    tmp_path: Path, tracking: str, tiny_archive: Path
) -> None:
    study_file = tmp_path / "typo.yaml"
    study_file.write_text(yaml.safe_dump(raw_study(tiny_archive, pruner={"n_warmup_step": 8})))
    result = CliRunner().invoke(app, ["study", "run", str(study_file)])
    assert result.exit_code == 2, result.output
    assert "pruner.n_warmup_step: unknown key; did you mean n_warmup_steps?" in result.output
    assert not (tmp_path / "mlflow.db").exists()  # no MLflow store touched
    studies = tmp_path / "studies"
    assert not studies.exists() or not any(studies.iterdir())  # no Optuna storage either


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]: unknown model 'transformer9000'.*mlp"):
        StudySpec.from_dict(raw_study(models=["transformer9000"]))
    with pytest.raises(
        ConfigError,
        match=r"extractors\[0\]: unknown extractor 'mfcc_maen'; did you mean mfcc_mean\?",
    ):
        StudySpec.from_dict(raw_study(extractors=["mfcc_maen"]))
    with pytest.raises(ConfigError, match=r"extractors\[0\]\.params: .*n_mfccs"):
        StudySpec.from_dict(raw_study(extractors=[{"name": "mfcc_mean", "params": {"n_mfccs": 3}}]))


def test_a_model_without_a_compatible_extractor_says_so() -> None:
    with pytest.raises(ConfigError, match=r"models\[1\]: 'lstm' has no compatible extractor"):
        StudySpec.from_dict(raw_study(extractors=["mfcc_mean"], models=["mlp", "lstm"]))


def test_incompatible_pairs_are_never_in_the_space() -> None:
    pairs = StudySpec.from_dict(raw_study()).pairs()
    assert "mfcc_mean+bilstm" not in pairs  # a recurrent model on a pooled vector
    assert {"mfcc_mean+mlp", "mfcc_deltas+bilstm", "mfcc_deltas+logreg"} <= set(pairs)


def test_one_place_says_how_many_epochs_a_trial_trains() -> None:
    spec = StudySpec.from_dict(raw_study(train={"epochs": 7}))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(1))
    assert {suggest_config(study.ask(), spec).train.epochs for _ in range(5)} == {7}


def test_suggest_config_replays_with_a_fixed_trial() -> None:
    spec = StudySpec.from_dict(raw_study())
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for _ in range(4):
        trial = study.ask()
        config = suggest_config(trial, spec)
        assert suggest_config(FixedTrial(trial.params), spec).to_dict() == config.to_dict()


def test_space_overrides_pin_narrow_and_rerange() -> None:
    space = {
        "mlp.hidden": 384,
        "mlp.layers": [2],
        "train.lr": {"low": 1e-4, "high": 2e-4},
        "pair": ["mfcc_mean+mlp"],
    }
    spec = StudySpec.from_dict(raw_study(space=space))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for _ in range(6):
        trial = study.ask()
        config = suggest_config(trial, spec)
        assert config.model == "mlp" and config.extractor == "mfcc_mean"
        assert config.model_params["hidden"] == 384 and "mlp.hidden" not in trial.params
        assert config.model_params["layers"] == 2
        assert 1e-4 <= config.train.lr <= 2e-4
        assert trial.distributions["train.lr"].log  # the declared log scale is kept


def test_space_overrides_are_checked_against_what_the_study_searches() -> None:
    with pytest.raises(
        ConfigError, match=r"space\.mlp\.hiden: not a parameter .*did you mean mlp\.hidden\?"
    ):
        StudySpec.from_dict(raw_study(space={"mlp.hiden": 128}))
    with pytest.raises(
        ConfigError, match=r"space\.mlp\.hidden: is a choice among \[128, 256, 512\]"
    ):
        StudySpec.from_dict(raw_study(space={"mlp.hidden": {"low": 1, "high": 2}}))
    with pytest.raises(
        ConfigError, match=r"space\.pair: 'mfcc_mean\+bilstm' is not a compatible pair"
    ):
        StudySpec.from_dict(raw_study(space={"pair": ["mfcc_mean+bilstm"]}))
    with pytest.raises(ConfigError, match=r"low \(2\.0\) is above high \(1\.0\)"):
        StudySpec.from_dict(raw_study(space={"train.lr": {"low": 2, "high": 1}}))


def test_baselines_need_a_valid_pair_and_known_parameters() -> None:
    with pytest.raises(ConfigError, match=r"baselines\[0\]\.pair: 'mfcc_mean\+bilstm'"):
        StudySpec.from_dict(raw_study(baselines=[{"pair": "mfcc_mean+bilstm"}]))
    with pytest.raises(ConfigError, match=r"baselines\[0\]: needs a 'pair'"):
        StudySpec.from_dict(raw_study(baselines=[{"logreg.C": 1.0}]))
    with pytest.raises(ConfigError, match=r"baselines\[0\]\.logreg\.c: not a parameter.*logreg\.C"):
        StudySpec.from_dict(raw_study(baselines=[{"pair": "mfcc_mean+logreg", "logreg.c": 1.0}]))


def test_overridden_trial_passes_everything_else_through() -> None:
    trial = OverriddenTrial(FixedTrial({"x": 1.5}), {})
    assert trial.suggest_float("x", 0, 2) == 1.5 and trial.number == 0


def test_searched_parameters_know_every_branch() -> None:
    names = set(StudySpec.from_dict(raw_study()).searched_parameters())
    assert {"pair", "logreg.C", "mlp.hidden", "bilstm.pooling", "train.lr"} <= names


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "studies").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_study_loads_and_samples(path: Path) -> None:
    spec = StudySpec.from_yaml(path)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for _ in range(5):
        config = suggest_config(study.ask(), spec)
        assert config.model in spec.models


def test_a_missing_or_broken_study_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        StudySpec.from_yaml(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        StudySpec.from_yaml(broken)


def test_an_extractor_twice_needs_labels_which_name_its_pairs() -> None:
    twice = [{"name": "mfcc_mean"}, {"name": "mfcc_mean", "params": {"n_mfcc": 20}}]
    with pytest.raises(ConfigError, match="mfcc_mean appears twice: give each a label"):
        StudySpec.from_dict(raw_study(extractors=twice, models=["logreg"]))
    labelled = [
        {"name": "mfcc_mean", "label": "mfcc13"},
        {"name": "mfcc_mean", "label": "mfcc20", "params": {"n_mfcc": 20}},
    ]
    spec = StudySpec.from_dict(
        raw_study(extractors=labelled, models=["logreg"], baselines=[{"pair": "mfcc20+logreg"}])
    )
    assert spec.pairs() == ["mfcc13+logreg", "mfcc20+logreg"]
    config = suggest_config(FixedTrial({"pair": "mfcc20+logreg", "logreg.C": 0.5}), spec)
    assert (config.extractor, config.extractor_params) == ("mfcc_mean", {"n_mfcc": 20})
    from speechprint.study.space import extractor_key

    assert extractor_key(spec, config) == "mfcc20"
    with pytest.raises(ConfigError, match="label"):
        StudySpec.from_dict(raw_study(extractors=[{"name": "mfcc_mean", "label": "a b"}]))


@pytest.mark.parametrize(
    ("pruner", "words"),
    [
        ({"name": "median"}, "below the median of earlier trials"),
        ({"name": "hyperband"}, "Hyperband bracket"),
        ({"name": "none"}, "stopped by the NopPruner"),
    ],
)
def test_a_prune_reason_names_the_rule_of_the_pruner_that_applied(pruner: dict, words: str) -> None:
    from speechprint.study.spec import PrunerSpec, prune_rule

    reason = prune_rule(PrunerSpec(**pruner).build())
    assert words in reason
    assert pruner["name"] == "median" or "median" not in reason
