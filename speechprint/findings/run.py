"""``run_findings``: every section for one model, timed, on one page, logged to the model's run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speechprint.findings import (
    betray,
    calibration,
    fairness,
    onset,
    phonemes,
    similarity,
    words,
)
from speechprint.findings.members import ensemble_subject, member_runs
from speechprint.findings.page import Section, write_page
from speechprint.findings.subject import (
    Subject,
    build_subject,
    load_config,
    model_seeds,
    resolve_run,
)
from speechprint.tracking import store as tracking

logger = logging.getLogger(__name__)


@dataclass
class Findings:
    page: Path
    run_id: str
    sections: list[Section]
    prepare_seconds: float


def run_findings(
    out: str | Path,
    *,
    model: str | None = None,
    study: str | None = None,
    trial: int | None = None,
    storage: str | None = None,
    archive: str | None = None,
    target: str | None = None,
    predictions: str = "oof",
    folds: int = 5,
    calibrate: bool = False,
    jobs: int | None = None,
    cache_dir: str | None = None,
    log_to_mlflow: bool = True,
    progress: bool = True,
    on_section: Callable[[Section], None] | None = None,
) -> Findings:
    """Write ``out/findings.html`` (+ PNG, CSV, JSON per section) for a registered model or a trial."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run_id = resolve_run(model, study, trial, storage)
    overrides = {"archive": archive, "target": target, "cache_dir": cache_dir, "jobs": jobs}
    members = member_runs(run_id)
    if members is not None:
        subject = ensemble_subject(
            run_id, members, predictions=predictions, folds=folds, progress=progress, **overrides
        )
    else:
        subject = build_subject(
            run_id,
            load_config(run_id, **overrides),
            predictions=predictions,
            folds=folds,
            progress=progress,
            seeds=model_seeds(run_id),
        )
    prepared = time.perf_counter() - started
    # A section that does not apply to this model (no phones profile) is left off the page.
    steps: list[Callable[[], Section | None]] = [
        lambda: words.section(subject, out, jobs=jobs, progress=progress),
        lambda: phonemes.section(subject, out),
        lambda: betray.section(subject, out, jobs=jobs, progress=progress),
        lambda: onset.section(subject, out),
        lambda: similarity.section(subject, out),
        lambda: fairness.section(subject, out),
        lambda: calibration.section(subject, out, calibrate=calibrate),
    ]
    sections = []
    for step in steps:
        begun = time.perf_counter()
        section = step()
        if section is None:
            continue
        section.seconds = time.perf_counter() - begun
        sections.append(section)
        if on_section is not None:
            on_section(section)
    what = (
        f"out-of-fold predictions ({folds} folds) on {len(subject.frame)} development speakers"
        if predictions == "oof"
        else f"test-split predictions on {len(subject.frame)} speakers"
    )
    subtitle = f"{subject.description}, target {subject.config.target}, run {run_id}; {what}."
    page = write_page(
        sections, out / "findings.html", title="SpeechPrint findings", subtitle=subtitle
    )
    if log_to_mlflow:
        _log(run_id, out, sections)
    _store_temperature(subject, out)
    return Findings(page, run_id, sections, prepared)


def _log(run_id: str, out: Path, sections: list[Section]) -> None:
    tracker = tracking.MLflowTracker(tracking.client(), run_id)
    files = {out / "findings.html"}
    for section in sections:
        files.update(section.images)
        files.update(section.data)
    for path in sorted(files):
        if path.exists():
            tracker.log_artifact(path, "findings")


def _store_temperature(subject: Subject, out: Path) -> None:
    """A fitted temperature goes beside the run's model, so predict can apply it when asked."""
    import json

    data = json.loads((out / "calibration.json").read_text())
    if data.get("temperature") is None:
        return

    client = tracking.client()
    client.set_tag(subject.run_id, "temperature", f"{data['temperature']:.4f}")
    logger.info("temperature %.3f stored on run %s", data["temperature"], subject.run_id)
