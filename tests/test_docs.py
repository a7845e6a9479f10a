"""The README and docs/ say what is true: their commands exist as written, the site builds strictly.

Every ``speechprint ...`` command in a ``bash`` block or an inline code span of README.md and
docs/*.md is parsed: its sub-command must exist, every option it passes must be one that
sub-command's ``--help`` lists, and the study and experiment files it names must exist. ``nox -s``
sessions, extras and repository files the pages name are checked the same way. The quick start's
own command runs end to end in ``tests/test_quickstart.py`` (slow); docs/EXTENDING.md's Python
runs in ``tests/test_extending.py``.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 12 * 1024  # bytes: a front door of one page

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SPAN = re.compile(
    r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)"
)  # inline code, wrapped over 2 lines at most
SEPARATORS = {"&&", "||", "|", ";"}
# Paths a command may name that must exist in the repository (the others are the user's own).
REPO_PATH = re.compile(r"^(studies|experiments|benchmarks|tests|docs)/[\w./-]+\.(yaml|py|md)$")


@dataclass(frozen=True)
class Command:
    page: str
    words: tuple[str, ...]
    open_ended: bool = False  # written "speechprint --debug ...": the rest is the reader's

    def __str__(self) -> str:
        return f"{self.page}: {' '.join(self.words)}"


def _fenced(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _words(line: str) -> list[str]:
    line = line.replace("\\\n", " ")
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in a shell example: not ours to parse
        return []


def _commands(words: list[str], program: str) -> list[list[str]]:
    """The invocations of ``program`` in one shell line (after env assignments, between ``&&``)."""
    found, current = [], []
    for word in [*words, ";"]:
        if word in SEPARATORS:
            while current and re.match(r"^\w+=", current[0]):  # VAR=value program ...
                current.pop(0)
            if current and current[0] == program:
                found.append(current[1:])
            current = []
        else:
            current.append(word)
    return found


def _shell_lines(text: str) -> list[str]:
    lines = []
    for block in _fenced(text, "bash"):
        lines.extend(block.replace("\\\n", " ").splitlines())
    return lines


def documented_commands(program: str = "speechprint") -> list[Command]:
    commands = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(ROOT).as_posix()
        sources = _shell_lines(text) + [span for span in SPAN.findall(_prose(text))]
        for source in sources:
            # "..." stands for "whatever else you like": read up to it.
            open_ended = "..." in source
            source = source.split("...")[0].replace("\n", " ")
            for words in _commands(_words(source), program):
                commands.append(Command(name, tuple(words), open_ended))
    return commands


def _cli() -> Any:
    """The command tree (typer's own click: a group is a command with sub-``commands``)."""
    _register_subcommands()
    return typer.main.get_command(app)


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def _option(command: Any, name: str) -> Any:
    for param in command.params:
        if param.param_type_name == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def resolve(command: Command) -> tuple[list[str], list[str]]:
    """(the sub-command path, the problems found): unknown sub-commands and options, missing files."""
    node = _cli()
    path: list[str] = []
    problems = []
    values_next = 0  # the words after an option that takes values are those values
    for word in command.words:
        option = word.split("=", 1)[0]
        if values_next:
            values_next -= 1
        elif option.startswith("-") and len(option) > 1:
            param = _option(node, option)
            if param is None:
                problems.append(f"{' '.join(['speechprint', *path])} has no option {option}")
            else:
                takes = 0 if param.is_flag or param.count else max(param.nargs, 1)
                values_next = 0 if "=" in word else takes
        elif _is_group(node):
            sub = node.commands.get(word)
            if sub is None:
                problems.append(f"{' '.join(['speechprint', *path])} has no sub-command {word!r}")
                break
            node, path = sub, [*path, word]
        elif not any(param.param_type_name == "argument" for param in node.params):
            problems.append(f"{' '.join(['speechprint', *path])} takes no argument {word!r}")
        elif REPO_PATH.match(word) and not (ROOT / word).exists():
            problems.append(f"{word} does not exist")
    if _is_group(node) and not command.open_ended:
        problems.append(f"{' '.join(['speechprint', *path])} needs a sub-command")
    return path, problems


def test_the_readme_is_a_front_door_of_one_page() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, (
        f"README.md is {size} bytes, over {README_LIMIT}: move detail to a docs/ page and link it"
    )


def test_the_pages_document_commands() -> None:
    pages = {command.page for command in documented_commands()}
    assert {"README.md", "docs/USAGE.md"} <= pages
    readme = [command for command in documented_commands() if command.page == "README.md"]
    assert len(readme) >= 12  # the quick start and the research loop in a dozen commands


def test_every_documented_command_exists_with_its_options() -> None:
    problems = []
    for command in documented_commands():
        problems.extend(f"{command}\n    {problem}" for problem in resolve(command)[1])
    assert not problems, "\n".join(problems)


def test_every_documented_sub_command_answers_help() -> None:
    _register_subcommands()
    paths = {tuple(resolve(command)[0]) for command in documented_commands()}
    runner = CliRunner()
    for path in sorted(paths):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"speechprint {' '.join(path)} --help: {result.output}"


def test_the_checker_catches_a_wrong_command() -> None:
    wrong = Command("x.md", ("study", "run", "studies/nope.yaml", "--n-trial", "3"))
    problems = resolve(wrong)[1]
    assert any("--n-trial" in problem for problem in problems)
    assert any("studies/nope.yaml" in problem for problem in problems)
    assert resolve(Command("x.md", ("studdy", "show")))[1]
    assert resolve(Command("x.md", ("data", "synth", "demo-corpus")))[1] == [
        "speechprint data synth takes no argument 'demo-corpus'"
    ]
    assert not resolve(Command("x.md", ("-v", "data", "synth", "--out", "demo-corpus")))[1]
    assert resolve(Command("x.md", ("study",)))[1] == ["speechprint study needs a sub-command"]


def _nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("session" in ast.unparse(decorator) for decorator in node.decorator_list)
    }


