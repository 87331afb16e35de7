"""Reviewers' verdicts on claims.

A verdict is attached to a claim's identity (`claim_key`), never to a claim
row: rows are rewritten by re-analysis, keys are not. The `reviews` table is
append-only (triggers refuse UPDATE and DELETE); the current verdict is the
latest row, shown by the `claim_verdicts` view. A review screen in Datasette
can write the same table.
"""

from __future__ import annotations

import getpass
import os

import sqlite_utils

from analysis.store.database import StoreError, utcnow, write_transaction

VERDICTS = ("confirmed", "false-alarm", "unsure")
MAX_NOTE = 4000  # characters: a note says why, with a source; the table keeps it forever


def default_reviewer() -> str:
    try:
        return os.environ.get("STEMWATCH_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid
        return "unknown"


def resolve_claim(db: sqlite_utils.Database, ref: str) -> dict:
    """A claim row from a row id (`42`) or a claim key (20 hex digits)."""
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 20:
        row = db.execute("select id, claim_key from claims where id = ?", [int(ref)]).fetchone()
        if row is None:
            raise StoreError(f"no claim with id {ref}")
    else:
        row = db.execute(
            "select id, claim_key from claims where claim_key = ? order by crawl_id desc, id desc limit 1",
            [ref.lower()],
        ).fetchone()
        if row is None:
            raise StoreError(f"no claim with id or key {ref!r}")
    return {"claim_id": row[0], "claim_key": row[1]}


def add_review(db: sqlite_utils.Database, ref: str, verdict: str, note: str | None = None,
               reviewer: str | None = None) -> dict:
    """Record one verdict; earlier ones stay as history."""
    if verdict not in VERDICTS:
        raise StoreError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    if note and len(note) > MAX_NOTE:
        raise StoreError(f"a note holds at most {MAX_NOTE} characters, not {len(note)}")
    claim = resolve_claim(db, ref)
    row = {
        **claim, "verdict": verdict, "note": note or None,
        "reviewer": reviewer or default_reviewer(), "reviewed_at": utcnow(),
    }
    with write_transaction(db):
        row["id"] = db["reviews"].insert(row).last_pk
    return row


def claim_for_review(db: sqlite_utils.Database, ref: str) -> dict | None:
    """What a reviewer reads before a verdict: the claim, its page, its latest verdict."""
    try:
        claim = resolve_claim(db, ref)
    except StoreError:
        return None
    row = db.execute("select c.id, c.claim_key, c.category, c.stance, c.text, c.sentence, c.url, c.why, "
                     "coalesce(s.name, c.site) site from claims c left join sites s on s.domain = c.site "
                     "where c.id = ?", [claim["claim_id"]]).fetchone()
    keys = ("id", "claim_key", "category", "stance", "text", "sentence", "url", "why", "site")
    return {**dict(zip(keys, row)), "verdict": current_verdict(db, claim["claim_key"])}


def review_history(db: sqlite_utils.Database, claim_key: str) -> list[dict]:
    return [dict(r) for r in db.query("select * from reviews where claim_key = ? order by id", [claim_key])]


def current_verdict(db: sqlite_utils.Database, claim_key: str) -> str | None:
    row = db.execute("select verdict from claim_verdicts where claim_key = ?", [claim_key]).fetchone()
    return row[0] if row else None
