"""Command line: a thin layer over the library, one typer sub-app per module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="speechprint",
    help="Accent identification research harness: data, features, studies, MLflow, promotion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register_subcommands() -> None:
    # Imported here so `speechprint --help` stays fast and each sub-app stays in its own file.
    from speechprint.cli import data, features

    app.add_typer(data.app, name="data")
    app.add_typer(features.app, name="features")


def main() -> None:
    _register_subcommands()
    app()