def test_documented_nox_sessions_exist() -> None:
    sessions = _nox_sessions()
    named = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        named |= set(re.findall(r"\bnox -s (\w+)", text))
    assert {"tests", "lint", "docs"} <= named
    assert named <= sessions, f"pages name nox sessions that do not exist: {named - sessions}"


def _quickstart_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line for block in _fenced(section, "bash") for line in block.splitlines() if line]


def test_the_quick_start_is_two_commands_that_install_run_and_test() -> None:
    install, tests = _quickstart_lines()
    assert tests == "nox -s tests"
    words = _words(install)
    # The main job is the last step: tests/test_quickstart.py runs it (as `python -m speechprint`).
    assert _commands(words, "speechprint") == [["quickstart"]]
    assert (
        words[-1] == "quickstart"
        and "quickstart" in (ROOT / "tests" / "test_quickstart.py").read_text()
    )
    # The torch pin is the CPU wheel nox installs; the extras exist.
    pip = words[words.index("pip") :]
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    torch = next(word for word in pip if word.startswith("torch=="))
    assert f'TORCH = "{torch}"' in noxfile
    spec = pip[pip.index("-e") + 1]
    extras = set(re.fullmatch(r"\.\[([\w,]+)\]", spec).group(1).split(","))  # type: ignore[union-attr]
    assert extras <= set(metadata("speechprint").get_all("Provides-Extra") or [])


def test_files_the_pages_name_exist() -> None:
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(
            r"(?<![\w/.])((?:experiments|benchmarks|tests)/[\w-]+\.(?:yaml|py))", text
        ):
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
        for target in re.findall(r"\]\(([^)#\s]+\.(?:md|png))", text):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name}: link {target}")
    assert not missing, "\n".join(missing)


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra (nox -s docs)")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    build(config)  # raises on any warning: a broken link, a page missing from the nav
    assert (tmp_path / "site" / "index.html").exists()  # the README, as the home page
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert (tmp_path / "site" / page.stem / "index.html").exists(), page.name
