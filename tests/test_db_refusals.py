"""Commands pointed at a file that is not a stemwatch database refuse it with a message
and leave it exactly as it was: an empty file, someone else's SQLite database, a folder."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from click.testing import CliRunner

from analysis.cli import cli

COMMANDS = [
    ["changes"],
    ["review", "1", "--verdict", "confirmed", "--by", "ana"],
    ["export", "--out", "{out}.zip", "--unsigned", "--no-browser"],
    ["reanalyze"],
    ["verify"],
    ["backup", "{out}.db"],
    ["serve", "--port", "0"],
    ["upgrade"],
    ["users", "add", "ana", "--password-stdin"],
    ["users", "list"],
    ["users", "remove", "ana"],
]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def empty(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    return path


@pytest.fixture
def foreign(tmp_path):
    path = tmp_path / "notes.db"
    conn = sqlite3.connect(path)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('keep me')")
    conn.commit()
    conn.close()
    return path


# (the file, what the refusal says)
FILES = [("empty", "is an empty file, not a stemwatch database"),
         ("foreign", "not a stemwatch one (tables: notes)")]


@pytest.mark.parametrize("kind,message", FILES, ids=[f[0] for f in FILES])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: "-".join(a[:2]) if a[0] == "users" else a[0])
def test_a_file_that_is_not_a_stemwatch_database_is_refused_untouched(request, tmp_path, kind, message, args):
    path = request.getfixturevalue(kind)
    before = _digest(path)
    args = [a.format(out=tmp_path / "out") for a in args]
    result = CliRunner().invoke(cli, [*args, "--db", str(path)])
    assert result.exit_code != 0
    assert message in result.output
    assert _digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_crawl_does_not_take_over_a_foreign_database(foreign):
    before = _digest(foreign)
    result = CliRunner().invoke(cli, ["crawl", "https://clinic.example.org/", "--db", str(foreign)])
    assert result.exit_code != 0 and "not a stemwatch one" in result.output
    assert _digest(foreign) == before
