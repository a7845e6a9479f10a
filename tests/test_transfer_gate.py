"""The transfer check before an alias moves: a study file's ``transfer:`` section, stored with the
study, and ``promote`` asking another corpus whether the candidate still hears it (real studies,
MLflow registry and synthetic corpora in temporary folders)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from speechprint.apps.promotion import SpeakerAnswers, promote_study, transfer_verdict
from speechprint.catalogue.config import TransferSpec
from speechprint.core.errors import ConfigError, DataError
from speechprint.study.identity import definition, record_transfer, stored_transfer
from speechprint.study.spec import StudySpec


def _raw(archive: str | Path, name: str = "gated", **extra: object) -> dict:
    return {
        "name": name,
        "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
        "extractors": ["mfcc_deltas"],
        "models": ["logreg"],
        "budget": {"n_trials": 1},
        "search_training": False,
        "pruner": {"name": "none"},
        "sampler": {"name": "random", "seed": 0},
        **extra,
    }


def test_the_section_is_strict_and_names_what_is_wrong(tmp_path: Path) -> None:
    good = {"corpus": "speechocean762", "archive": "so762", "min_score": 0.5}
    spec = StudySpec.from_dict(_raw(tmp_path, transfer=good))
    assert spec.transfer is not None and spec.transfer.max_drop == 0.1
    assert spec.transfer.clips_per_speaker == 3 and spec.transfer.source == "region"
    for section, message in (
        ({**good, "maxdrop": 0.1}, r"transfer\.maxdrop"),
        ({**good, "corpus": "speechocean"}, r"unknown corpus 'speechocean'; did you mean"),
        ({**good, "min_score": 1.5}, r"transfer\.min_score"),
        ({"corpus": "vctk"}, r"transfer\.archive"),
    ):
        with pytest.raises(ConfigError, match=message):
            StudySpec.from_dict(_raw(tmp_path, transfer=section))


def test_it_may_change_between_runs_and_is_stored_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    section = {"corpus": "vctk", "archive": "corpora/vctk", "labels": "map.csv"}
    with_it = StudySpec.from_dict(_raw(tmp_path, transfer=section))
    without = StudySpec.from_dict(_raw(tmp_path))
    # What promotion checks is not what a trial measures: a resume may add, change or drop it.
    assert definition(with_it) == definition(without)
    study = optuna.create_study()  # a real (in-memory) study
    record_transfer(study, with_it)
    stored = stored_transfer(study)
    assert stored is not None
    assert stored.archive == str(tmp_path / "corpora" / "vctk")
    assert stored.labels == str(tmp_path / "map.csv")
    record_transfer(study, without)
    assert stored_transfer(study) is None


def _answers(called: list[str], truth: list[str] | None = None) -> SpeakerAnswers:
    from speechprint.evaluation.metrics import balanced_accuracy

    truth = truth or ["east asian"] * len(called)
    speakers = [f"s{i}" for i in range(len(called))]
    names = sorted(set(truth) | set(called))
    index = {n: i for i, n in enumerate(names)}
    score = balanced_accuracy([index[t] for t in truth], [index[c] for c in called], len(names))
    return SpeakerAnswers(
        "speechocean762",
        dict(zip(speakers, truth)),
        dict(zip(speakers, called)),
        score,
        score - 0.1,
        score + 0.1,
    )


def test_a_candidate_that_loses_the_other_corpus_is_refused() -> None:
    section = TransferSpec(corpus="speechocean762", archive="x", max_drop=0.05)
    holder = _answers(["east asian"] * 40)
    lost = _answers(["east asian"] * 20 + ["african other"] * 20)  # half of them, elsewhere
    verdict = transfer_verdict(section, lost, holder)
    assert not verdict.passed
    assert "against the holder on speechocean762 reaches -0.6" in verdict.reason
    assert verdict.reason.endswith("below -0.05.")
    assert verdict.tags["transfer_passed"] == "false"
    assert verdict.tags["transfer_vs_holder"].startswith("-0.500")
    # The same answers as the holder's: the paired interval is [0, 0], within any margin.
    same = transfer_verdict(section, holder, holder)
    assert same.passed and same.tags["transfer_vs_holder"] == "+0.000 [+0.000, +0.000]"
    # One speaker fewer right out of 40 is within noise: the interval reaches below -0.05, so a
    # margin of 0.05 refuses it and a margin of 0.2 does not (non-inferiority, not a point test).
    one_less = _answers(["east asian"] * 39 + ["african other"])
    assert not transfer_verdict(section, one_less, holder).passed
    wider = section.model_copy(update={"max_drop": 0.2})
    assert transfer_verdict(wider, one_less, holder).passed


def test_a_first_model_meets_the_floor_when_one_is_set() -> None:
    floor = TransferSpec(corpus="speechocean762", archive="x", min_score=0.8)
    low = _answers(["east asian"] * 7 + ["african other"] * 3)
    verdict = transfer_verdict(floor, low, None)
    assert not verdict.passed and "below 0.8" in verdict.reason
    assert transfer_verdict(floor.model_copy(update={"min_score": None}), low, None).passed


def test_labels_are_compared_by_name_not_by_each_model_s_order() -> None:
    section = TransferSpec(corpus="vctk", archive="x")
    truth = ["british isles", "north american"] * 10
    ours = _answers(list(truth), truth)
    theirs = _answers(["north american", "british isles"] * 10, truth)  # every one swapped
    verdict = transfer_verdict(section, ours, theirs)
    assert verdict.passed and verdict.tags["transfer_vs_holder"].startswith("+1.000")


# -- end to end: a study, its promotion, the registry ----------------------------------------------


@pytest.fixture(scope="module")
def other_speakers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Other synthetic speakers of the same accents: a corpus the study never saw."""
    from speechprint.data.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("other-speakers")
    return synthesize_corpus(out, speakers_per_class=2, seconds=3.0, seed=7, progress=False)


