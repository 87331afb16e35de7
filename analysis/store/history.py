"""What changed between crawls: new and removed claims, page histories and
snapshot integrity.

The lifecycle itself lives in SQL views (analysis/history_sql.py, where the
identity rule and its limits are written down), so Datasette shows the same
answers as the command line. This module queries them and formats the
result; formatting functions are pure.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import sqlite_utils

from analysis.display import visible
from analysis.store.history_sql import is_observation, observed_order

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?Z?)?$")


@dataclass(frozen=True)
class Since:
    """Where `changes` starts: after a crawl id, from a date, or (neither)
    the latest crawl that looked at each site."""

    crawl_id: int | None = None
    date: str | None = None


def parse_since(text: str | None) -> Since:
    """`12` is a crawl id; `2026-11-01` or `2026-11-01T08:00` a UTC date."""
    if text is None or not text.strip():
        return Since()
    text = text.strip()
    if text.isdigit():
        return Since(crawl_id=int(text))
    if _DATE.match(text):
        return Since(date=text.replace(" ", "T"))
    raise ValueError(f"--since wants a crawl id (e.g. 12) or a UTC date (e.g. 2026-11-01), not {text!r}")


def changes_query(since: Since, site: str | None = None) -> tuple[str, list]:
    """SQL over the claim_changes view for `since` (and one site)."""
    if since.crawl_id is not None:
        where, params = "crawl_id > ?", [since.crawl_id]
    elif since.date is not None:
        where, params = "observed_at >= ?", [since.date]
    else:  # the crawl of each site's latest observation: by capture time, not crawl id
        # (SQLite takes a bare column from the row that holds the max())
        where, params = (
            "(site, crawl_id) in (select site, crawl_id from (select p.site, p.crawl_id, "
            f"max({observed_order('p')}) from pages p where {is_observation('p')} group by p.site))", [])
    if site:
        where, params = f"site = ? and {where}", [site, *params]
    sql = (
        f"select * from claim_changes where {where} "
        "order by site, observed_at, crawl_id, change = 'removed', category, url, claim_key"
    )
    return sql, params


def changes(db: sqlite_utils.Database, since: Since = Since(), site: str | None = None) -> list[dict]:
    sql, params = changes_query(since, site)
    return [dict(r) for r in db.query(sql, params)]


def by_site(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["site"], []).append(row)
    return out


def _day(ts: str | None) -> str:
    """2026-11-25 04:40 UTC from an ISO timestamp."""
    if not ts:
        return "?"
    return f"{ts[:10]} {ts[11:16]} UTC" if len(ts) >= 16 else ts[:10]


def describe_change(row: dict) -> str:
    """One line a journalist can quote: what, where, and the two observations."""
    what = f"{row['category']}/{row['stance']}: \"{_shorten(row['sentence'])}\""
    if row["change"] == "removed":
        when = (f"present on {_day(row['previous_observed_at'])} (crawl {row['prev_crawl_id']}), "
                f"absent on {_day(row['observed_at'])} (crawl {row['crawl_id']}): {row['reason']}")
        mark = "-"
    else:
        when = f"seen on {_day(row['observed_at'])} (crawl {row['crawl_id']})"
        if row["prev_crawl_id"] is not None:
            when += f", not on {_day(row['previous_observed_at'])} (crawl {row['prev_crawl_id']})"
        when += f": {row['reason']}"
        mark = "+"
    notes = []
    if row.get("page_changed") == 0:
        notes.append("page bytes unchanged: the detector, not the site, changed")
    elif row.get("detector_changed"):
        notes.append("read by a different detector version")
    if row.get("verdict"):
        notes.append(f"verdict: {row['verdict']}")
    extra = f" [{'; '.join(notes)}]" if notes else ""
    return f"  {mark} {row['change']:<8} {what}\n      {row['url']}\n      {when}{extra} (claim {row['claim_key']})"


def format_changes(rows: list[dict]) -> str:
    if not rows:
        return "No new or removed claims."
    lines = []
    for site, site_rows in by_site(rows).items():
        counts = {}
        for r in site_rows:
            counts[r["change"]] = counts.get(r["change"], 0) + 1
        summary = ", ".join(f"{n} {change}" for change, n in sorted(counts.items()))
        lines.append(f"{site}: {summary}")
        lines.extend(describe_change(r) for r in site_rows)
    return "\n".join(lines)


def _shorten(text: str | None, width: int = 110) -> str:
    """For a terminal: visible() first, so no cut falls inside an escape sequence."""
    text = " ".join(visible(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- pages and snapshots ------------------------------------------------------
def page_history(db: sqlite_utils.Database, url: str) -> list[dict]:
    """Every fetch of a URL, oldest first (by capture time), with its snapshot hash."""
    return [dict(r) for r in db.query(
        "select * from page_history where url = ? order by fetched_at, crawl_id", [url])]


def snapshot_problem(digest: str, compression: str | None, stored: bytes) -> tuple[bytes | None, str | None]:
    """(body, None) if the stored bytes decode to a body with this hash, else (None, problem)."""
    try:
        body = zlib.decompress(stored) if compression == "zlib" else stored
    except zlib.error as e:
        return None, f"cannot be decompressed ({e})"
    if hashlib.sha256(body).hexdigest() != digest:
        return None, "content does not match its sha256"
    return body, None


def decode_snapshot(digest: str, compression: str | None, stored: bytes) -> bytes | None:
    """The verified body of a snapshot, or None if it was altered."""
    return snapshot_problem(digest, compression, stored)[0]


def verify_snapshots(db: sqlite_utils.Database) -> dict:
    """Hash-check every stored snapshot; list pages pointing at missing ones."""
    bad = []
    checked = 0
    for row in db.execute("select sha256, compression, body from snapshots"):
        checked += 1
        _, problem = snapshot_problem(row[0], row[1], row[2] or b"")
        if problem:
            bad.append({"sha256": row[0], "problem": problem})
    missing = [
        dict(r) for r in db.query(
            "select p.id page_id, p.url, p.sha256 from pages p left join snapshots s on s.sha256 = p.sha256 "
            "where p.sha256 is not null and s.sha256 is null order by p.id")
    ]
    return {"checked": checked, "bad": bad, "missing": missing}
