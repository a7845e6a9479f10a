"""Cross-corpus evaluation: score a model trained on one corpus on another corpus's speakers.

Does a model of accent survive a change of microphone, text and speakers? The other corpus names
its labels its own way (VCTK's ``Scottish``, Common Voice's ``England English``), so a mapping file
says which of the model's labels each corpus label is: a CSV with ``from,to`` columns (``#``
comments; an empty ``to`` leaves a label out on purpose). Without one, a corpus label is used when
the model knows it by that name. Clips whose label maps to none of the model's labels are left out
and listed with their speakers; the rest are scored per clip and per speaker (clips averaged).

Beside balanced accuracy, each group of speakers (adults and children apart, by the corpus's
``age``) gets the share of its speakers given their own label, with a bootstrap interval over
speakers, and what the others were called: on a corpus of one label (speechocean762, all
``east asian``) that share is the whole answer. ``max_clips_per_speaker`` keeps each speaker's
first clips (by file name: the same clips every time, so their features stay cached) where
extracting all of them costs more than the question needs.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.apps.joined import join_clips as joined_recordings
from speechprint.apps.predict import load_model
from speechprint.core.errors import ConfigError, DataError
from speechprint.data.archive import Archive
from speechprint.evaluation.metrics import score_split
from speechprint.evaluation.shares import GroupShare, age_group, group_shares
from speechprint.evaluation.units import unit_metrics, with_units
from speechprint.features import extract_features
from speechprint.features.cache import resolve_cache_dir
from speechprint.inference.ensemble import EnsembleClassifier, uses_passage
from speechprint.inference.heard import PASSAGE_MATCH, passage_match

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
    groups: list[GroupShare] = field(default_factory=list)  # per age group: share given own label
    note: str = ""  # how a model that needs the passage was scored on other texts


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
    max_clips_per_speaker: int | None = None,
    join_clips: int | None = None,
) -> CrossCorpusResult:
    """Score ``classifier`` (an ``AccentClassifier`` or an ensemble) on every mappable clip of ``archive``
    (each speaker's first ``max_clips_per_speaker`` clips when given; with ``join_clips``, each
    speaker's first that many clips joined into one recording, ``apps.joined``)."""
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
    kept = first_clips(rows[keep], max_clips_per_speaker)
    texts = archive.texts()  # the corpus's transcripts, for extractors that read them
    if join_clips is not None:
        kept = joined_recordings(kept, join_clips, resolve_cache_dir(cache_dir))
        said = kept["text"] if "text" in kept else [None] * len(kept)
        texts = {str(p): t if isinstance(t, str) and t else None for p, t in zip(kept.path, said)}
    if kept.empty:
        raise DataError(
            f"no clip of {archive.root} has a label the model knows "
            f"({', '.join(model_labels)}); unmapped: {', '.join(unmapped)}"
        )
    paths = [str(p) for p in kept["path"]]
    scorer, note = heard_as(classifier, [texts.get(p) for p in paths])

    def extract(extractor: Any) -> Any:
        return extract_features(
            paths,
            extractor,
            jobs=jobs,
            cache_dir=cache_dir,
            progress=progress,
            dask=dask,
            texts=texts,
        )

    by_path, skipped = file_probabilities(scorer, paths, extract)
    scored = kept[kept["path"].astype(str).isin(list(by_path))].reset_index(drop=True)
    y = np.array([index[mapping[v.strip().lower()]] for v in scored[source]], dtype=int)
    proba = np.stack([by_path[str(p)] for p in scored["path"]])
    with warnings.catch_warnings():
        # A corpus of one label (speechocean762) is the normal case here, not a mistake: keep
        # scikit-learn's "a single label" / "classes not in y_true" notes off the user's screen.
        warnings.filterwarnings("ignore", message=".*(single label|not in y_true).*")
        clip = score_split(y, proba, model_labels, files=list(scored["path"]))
        metrics = with_units(clip, list(scored["speakerid"]), unit=unit, proba=proba)
    used = {k: v for k, v in mapping.items() if v in index and k in set(raw)}
    speaker_level = unit_metrics(metrics, "speaker")
    age_of = scored.groupby("speakerid")["age"].first() if "age" in scored else None
    groups = group_shares(
        speaker_level["y_true"],
        speaker_level["y_pred"],
        [age_group(None if age_of is None else age_of.get(s)) for s in speaker_level["speakers"]],
        model_labels,
    )
    return CrossCorpusResult(
        corpus=archive.corpus,
        source=source,
        labels=model_labels,
        metrics=metrics,
        clips=len(scored),
        speakers=int(scored["speakerid"].nunique()),
        mapped=used,
        unmapped=unmapped,
        skipped=skipped,
        not_in_model=sorted({v for v in mapping.values() if v and v not in index}),
        groups=groups,
        note=note,
    )


def heard_as(classifier: Any, texts: list[str | None]) -> tuple[Any, str]:
    """The model to score clips of these transcripts with, and a note when it is not the model
    as given. Word groups laid out by the archive's passage are utterance means on any other
    text: an ensemble is then scored by its members that do not need the passage, as
    ``predict`` answers for one recording of another text."""
    if not uses_passage(classifier):
        return classifier, ""
    if any(not text for text in texts):
        return classifier, "some clips have no transcript: every member was scored as it is"
    if all(passage_match(str(text)) >= PASSAGE_MATCH for text in texts):
        return classifier, ""
    leaned = classifier.without_passage() if isinstance(classifier, EnsembleClassifier) else None
    if leaned is None:
        return classifier, (
            "the clips do not read the archive's passage: this model's word groups are "
            "utterance means here"
        )
    names = ", ".join(member_names(leaned))
    return leaned, (
        "the clips do not read the archive's passage: the ensemble is scored by its members "
        f"that do not need it ({names})"
    )


def member_names(classifier: Any) -> list[str]:
    """``extractor+model`` of each member (the classifier itself when it is not an ensemble)."""
    if isinstance(classifier, EnsembleClassifier):
        return [name for member in classifier.members for name in member_names(member)]
    return [f"{classifier.extractor_name}+{classifier.model_name}"]


def file_probabilities(
    classifier: Any, paths: list[str], extract: Callable[[Any], Any]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({file: probabilities}, undecodable files)``; an ensemble averages its members, each on
    its own extractor's features (``extract``: cached), over the files every member could read,
    then applies its temperature."""
    if not isinstance(classifier, EnsembleClassifier):
        features = extract(classifier.extractor)
        kept = [p for p in paths if p in features.features]
        proba = classifier.predict_proba_features([features.features[p] for p in kept])
        return dict(zip(kept, proba, strict=True)), [s.file for s in features.skipped]
    members = [file_probabilities(m, paths, extract) for m in classifier.members]
    skipped = sorted({file for _, lost in members for file in lost})
    kept, proba = classifier.average([rows for rows, _ in members], paths)
    return dict(zip(kept, proba, strict=True)), skipped


def first_clips(rows: pd.DataFrame, per_speaker: int | None) -> pd.DataFrame:
    """Each speaker's first ``per_speaker`` clips by file name (all of them for ``None``)."""
    if per_speaker is None:
        return rows.reset_index(drop=True)
    if per_speaker < 1:
        raise ConfigError(f"clips per speaker must be at least 1, got {per_speaker}")
    ordered = rows.sort_values(["speakerid", "filename"], kind="stable")
    return ordered.groupby("speakerid", sort=False).head(per_speaker).reset_index(drop=True)


def load_classifier(uri: str) -> Any:
    """The ``AccentClassifier`` (or ``EnsembleClassifier``) inside a logged or registered model
    (any MLflow model URI)."""
    model = load_model(uri)
    try:
        return model.unwrap_python_model().classifier
    except AttributeError as error:
        raise ConfigError(f"{uri} is not a SpeechPrint model (no classifier inside)") from error
