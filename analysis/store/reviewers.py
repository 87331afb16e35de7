"""Reviewers: who may sign in to Datasette and record verdicts.

They are kept in the database (table `reviewers`), so plain `datasette
clinics.db` knows them. A password is kept only as its PBKDF2-SHA256 hash,
made and checked by datasette-auth-passwords' helpers (480,000 iterations,
a random salt each). The Datasette plugin never serves the table
(analysis.web.signin); reads here go through a connection of their own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import cache

import sqlite_utils
from datasette_auth_passwords.utils import hash_password, verify_password

from analysis.store.database import StoreError, utcnow, write_transaction

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing a longer one would only cost the server time


def check_name(name: str) -> str:
    """`name` if it is a valid reviewer name, else StoreError saying what one is."""
    if not NAME.fullmatch(name or ""):
        raise StoreError(f"a reviewer name is 1 to 40 lower-case letters, digits, '.', '-' or '_', "
                         f"starting with a letter or digit: not {name!r}")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise StoreError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StoreError(f"a password has at most {MAX_PASSWORD} characters")
    return password


def _table(db: sqlite_utils.Database):
    """The reviewers table, or None in a database no m009 migration reached (no reviewers)."""
    table = db["reviewers"]
    return table if table.exists() else None


def add_reviewer(db: sqlite_utils.Database, name: str, password: str) -> dict:
    """A new reviewer, without the hash. An existing name is refused: to set a new
    password, remove the reviewer and add them again."""
    check_name(name)
    check_password(password)
    row = {"name": name, "password_hash": hash_password(password), "created_at": utcnow(), "disabled": 0}
    with write_transaction(db):
        if db["reviewers"].count_where("name = ?", [name]):
            raise StoreError(f"reviewer {name} already exists (remove them first to set a new password)")
        db["reviewers"].insert(row)
    return public(row)


def public(row: dict) -> dict:
    return {"name": row["name"], "created_at": row["created_at"], "disabled": bool(row["disabled"])}


def list_reviewers(db: sqlite_utils.Database) -> list[dict]:
    table = _table(db)
    if table is None:
        return []
    return [public(r) for r in db.query("select name, created_at, disabled from reviewers order by name")]


def remove_reviewer(db: sqlite_utils.Database, name: str) -> None:
    """Delete a reviewer. Their verdicts stay in the reviews table, under their name."""
    with write_transaction(db):
        if _table(db) is None or not db["reviewers"].count_where("name = ?", [name]):
            raise StoreError(f"no reviewer {name!r}")
        db["reviewers"].delete(name)


def set_disabled(db: sqlite_utils.Database, name: str, disabled: bool) -> None:
    with write_transaction(db):
        if _table(db) is None or not db["reviewers"].count_where("name = ?", [name]):
            raise StoreError(f"no reviewer {name!r}")
        db["reviewers"].update(name, {"disabled": int(disabled)})


def has_reviewers(db: sqlite_utils.Database) -> bool:
    """Whether anyone can sign in: at least one reviewer who is not disabled."""
    return _table(db) is not None and db["reviewers"].count_where("disabled = 0") > 0


def account_stamp(password_hash: str) -> str:
    """What a sign-in cookie carries to name this account: it changes when the reviewer
    is removed and added again (a new salt), so an old cookie stops working. It is a
    digest of the salted hash, which gives no way to guess the password."""
    return hashlib.sha256(password_hash.encode("ascii")).hexdigest()[:16]


@cache
def _decoy_hash() -> str:
    return hash_password("no reviewer has this password")


def _verified(password: str, password_hash: str) -> bool:
    try:
        return verify_password(password, password_hash)
    except (AssertionError, ValueError):  # a hash in another format: it matches nothing
        return False


def authenticate(db: sqlite_utils.Database, name: str, password: str) -> str | None:
    """The account stamp of the reviewer `name` if `password` is theirs and they are not
    disabled, else None. An unknown name costs the same hashing as a known one, so the
    time taken does not tell which names exist."""
    row = None
    if _table(db) is not None and len(password) <= MAX_PASSWORD:
        row = db.execute("select password_hash, disabled from reviewers where name = ?", [name]).fetchone()
    if row is None:
        _verified(password[:MAX_PASSWORD], _decoy_hash())
        return None
    password_hash, disabled = row
    if not _verified(password, password_hash) or disabled:
        return None
    return account_stamp(password_hash)


def is_active(db: sqlite_utils.Database, name: str, stamp: str) -> bool:
    """Whether the reviewer a sign-in cookie names still exists, is not disabled and is
    the same account (same stamp): checked on every write."""
    if _table(db) is None or not stamp:
        return False
    row = db.execute("select password_hash from reviewers where name = ? and disabled = 0", [name]).fetchone()
    return row is not None and secrets.compare_digest(account_stamp(row[0]), stamp)