def _shifted_map(corpus: Path, path: Path) -> Path:
    """A label map that calls every region by the next one's name: no model can hear it."""
    from speechprint.data.corpora import load_corpus

    regions = sorted(set(load_corpus(corpus).with_audio["region"]))
    rows = [f"{a},{b}" for a, b in zip(regions, regions[1:] + regions[:1])]
    path.write_text("from,to\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow  # runs a study and refits its model
def test_promote_asks_the_other_corpus_before_the_alias_moves(
    small_archive: Path, other_speakers: Path, tracking: str, tmp_path: Path
) -> None:
    from speechprint.cli import _register_subcommands, app
    from speechprint.study.runner import run_study
    from speechprint.tracking import store

    _register_subcommands()
    unheard = {
        "corpus": "saa",
        "archive": str(other_speakers),
        "labels": str(_shifted_map(other_speakers, tmp_path / "shifted.csv")),
        "min_score": 0.9,
    }
    run_study(StudySpec.from_dict(_raw(small_archive, transfer=unheard)))
    refused = promote_study("gated")
    assert not refused.promoted and refused.alias == "challenger"
    assert "'champion' is not set: it scores" in refused.reason and "below 0.9" in refused.reason
    assert refused.gate is not None and "on saa (" in refused.gate.details[0]
    client = store.client()
    version = client.get_model_version("speechprint-accent", refused.version)
    assert version.tags["transfer_passed"] == "false" and version.tags["transfer_corpus"] == "saa"
    assert "on saa (" in refused.summary()

    # Without the check, the same registered version takes the alias on the selection alone.
    result = CliRunner().invoke(
        app, ["promote", "--study", "gated", "--no-transfer", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    champion = client.get_model_version_by_alias("speechprint-accent", "champion")
    assert str(champion.version) == refused.version and champion.aliases == ["champion"]

    # The study run again with a corpus it can hear: what promote checks changed, no trial ran.
    heard = {"corpus": "saa", "archive": str(other_speakers), "min_score": 0.3}
    run_study(StudySpec.from_dict(_raw(small_archive, transfer=heard)))
    section = stored_transfer(
        optuna.load_study(study_name="gated", storage="sqlite:///studies/gated.db")
    )
    assert section is not None and section.labels is None and section.min_score == 0.3
    shown = CliRunner().invoke(app, ["study", "show", "gated"])
    assert shown.exit_code == 0, shown.output
    assert (
        "promote checks saa" in shown.output and "at least 0.3, at most 0.1 below" in shown.output
    )


@pytest.mark.slow  # runs a study
def test_a_transfer_corpus_that_cannot_be_read_stops_promote_before_any_refit(
    small_archive: Path, tracking: str, tmp_path: Path
) -> None:
    from speechprint.study.runner import run_study
    from speechprint.tracking import store

    missing = {"corpus": "speechocean762", "archive": str(tmp_path / "no-such-corpus")}
    run_study(StudySpec.from_dict(_raw(small_archive, name="lost", transfer=missing)))
    with pytest.raises(DataError, match=r"^the study's transfer check: .*no-such-corpus"):
        promote_study("lost")
    client = store.client()
    experiment = client.get_experiment_by_name("lost")
    refits = client.search_runs([experiment.experiment_id], "tags.kind = 'refit'")
    assert refits == []
    assert client.search_registered_models() == []
