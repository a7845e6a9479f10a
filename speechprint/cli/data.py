"""`speechprint data describe | synth`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer
from rich.table import Table

from speechprint.cli.common import console, err_console, fail, ours

app = typer.Typer(help="Corpus data: describe a corpus, synthesise the demo corpus.")


def _print_count_tables(summary: dict, top: int) -> None:
    for key, title in (
        ("by_region", "region"),
        ("by_native_language", "native language"),
        ("by_country", "country"),
        ("by_sex", "sex"),
        ("by_age", "age"),
        ("by_accent", "accent"),
    ):
        if key not in summary:  # by_accent: corpora with an accent label of their own
            continue
        counts = summary[key]
        table = Table(title, "speakers", title=f"by {title} ({len(counts)})")
        # Regions, sex and age are short lists: show them whole; languages and countries are long.
        shown = list(counts.items())
        if key in ("by_native_language", "by_country", "by_accent"):
            shown = shown[:top]
        for name, count in shown:
            table.add_row(name, str(count))
        console.print(table)
        if len(shown) < len(counts):  # say so: a short table must not read as the whole list
            console.print(
                f"(the {len(shown)} largest of {len(counts)} {title} rows; "
                "--top N shows more, --json all)",
                soft_wrap=True,
            )


@app.command("describe")
def describe(
    archive: Path = typer.Option(..., help="Corpus folder (saa: speakers_all.csv + recordings/)."),
    corpus: str = typer.Option(
        "saa", help="Corpus reader: saa (default), commonvoice, vctk, l2arctic."
    ),
    out: Path | None = typer.Option(None, help="Write overview plots (PNG) to this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    top: int = typer.Option(
        15, min=1, help="Rows in the language and country tables (human output)."
    ),
    regions: str = typer.Option(
        "seed",
        metavar="NAME|PATH",
        help="Region table: seed (the notebook's 17), geo, or a country,region CSV file.",
    ),
) -> None:
    """Counts by region, native language, country, sex and age; missing and unreadable audio."""
    from speechprint.data.archive import describe_archive, plot_overview
    from speechprint.data.corpora import load_corpus

    with fail.on_user_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_corpus(archive, corpus, regions=regions)
        summary = describe_archive(loaded)
        plots = plot_overview(loaded, out) if out else []
    for warning in ours(caught):  # stderr, so that --json keeps stdout to one JSON object
        err_console.print(f"[yellow]warning:[/] {warning.message}")
    if as_json:
        typer.echo(json.dumps(summary))
        return
    table = summary["region_table"]
    console.print(
        f"[bold]{summary['archive']}[/]: {summary['rows']} rows, {summary['with_audio']} with "
        f"audio, {summary['without_audio']} without audio, {len(summary['unreadable'])} "
        f"unreadable; {summary['regions']} regions (region table {table['name']}, "
        f"{table['digest']}). Counts below are over rows with audio."
    )
    if summary["corpus"] != "saa":
        console.print(
            f"{summary['corpus']}: {summary['speakers']} speakers with audio; counts "
            "below are of speakers, not clips."
        )
    _print_count_tables(summary, top)
    if summary.get("unmapped_accents"):
        listed = ", ".join(f"{k} ({n})" for k, n in summary["unmapped_accents"].items())
        console.print(f"unmapped accents (speakers): {listed}", soft_wrap=True)
    for key, value in summary.get("notes", {}).items():
        console.print(f"{key.replace('_', ' ')}: {value}", soft_wrap=True)
    for item in summary["unreadable"]:
        console.print(f"[red]unreadable:[/] {item['file']}: {item['reason']}")
    for plot in plots:
        console.print(f"plot: {plot}")


@app.command("synth")
def synth(
    out: Path = typer.Option(Path("demo-corpus"), help="Output folder (archive layout)."),
    speakers_per_class: int = typer.Option(10, help="Synthetic speakers per accent class."),
    seconds: float | None = typer.Option(None, help="Crop each reading to about S seconds."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same corpus."),
) -> None:
    """Make the embedded demo corpus: eSpeak NG accents reading the archive's paragraph."""
    from speechprint.data.synth import synthesize_corpus

    with fail.on_user_errors():
        path = synthesize_corpus(
            out, speakers_per_class=speakers_per_class, seconds=seconds, seed=seed
        )
    console.print(f"demo corpus written to {path} (speakers_all.csv + recordings/)")
