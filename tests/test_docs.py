"""Every command and option is documented: in `--help` (with an example) and in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rerank_cli.cli.app import app

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
CHANGELOG = (Path(__file__).parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")
COMMANDS = [["score"], ["rerank"], ["batch"], ["eval"], ["models", "list"], ["models", "pull"], ["models", "path"],
            ["models", "rm"], ["models", "quantize"]]
runner = CliRunner()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"rerank {' '.join(command)}" in result.stdout
    assert f"rerank {' '.join(command)}" in README


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_is_in_the_readme(command: list[str]) -> None:
    help_text = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).stdout
    options = set(re.findall(r"(--[a-z][a-z0-9-]+)", help_text)) - {"--help"}
    missing = sorted(o for o in options if not re.search(rf"`[^`]*{o}\b", README))
    assert not missing, f"undocumented in README: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block[0].startswith("pip install . && rerank rerank") and "examples/docs.jsonl" in first_block[0]
    assert first_block[1] == "pip install '.[test]' && python -m pytest"
    assert (Path(__file__).parents[1] / "examples/docs.jsonl").is_file()


def test_exit_codes_are_documented_everywhere() -> None:
    from rerank_cli.errors import EXIT_CODES

    top_help = runner.invoke(app, ["--help"]).stdout
    for code, _ in EXIT_CODES:
        assert f"| {code} |" in README
        assert re.search(rf"^\s+{code}\s", top_help, re.M), code


def test_changelog_keeps_an_unreleased_section() -> None:
    assert CHANGELOG.splitlines()[0] == "# Changelog" and "## [Unreleased]" in CHANGELOG
