"""The README's main command: the whole research loop on the embedded demo corpus, no download."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from speechprint.apps.predict import predict_files
from speechprint.apps.promotion import promote_study
from speechprint.apps.report import write_report
from speechprint.core.errors import ConfigError
from speechprint.data.synth import synthesize_corpus
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec
from speechprint.tracking import store as tracking

log = logging.getLogger(__name__)

QUICKSTART_STUDY = "quickstart.yaml"


def find_study_file(name: str = QUICKSTART_STUDY) -> Path:
    """``studies/<name>`` in the working directory, else in the source checkout."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / "studies" / name
        if candidate.exists():
            return candidate
    raise ConfigError(f"cannot find studies/{name} (run from the repository's root)")


def run_quickstart(
    workdir: str | Path = ".",
    *,
    n_trials: int | None = None,
    speakers_per_class: int = 10,
    on_step: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
    on_trial: Any = None,
) -> dict[str, Any]:
    """Synthesise the demo corpus, run the quick-start study, promote, predict, report.

    ``on_step`` gets each step's heading, ``on_line`` each result line and ``on_trial`` each
    finished trial (an Optuna callback); by default they go to the log.
    """
    step = on_step or log.info
    say = on_line or log.info
    study_file = find_study_file()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # stores (mlflow.db, mlruns/, studies/*.db) live here

    corpus = _demo_corpus(workdir / "demo-corpus", speakers_per_class, step)

    spec = StudySpec.from_yaml(study_file)
    step(f"2/5 study {spec.name} ({study_file})")
    outcome = run_study(spec, archive=str(corpus), n_trials=n_trials, on_trial=on_trial)
    best = outcome.study.best_trial
    say(
        f"best trial {best.number}: {best.user_attrs.get('extractor')} + "
        f"{best.user_attrs.get('model')}, val balanced accuracy {best.value:.3f}"
    )

    step("3/5 promote the best trial (scored once on the held-out test split)")
    decision = promote_study(spec.name, archive=str(corpus))
    say(decision.summary())

    step("4/5 predict from raw audio with the registered model")
    model_uri = f"models:/{decision.model_name}@{decision.alias}"
    examples = _examples(corpus, speakers_per_class)
    for line in _predictions(examples, model_uri):
        say(line)

    step("5/5 report")
    summary = write_report(spec.name, workdir / "reports" / spec.name)
    say(f"report: {summary}")
    return {
        "demo corpus": corpus,
        "MLflow store": tracking.tracking_uri(),
        "MLflow UI": f"cd {workdir} && speechprint ui --start",
        # MLflow 3.17 opens a plain experiment link on its GenAI overview: this one on the trials.
        "the trials in the MLflow UI": tracking.study_link(
            tracking.client(), spec.name, "http://127.0.0.1:5000"
        ),
        "model": model_uri,
        "predict": f"speechprint predict {examples[0]} --model {model_uri}",
        "report": summary,
    }


def _demo_corpus(corpus: Path, speakers_per_class: int, step: Callable[[str], None]) -> Path:
    if (corpus / "speakers_all.csv").exists():
        step(f"1/5 demo corpus already at {corpus}")
        return corpus
    step("1/5 demo corpus (eSpeak NG voices reading the archive's paragraph)")
    synthesize_corpus(corpus, speakers_per_class=speakers_per_class, seed=0)
    return corpus


def _examples(corpus: Path, speakers_per_class: int) -> list[Path]:
    """One recording of each of the first four accents."""
    return sorted((corpus / "recordings").iterdir())[:: max(1, speakers_per_class)][:4]


def _predictions(files: list[Path], model_uri: str) -> list[str]:
    lines = []
    for result in predict_files(files, model_uri=model_uri, top_k=3):
        ranked = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in result["top"])
        lines.append(f"{Path(result['file']).name}: {ranked or result.get('error')}")
    return lines
