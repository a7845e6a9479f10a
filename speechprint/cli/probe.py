"""`speechprint probe layers`: a linear probe on every layer of a pretrained encoder."""

from __future__ import annotations

from pathlib import Path

import typer

from speechprint.cli.common import console, fail

app = typer.Typer(help="Probe pretrained encoders: which layer carries the accent.")


@app.command("layers")
def probe_layers(
    archive: Path = typer.Option(..., help="Corpus folder (speakers_all.csv + recordings/)."),
    extractor: str = typer.Option("whisper_encoder", help="Encoder extractor to probe."),
    params: list[str] = typer.Option(
        [],
        "--params",
        "--param",
        help="Extractor parameter as key=value (repeatable), e.g. model=base.",
    ),
    folds: int = typer.Option(5, help="k of the repeated stratified k-fold."),
    repeats: int = typer.Option(2, help="Repeats of the k-fold, each with new folds."),
    target: str = typer.Option("region", help="Label to predict."),
    min_count: int = typer.Option(5, help="Drop classes with fewer speakers."),
    seed: int = typer.Option(0, help="Split and fold seed."),
    c: float = typer.Option(0.1, "--C", help="Inverse L2 strength of the logistic regression."),
    out: Path = typer.Option(
        Path("reports/probe-layers"), help="Folder for layers.csv and layers.png."
    ),
    jobs: int | None = typer.Option(None, help="Extraction worker processes (default: all cores)."),
    cache_dir: str | None = typer.Option(None, help="Feature cache folder."),
    progress: bool = typer.Option(True, help="Show a progress bar while extracting."),
) -> None:
    """Balanced accuracy of a class-balanced linear probe on each layer, by k-fold on train+val."""
    from speechprint.apps.probe import run_probe
    from speechprint.cli.features import parse_params

    with fail.on_user_errors():
        parsed = parse_params(params, extractor)
        probe = run_probe(
            out,
            archive=str(archive),
            extractor=extractor,
            params=parsed,
            folds=folds,
            repeats=repeats,
            target=target,
            min_count=min_count,
            seed=seed,
            C=c,
            jobs=jobs,
            cache_dir=cache_dir,
            progress=progress,
        )
    console.print(
        f"[bold]{extractor}[/] {parsed}: linear probe (logreg, C={c}) per layer, "
        f"{probe.folds}-fold x {probe.repeats} on {probe.n_speakers} development speakers "
        f"(test untouched), chance {probe.chance:.3f}"
    )
    for row in probe.rows():
        console.print(
            f"  layer {row['name']:<16} balanced accuracy {row['balanced_accuracy']:.3f} "
            f"(95% CI {row['ci_low']:.3f}-{row['ci_high']:.3f}, fold std {row['std']:.3f})",
            highlight=False,
        )
    best = probe.best()
    console.print(f"best: layer {best.name} ({best.mean:.3f})   MLflow run: {probe.run_id}")
    console.print(f"wrote {out / 'layers.csv'} and {out / 'layers.png'}", soft_wrap=True)
