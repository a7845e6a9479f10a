"""Developer sessions: `nox -s tests` (default), `nox -s lint` and `nox -s docs`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

# The CPU wheel of torch: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"
# Pinned: a new release of either may find new things to say about the same code.
LINT_IMPORTS = "import-linter==2.17"
MYPY = "mypy==2.4.1"


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real MLflow, Optuna and audio, in temporary folders)."""
    session.install(TORCH)
    session.install("-e", ".[pretrained,dev,cluster]")  # cluster: the Dask extraction tests
    # Resemblyzer's declared deps (webrtcvad from source, a `typing` backport) break installs.
    session.install("--no-deps", "resemblyzer==0.1.4")
    session.run(
        "pytest",
        *(session.posargs or ["-q", "-ra", "--durations=15"]),
        env={"OMP_WAIT_POLICY": "PASSIVE"},
    )


# What ruff checks and formats: the package, its tests and benchmarks, and the two build scripts.
LINTED = ("speechprint", "tests", "noxfile.py", "mkdocs_hooks.py", "benchmarks")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + format check, the import contracts (layers, no cycles) and mypy."""
    # The package and its dependencies: mypy reads their types, lint-imports the package.
    session.install(TORCH)
    session.install("-e", ".", "ruff", LINT_IMPORTS, MYPY)
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    session.run("lint-imports")  # [tool.importlinter] in pyproject.toml
    session.run("mypy")  # [tool.mypy]: strict on core, evaluation and text


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site (README + docs/) with MkDocs, strictly: a broken link fails it. Into site/."""
    session.install("mkdocs>=1.6,<2")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")
