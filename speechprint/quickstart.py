"""The README's main command: the whole research loop on the embedded demo corpus, no download."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

QUICKSTART_STUDY = "quickstart.yaml"


def find_study_file(name: str = QUICKSTART_STUDY) -> Path:
    """``studies/<name>`` in the working directory, else in the source checkout."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / "studies" / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"cannot find studies/{name} (run from the repository's root)")


def run_quickstart(
    workdir: str | Path = ".",
    *,
    n_trials: int | None = None,
    speakers_per_class: int = 10,
    console: Any = None,
) -> dict[str, Any]:
    """Synthesise the demo corpus, run the quick-start study, promote, predict, report."""
    from rich.console import Console

    from speechprint import tracking
    from speechprint.cli.study import _print_trial
    from speechprint.data.synth import synthesize_corpus
    from speechprint.predict import predict_files
    from speechprint.promote import promote
    from speechprint.report import write_report
    from speechprint.search import StudySpec, run_study

    console = console or Console()
    study_file = find_study_file()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # stores (mlflow.db, mlruns/, studies/*.db) live here

    corpus = workdir / "demo-corpus"
    if not (corpus / "speakers_all.csv").exists():
        console.rule("1/5 demo corpus (eSpeak NG voices reading the archive's paragraph)")
        synthesize_corpus(corpus, speakers_per_class=speakers_per_class, seed=0)
    else:
        console.rule(f"1/5 demo corpus already at {corpus}")

    spec = StudySpec.from_yaml(study_file)
    console.rule(f"2/5 study {spec.name} ({study_file})")
    outcome = run_study(spec, archive=str(corpus), n_trials=n_trials, on_trial=_print_trial)
    best = outcome.study.best_trial
    console.print(
        f"best trial {best.number}: {best.user_attrs.get('extractor')} + "
        f"{best.user_attrs.get('model')}, val balanced accuracy {best.value:.3f}"
    )

    console.rule("3/5 promote the best trial (scored once on the held-out test split)")
    decision = promote(spec.name, archive=str(corpus))
    console.print(decision.summary())

    console.rule("4/5 predict from raw audio with the registered model")
    model_uri = f"models:/{decision.model_name}@{decision.alias}"
    examples = sorted((corpus / "recordings").iterdir())[:: max(1, speakers_per_class)][:4]
    for result in predict_files(examples, model_uri=model_uri, top_k=3):
        ranked = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in result["top"])
        console.print(f"{Path(result['file']).name}: {ranked or result.get('error')}")

    console.rule("5/5 report")
    summary = write_report(spec.name, workdir / "reports" / spec.name)
    console.print(f"report: {summary}")
    return {
        "demo corpus": corpus,
        "MLflow store": tracking.tracking_uri(),
        "MLflow UI": f"cd {workdir} && speechprint ui --start  (then http://127.0.0.1:5000)",
        "model": model_uri,
        "predict": f"speechprint predict {examples[0]} --model {model_uri}",
        "report": summary,
    }
