"""`speechprint pronounce`: one recording's learner's page (sounds that differ from native
readers, the text shaded, the audio playable word by word)."""

from __future__ import annotations

from pathlib import Path

import typer

from speechprint.cli.common import console, fail


def pronounce_command(
    recording: Path = typer.Argument(..., help="One audio file (mp3, wav, flac, ogg)."),
    text: str | None = typer.Option(
        None, help="What the recording says (default: the archive's passage)."
    ),
    model: str | None = typer.Option(
        None, help="MLflow model URI: adds the regions it hears (optional)."
    ),
    out: Path = typer.Option(Path("pronounce.html"), help="The page to write."),
) -> None:
    """Which words and sounds differ most from the archive's native readers, on one page."""
    from speechprint.apps.pronounce import pronounce

    with fail.on_user_errors():
        result = pronounce(recording, out, text=text, model_uri=model)
    flagged = sum(w.flagged for w in result.words)
    console.print(
        f"{flagged} sounds differ from native readers; {result.aligned_share:.0%} of the words "
        "aligned",
        highlight=False,
    )
    console.print(f"page: {result.page}")


def register(app: typer.Typer) -> None:
    app.command("pronounce")(pronounce_command)
