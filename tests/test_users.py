"""`stemwatch users`: reviewers kept in the database, passwords only as PBKDF2 hashes."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner
from datasette_auth_passwords.utils import verify_password

from analysis.cli import cli

PASSWORD = "tulip-57-harbour"


def _users(db_path, *args, input=None):
    return CliRunner().invoke(cli, ["users", *args, "--db", str(db_path)], input=input)


def _stored(db_path) -> list[tuple]:
    conn = sqlite3.connect(str(db_path))
    try:
        return conn.execute("select name, password_hash, disabled from reviewers order by name").fetchall()
    finally:
        conn.close()


def test_add_list_remove(fresh_db, db_path):
    fresh_db.close()
    added = _users(db_path, "add", "ana", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert "Added reviewer ana" in added.output and PASSWORD not in added.output  # the prompt shows nothing
    [(name, password_hash, disabled)] = _stored(db_path)
    assert (name, disabled) == ("ana", 0)
    assert password_hash.startswith("pbkdf2_sha256$") and PASSWORD not in password_hash
    assert verify_password(PASSWORD, password_hash)
    # in no byte of the database, its journal included
    for path in db_path.parent.glob(db_path.name + "*"):
        assert PASSWORD.encode() not in path.read_bytes(), path

    listed = _users(db_path, "list")
    assert listed.exit_code == 0 and listed.output.startswith("ana  added ")
    [row] = json.loads(_users(db_path, "list", "--format", "json").output)
    assert set(row) == {"name", "created_at", "disabled"}  # never the hash

    assert _users(db_path, "disable", "ana").exit_code == 0
    assert "disabled" in _users(db_path, "list").output
    removed = _users(db_path, "remove", "ana")
    assert removed.exit_code == 0 and _stored(db_path) == []
    assert "No reviewers yet" in _users(db_path, "list").output
    again = _users(db_path, "remove", "ana")
    assert again.exit_code == 1 and "no reviewer 'ana'" in again.output


def test_password_from_stdin_and_refusals(fresh_db, db_path):
    fresh_db.close()
    assert _users(db_path, "add", "ben.k", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    [(_, password_hash, _)] = _stored(db_path)
    assert verify_password(PASSWORD, password_hash)  # the line ending is not part of it

    mismatch = _users(db_path, "add", "cleo", input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    for args, input, message in (
        (["add", "Ana Garcia"], None, "a reviewer name is 1 to 40 lower-case letters"),
        (["add", ".dot"], None, "a reviewer name is"),
        (["add", "x" * 41], None, "a reviewer name is"),
        (["add", "dan", "--password-stdin"], "short\n", "at least 8 characters"),
        (["add", "ben.k", "--password-stdin"], PASSWORD + "\n", "already exists"),
    ):
        result = _users(db_path, *args, input=input)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert [r[0] for r in _stored(db_path)] == ["ben.k"]


def test_users_needs_a_stemwatch_database(tmp_path):
    missing = _users(tmp_path / "none.db", "add", "ana", "--password-stdin", input=PASSWORD + "\n")
    assert missing.exit_code == 1 and "no database at" in missing.output
