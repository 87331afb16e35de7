"""Every CLI command is documented in the README (the sqlite-utils habit)."""

from __future__ import annotations

import re

import pytest

from analysis.cli import cli
from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_command_is_documented_in_readme(command):
    assert re.search(rf"`stemwatch {re.escape(command)}[` ]", README), f"stemwatch {command} is not in README.md"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_command_help_ends_with_an_example(command):
    help_text = cli.commands[command].help or ""
    last = help_text.strip().splitlines()[-1].strip()
    assert last.startswith("Example: stemwatch " + command), f"{command} help must end with an example"


def test_readme_gives_make_test_and_ci_runs_it():
    assert "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_example_seed_list_loads_cleanly():
    from crawler.seeds import load_seeds

    seeds, problems = load_seeds([str(REPO / "data" / "seeds.example.csv")])
    assert problems == []
    assert len(seeds) == 3 and all(s["url"].startswith("https://") and s["name"] for s in seeds)
