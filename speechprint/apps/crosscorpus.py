"""Cross-corpus evaluation: score a model trained on one corpus on another corpus's speakers.

Does a model of accent survive a change of microphone, text and speakers? The other corpus names
its labels its own way (VCTK's ``Scottish``, Common Voice's ``England English``), so a mapping file
says which of the model's labels each corpus label is: a CSV with ``from,to`` columns (``#``
comments; an empty ``to`` leaves a label out on purpose). Without one, a corpus label is used when
the model knows it by that name. Clips whose label maps to none of the model's labels are left out
and listed with their speakers; the rest are scored per clip and per speaker (clips averaged).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError, DataError
from speechprint.data.archive import Archive
from speechprint.evaluation.metrics import bootstrap_interval, evaluate
from speechprint.evaluation.units import with_units
from speechprint.features import extract_features

NO_LABEL = "(no label)"


@dataclass
class CrossCorpusResult:
    corpus: str
    source: str  # the corpus column the labels came from
    labels: tuple[str, ...]  # the model's label set
    metrics: dict[str, Any]  # the chosen unit on top, the other nested (units.with_units)
    clips: int
    speakers: int
    mapped: dict[str, str]  # corpus label -> model label, as used
    unmapped: dict[str, int] = field(default_factory=dict)  # corpus label -> speakers left out
    skipped: list[str] = field(default_factory=list)  # undecodable files
    not_in_model: list[str] = field(default_factory=list)  # map targets the model does not know


def read_label_map(path: str | Path) -> dict[str, str]:
    """``{corpus label: model label}`` (lower-cased; ``""``: deliberately left out)."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"label map {path}: cannot read ({error.strerror or error})") from error
    rows = csv.DictReader(
        io.StringIO(
            "\n".join(
                line for line in text.splitlines() if line.strip() and not line.startswith("#")
            )
        )
    )
    if rows.fieldnames is None or not {"from", "to"} <= {f.strip() for f in rows.fieldnames}:
        raise ConfigError(f"label map {path}: needs a header with 'from' and 'to' columns")
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip().lower() for k, v in row.items() if k}
        if not row["from"]:
            raise ConfigError(f"label map {path}, row {number}: empty 'from'")
        if mapping.get(row["from"], row["to"]) != row["to"]:
            raise ConfigError(f"label map {path}, row {number}: {row['from']!r} mapped twice")
        mapping[row["from"]] = row["to"]
    return mapping


def cross_corpus_score(
    classifier: Any,
    archive: Archive,
    *,
    source: str = "accent",
    label_map: dict[str, str] | None = None,
    unit: str = "speaker",
    jobs: int | None = None,
    cache_dir: str | None = None,
    dask: str | None = None,
    progress: bool = False,
) -> CrossCorpusResult:
    """Score ``classifier`` (an ``AccentClassifier``) on every mappable clip of ``archive``."""
    rows = archive.with_audio
    if source not in rows.columns:
        raise ConfigError(
            f"corpus {archive.corpus} has no column {source!r} to map labels from "
            f"(columns: {', '.join(rows.columns)})"
        )
    model_labels = tuple(classifier.labels)
    index = {label: i for i, label in enumerate(model_labels)}
    raw = [
        v.strip().lower() if isinstance(v, str) and v.strip() else NO_LABEL for v in rows[source]
    ]
    mapping = label_map if label_map is not None else {v: v for v in raw if v in index}
    target = [mapping.get(v, "") for v in raw]
    keep = np.array([t in index for t in target], dtype=bool)
    speakers_of: dict[str, set[str]] = {}
    for value, ok, speaker in zip(raw, keep, rows["speakerid"]):
        if not ok:
            speakers_of.setdefault(value, set()).add(str(speaker))
    unmapped = dict(
        sorted(((k, len(v)) for k, v in speakers_of.items()), key=lambda kv: (-kv[1], kv[0]))
    )
    kept = rows[keep].reset_index(drop=True)
    if kept.empty:
        raise DataError(
            f"no clip of {archive.root} has a label the model knows "
            f"({', '.join(model_labels)}); unmapped: {', '.join(unmapped)}"
        )
    features = extract_features(
        list(kept["path"]),
        classifier.extractor,
        jobs=jobs,
        cache_dir=cache_dir,
        progress=progress,
        dask=dask,
    )
    scored = kept[kept["path"].isin(list(features.features))].reset_index(drop=True)
    y = np.array([index[mapping[v.strip().lower()]] for v in scored[source]], dtype=int)
    proba = classifier.predict_proba_features([features.features[p] for p in scored["path"]])
    clip = evaluate(y, proba, model_labels)
    clip.update(
        balanced_accuracy_ci=list(bootstrap_interval(y, proba.argmax(1))),
        y_true=y.tolist(),
        y_pred=proba.argmax(1).tolist(),
        files=list(scored["path"]),
    )
    metrics = with_units(clip, list(scored["speakerid"]), unit=unit, proba=proba)
    used = {k: v for k, v in mapping.items() if v in index and k in set(raw)}
    return CrossCorpusResult(
        corpus=archive.corpus,
        source=source,
        labels=model_labels,
        metrics=metrics,
        clips=len(scored),
        speakers=int(scored["speakerid"].nunique()),
        mapped=used,
        unmapped=unmapped,
        skipped=[s.file for s in features.skipped],
        not_in_model=sorted({v for v in mapping.values() if v and v not in index}),
    )


def load_classifier(uri: str) -> Any:
    """The ``AccentClassifier`` inside a logged or registered model (any MLflow model URI)."""
    from speechprint.apps.predict import load_model

    model = load_model(uri)
    try:
        return model.unwrap_python_model().classifier
    except AttributeError as error:
        raise ConfigError(f"{uri} is not a SpeechPrint model (no classifier inside)") from error
