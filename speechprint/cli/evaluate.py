"""`speechprint evaluate`: score a model on another corpus (cross-corpus evaluation)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from speechprint.cli.common import console, err_console, fail, ours

if TYPE_CHECKING:
    from speechprint.apps.crosscorpus import CrossCorpusResult


def evaluate_command(
    model: str = typer.Option(
        ..., help="MLflow model URI, e.g. models:/speechprint-accent@champion."
    ),
    corpus: str = typer.Option(
        "saa", help="Corpus reader: saa, commonvoice, vctk, l2arctic, speechocean762."
    ),
    archive: Path = typer.Option(..., help="The corpus folder to score the model on."),
    labels: Path | None = typer.Option(
        None, help="Label map CSV (from,to): corpus label -> model label. Default: same names."
    ),
    source: str = typer.Option(
        "accent", help="Corpus column the labels come from (accent, region...)."
    ),
    unit: str = typer.Option("speaker", help="Headline unit: speaker (clips averaged) or clip."),
    regions: str = typer.Option("seed", help="Region table for the corpus's region column."),
    jobs: int | None = typer.Option(None, help="Extraction processes (default: all cores)."),
    cache_dir: str | None = typer.Option(None, help="Feature cache folder or fsspec URL."),
    dask: str | None = typer.Option(None, metavar="ADDRESS", help="Extract on a Dask cluster."),
    max_clips_per_speaker: int | None = typer.Option(
        None, help="Score each speaker's first N clips only (by file name); default: all."
    ),
    join_clips: int | None = typer.Option(
        None,
        help="Join each speaker's first N clips into one recording before listening "
        "(for models trained on long recordings; default: score clips, average per speaker).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score a trained model on another corpus through a label map; list what could not be mapped."""
    from speechprint.core.errors import ConfigError
    from speechprint.data.corpora import load_corpus

    with fail.on_user_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if unit not in ("speaker", "clip"):
            raise ConfigError(f"--unit must be speaker or clip, got {unit!r}")
        # The option and the corpus first (light), then the stack, the label map and the model.
        loaded = load_corpus(archive, corpus, regions=regions)
        from speechprint.apps.crosscorpus import (
            cross_corpus_score,
            load_classifier,
            read_label_map,
        )

        mapping = read_label_map(labels) if labels else None
        classifier = load_classifier(model)
        result = cross_corpus_score(
            classifier,
            loaded,
            source=source,
            label_map=mapping,
            unit=unit,
            jobs=jobs,
            cache_dir=cache_dir,
            dask=dask,
            progress=not as_json,
            max_clips_per_speaker=max_clips_per_speaker,
            join_clips=join_clips,
        )
    for warning in ours(caught):
        err_console.print(f"[yellow]warning:[/] {warning.message}")
    metrics = result.metrics
    if as_json:
        keep = ("balanced_accuracy", "balanced_accuracy_ci", "accuracy", "macro_f1", "chance", "n")
        other = "clip" if metrics["unit"] == "speaker" else "speaker"
        typer.echo(
            json.dumps(
                {
                    "model": model,
                    "corpus": result.corpus,
                    "archive": str(archive),
                    "unit": metrics["unit"],
                    **{k: metrics[k] for k in keep},
                    other: {k: metrics[other][k] for k in keep},
                    "clips": result.clips,
                    "speakers": result.speakers,
                    "mapped": result.mapped,
                    "unmapped": result.unmapped,
                    "not_in_model": result.not_in_model,
                    "skipped": result.skipped,
                    "groups": [g.as_dict() for g in result.groups],
                    "join_clips": join_clips,
                    "max_clips_per_speaker": max_clips_per_speaker,
                    "note": result.note,
                }
            )
        )
        return
    _print(result, model)


def _print(result: CrossCorpusResult, model: str) -> None:
    metrics = result.metrics
    low, high = metrics["balanced_accuracy_ci"]
    other_unit = "clip" if metrics["unit"] == "speaker" else "speaker"
    console.print(
        f"[bold]{model}[/] on {result.corpus} ({result.speakers} speakers, {result.clips} clips): "
        f"balanced accuracy per {metrics['unit']} {metrics['balanced_accuracy']:.3f} "
        f"[95% CI {low:.3f}-{high:.3f}], chance {metrics['chance']:.3f}; per {other_unit} "
        f"{metrics[other_unit]['balanced_accuracy']:.3f}"
    )
    if result.note:
        console.print(f"[yellow]note:[/] {result.note}", soft_wrap=True)
    _print_groups(result)
    table = Table("corpus label", "model label", title="label map used")
    for source, target in sorted(result.mapped.items()):
        table.add_row(source, target)
    console.print(table)
    if result.unmapped:
        listed = ", ".join(f"{k} ({n})" for k, n in result.unmapped.items())
        console.print(f"[yellow]not mapped[/] (speakers left out): {listed}", soft_wrap=True)
    if result.not_in_model:
        console.print(
            "[yellow]map targets the model does not know:[/] " + ", ".join(result.not_in_model),
            soft_wrap=True,
        )


def _print_groups(result: CrossCorpusResult) -> None:
    """Per age group: the share of speakers given their own label, its interval, other answers."""
    table = Table(
        "speakers",
        "label",
        "n",
        "share given it",
        "95% CI (speakers)",
        "called instead (speakers)",
        title="speakers given their own label",
    )
    for group in result.groups:
        others = ", ".join(f"{k} {n}" for k, n in group.predicted.items() if k != group.label)
        table.add_row(
            group.group,
            group.label,
            str(group.speakers),
            f"{group.share:.0%}",
            f"{group.low:.0%}-{group.high:.0%}",
            others or "-",
        )
    console.print(table)
