"""Queries of the journalist's review queue and of one claim in context.

The queue holds the promoted claims of each site's latest crawl that have no verdict,
one row per statement: claims of one page whose sentence, or whose heading for a list
item, is the same (queue_sql.STATEMENT). A statement is ranked by its best claim, its
*leader* (severity, then score: queue_sql.RANK), and pages of the queue are read by
walking the leaders in that order from a keyset, so a request costs the rows it shows,
however many claims the database holds. Needs m012_queue_indexes to be fast; it gives
the same answers without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlite_utils

from analysis.store.history_sql import latest_crawl, observed_order
from analysis.store.queue_sql import rank, statement

PAGE_SIZE = 50
COUNT_CAP = 1000  # statements: counting every one left would read every claim left
COUNT_SECONDS = 0.2


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; empty fields narrow nothing."""

    site: str = ""  # a site's domain or its name
    category: str = ""
    country: str = ""
    since_crawl: int | None = None  # claims first seen in a later crawl

    def query(self) -> dict[str, str]:
        """As query-string arguments, the empty ones left out."""
        args = {"site": self.site, "category": self.category, "country": self.country,
                "since": "" if self.since_crawl is None else str(self.since_crawl)}
        return {k: v for k, v in args.items() if v}


@dataclass(frozen=True)
class Cursor:
    """Where a page of the queue starts: after this leader (queue order is rank, then
    id descending)."""

    rank: float
    claim_id: int

    def __str__(self) -> str:
        return f"{self.rank!r}:{self.claim_id}"

    @classmethod
    def parse(cls, text: str | None) -> "Cursor | None":
        try:
            r, i = (text or "").split(":")
            return cls(float(r), int(i))
        except ValueError:
            return None


def _member_conditions(alias: str, f: QueueFilter) -> tuple[list[str], list]:
    """Conditions on each claim of a statement: no verdict, the category, new since."""
    where = [f"NOT EXISTS (SELECT 1 FROM reviews r WHERE r.claim_key = {alias}.claim_key)"]
    params: list = []
    if f.category:
        where.append(f"{alias}.category = ?")
        params.append(f.category)
    if f.since_crawl is not None:
        where.append(f"NOT EXISTS (SELECT 1 FROM claims e WHERE e.claim_key = {alias}.claim_key "
                     "AND e.crawl_id <= ?)")
        params.append(f.since_crawl)
    return where, params


SITES_DRIVE = 100  # a filter naming at most this many sites walks their claims, not the whole queue


def _driver(db: sqlite_utils.Database, f: QueueFilter, ordered: bool = True) -> tuple[str, str, list]:
    """FROM clause, WHERE terms and parameters of the shortest walk for this filter: the
    named sites' latest crawls (a site, or a country of few sites; for a count, which
    needs no order, a country of any size), one category's claims in queue order, or
    every promoted claim in queue order. INDEXED BY keeps SQLite on the walk's own
    index (it would rather read a whole category and sort it); without m012 SQLite
    chooses alone."""
    indexed = has_queue_index(db)
    sites: list[str] | None = None
    if f.site:
        sites = [r[0] for r in db.execute("SELECT domain FROM sites WHERE domain = ? OR name = ?", [f.site, f.site])]
    elif f.country:
        found = [r[0] for r in db.execute("SELECT domain FROM sites WHERE country = ? LIMIT ?",
                                          [f.country, -1 if not ordered else SITES_DRIVE + 1])]
        sites = found if len(found) <= SITES_DRIVE or not ordered else None
    if sites is not None:
        marks = ",".join("?" * len(sites)) or "NULL"
        by = " INDEXED BY idx_claims_queue_site" if indexed else ""
        return (f"FROM sites l JOIN claims c{by} ON c.site = l.domain "
                f"AND c.crawl_id = {latest_crawl('l.domain')}",
                f"l.domain IN ({marks})", list(sites))
    where = f"c.crawl_id = {latest_crawl('c.site')}"
    params: list = []
    if f.country:
        where += " AND c.site IN (SELECT domain FROM sites WHERE country = ?)"
        params.append(f.country)
    if f.category:
        by = " INDEXED BY idx_claims_queue_category" if indexed else ""
    else:
        by = " INDEXED BY idx_claims_queue" if indexed else ""
    return f"FROM claims c{by}", where, params


def _leaders_sql(db: sqlite_utils.Database, f: QueueFilter, leaders_only: bool = True) -> tuple[str, list]:
    """FROM/WHERE selecting each statement's leader under the filter (leaders_only=False:
    every claim that makes its statement part of the queue)."""
    source, driven, params = _driver(db, f, ordered=leaders_only)
    where = ["c.stance = 'promoted'", driven]
    mine, mine_params = _member_conditions("c", f)
    theirs, their_params = _member_conditions("o", f)
    where += mine
    params += mine_params
    if not leaders_only:
        return f"{source} WHERE " + " AND ".join(where), params
    # A better-ranked claim of the same statement leads it instead. Looked for among the
    # page's claims (m001's index): SQLite would rather walk the queue's index for them.
    where.append(
        "NOT EXISTS (SELECT 1 FROM claims o INDEXED BY idx_claims_page_id "
        "WHERE o.page_id = c.page_id AND o.stance = 'promoted' "
        f"AND ({rank('o')} < {rank('c')} OR ({rank('o')} = {rank('c')} AND o.id > c.id)) "
        f"AND {statement('o')} = {statement('c')} "
        + "".join(f"AND {w} " for w in theirs) + ")")
    params += their_params
    return f"{source} WHERE " + " AND ".join(where), params


def queue_leaders(db: sqlite_utils.Database, f: QueueFilter, after: Cursor | None = None,
                  limit: int = PAGE_SIZE) -> list[dict]:
    """One page of leaders (claim id, page id, rank), in queue order."""
    sql, params = _leaders_sql(db, f)
    if after is not None:
        # the first term lets SQLite seek in the index, the second skips what came before
        sql += f" AND {rank('c')} >= ? AND ({rank('c')} > ? OR c.id < ?)"
        params += [after.rank, after.rank, after.claim_id]
    sql = f"SELECT c.id, c.page_id, {rank('c')} AS rank {sql} ORDER BY {rank('c')}, c.id DESC LIMIT ?"
    return [dict(r) for r in db.query(sql, [*params, limit])]


def queue_left(db: sqlite_utils.Database, f: QueueFilter, cap: int = COUNT_CAP,
               budget: float = COUNT_SECONDS) -> tuple[int, bool]:
    """(statements left under the filter, whether that is all of them). Counting stops
    at `cap` statements or after `budget` seconds, whichever comes first: a count of
    every claim left would read them all, and "more than 1,000" is as useful."""
    # a statement is in the queue when one of its claims is: count them, not their leaders
    sql, params = _leaders_sql(db, f, leaders_only=False)
    deadline = time.monotonic() + budget
    n = 0
    for _ in db.execute(f"SELECT DISTINCT c.page_id, {statement('c')} {sql} LIMIT ?", [*params, cap + 1]):
        n += 1
        if n > cap or time.monotonic() > deadline:
            return min(n, cap), False
    return n, True


_MEMBER_COLUMNS = (
    "c.id, c.page_id, c.crawl_id, c.site, c.url, c.category, c.severity, c.score, c.text, c.sentence, "
    f"{statement('c')} AS statement, {rank('c')} AS rank, coalesce(s.name, c.site) AS site_name, "
    "s.country, p.title")


def statements(db: sqlite_utils.Database, leaders: list[dict]) -> list[dict]:
    """The queue rows for these leaders: each statement with its claims (every claim of
    it still without a verdict, whatever the filter), in the leaders' order."""
    if not leaders:
        return []
    pages = sorted({r["page_id"] for r in leaders})
    rows = [dict(r) for r in db.query(
        f"SELECT {_MEMBER_COLUMNS} FROM claims c JOIN pages p ON p.id = c.page_id "
        "LEFT JOIN sites s ON s.domain = c.site "
        f"WHERE c.page_id IN ({','.join('?' * len(pages))}) AND c.stance = 'promoted' "
        "AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.claim_key = c.claim_key) "
        "ORDER BY c.start, c.id", pages)]
    by_id = {r["id"]: r for r in rows}
    members: dict[tuple, list[dict]] = {}
    for r in rows:
        members.setdefault((r["page_id"], r["statement"]), []).append(r)
    out = []
    for leader in leaders:
        lead = by_id.get(leader["id"])
        if lead is None:  # reviewed since the leaders were read
            continue
        claims = members[(lead["page_id"], lead["statement"])]
        out.append({"leader": lead, "claims": claims, "cursor": Cursor(leader["rank"], leader["id"])})
    return out


def next_leader(db: sqlite_utils.Database, f: QueueFilter, after: Cursor) -> int | None:
    """The claim id of the statement after `after` in the queue, or None at its end."""
    rows = queue_leaders(db, f, after, limit=1)
    return rows[0]["id"] if rows else None


def queue_position(db: sqlite_utils.Database, claim: dict) -> Cursor:
    """Where the claim's statement stands in the queue: at its best-ranked claim (a claim
    that is not promoted, at its own rank)."""
    row = db.execute(
        f"SELECT {rank('c')}, c.id FROM claims c WHERE c.page_id = ? AND c.stance = 'promoted' "
        f"AND {statement('c')} = ? ORDER BY {rank('c')}, c.id DESC LIMIT 1",
        [claim["page_id"], claim["statement"]]).fetchone()
    if row is None or claim["stance"] != "promoted":
        row = db.execute(f"SELECT {rank()}, id FROM claims WHERE id = ?", [claim["id"]]).fetchone()
    return Cursor(row[0], row[1])


# -- one claim --------------------------------------------------------------------------
def claim_in_context(db: sqlite_utils.Database, claim_id: int) -> dict | None:
    """A claim with its page (title, stored text, capture) and its site."""
    cursor = db.execute(
        "SELECT c.*, p.title, p.text AS page_text, p.fetched_at, p.sha256, p.status, p.final_url, "
        "p.content_type, coalesce(s.name, c.site) AS site_name, s.country, "
        f"{statement('c')} AS statement "
        "FROM claims c JOIN pages p ON p.id = c.page_id LEFT JOIN sites s ON s.domain = c.site "
        "WHERE c.id = ?", [claim_id])
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))


# A page row that observed its page (history_sql's page_observations, outcome ok or gone).
_OBSERVED = ("(p.status IN (404, 410) OR (p.error IS NULL AND coalesce(p.status, 200) < 400 "
             "AND p.detector_version IS NOT NULL))")
_OBSERVED_OK = "(coalesce(p.status, 0) NOT IN (404, 410) AND " + _OBSERVED + ")"


def sightings(db: sqlite_utils.Database, claim_key: str) -> dict | None:
    """One claim's first and last sighting and whether it is still present: claim_status's
    columns and rules (history_sql.py) for one identity, by index lookups (the view
    works out every claim's before it can answer for one)."""
    order = observed_order("p")  # capture time, then crawl id, as claim_status orders them
    seen = db.execute(
        f"SELECT min({order}), max({order}), count(DISTINCT p.crawl_id), min(c.url) "
        "FROM claims c JOIN pages p ON p.id = c.page_id JOIN crawls k ON k.id = p.crawl_id "
        f"WHERE c.claim_key = ? AND {_OBSERVED_OK}", [claim_key]).fetchone()
    if seen is None or seen[0] is None:
        return None
    first_order, last_order, crawls, url = seen

    def observed(where: str, params: list):
        return db.execute(
            "SELECT p.crawl_id, coalesce(p.fetched_at, k.started_at), p.status FROM pages p "
            f"JOIN crawls k ON k.id = p.crawl_id WHERE p.url = ? AND {where} AND {_OBSERVED} "
            f"ORDER BY {order} LIMIT 1", [url, *params]).fetchone()

    first, last = observed(f"{order} = ?", [first_order]), observed(f"{order} = ?", [last_order])
    removed = observed(f"{order} > ?", [last_order])
    out = {"first_seen_crawl": first[0], "first_seen_at": first[1],
           "last_seen_crawl": last[0], "last_seen_at": last[1],
           "crawls_seen": crawls, "present": int(removed is None),
           "removed_in_crawl": None, "removed_observed_at": None, "removed_reason": None}
    if removed is not None:
        out.update(removed_in_crawl=removed[0], removed_observed_at=removed[1],
                   removed_reason=(f"page gone (HTTP {removed[2]})" if removed[2] in (404, 410)
                                   else "no longer on the page"))
    return out


def statement_claims(db: sqlite_utils.Database, claim: dict) -> list[dict]:
    """Every promoted claim of the claim's statement (it among them), with its verdict."""
    return [dict(r) for r in db.query(
        "SELECT c.id, c.claim_key, c.category, c.severity, c.score, c.text, c.sentence, "
        "(SELECT v.verdict FROM reviews v WHERE v.claim_key = c.claim_key ORDER BY v.id DESC LIMIT 1) AS verdict "
        "FROM claims c WHERE c.page_id = ? AND c.stance = 'promoted' "
        f"AND {statement('c')} = ? ORDER BY c.start, c.id", [claim["page_id"], claim["statement"]])]


def page_snapshot(db: sqlite_utils.Database, page_id: int) -> dict | None:
    """A page's row with its stored snapshot (body still compressed, hash unchecked)."""
    cursor = db.execute(
        "SELECT p.id, p.url, p.final_url, p.title, p.content_type, p.fetched_at, p.sha256, p.site, "
        "coalesce(s.name, p.site) AS site_name, n.compression, n.body FROM pages p "
        "LEFT JOIN snapshots n ON n.sha256 = p.sha256 LEFT JOIN sites s ON s.domain = p.site "
        "WHERE p.id = ?", [page_id])
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row else None


def filter_choices(db: sqlite_utils.Database) -> dict:
    """The countries and crawls a journalist can narrow the queue to (small tables)."""
    countries = [r[0] for r in db.execute(
        "SELECT DISTINCT country FROM sites WHERE coalesce(country, '') != '' ORDER BY country")]
    crawls = [dict(r) for r in db.query("SELECT id, started_at FROM crawls ORDER BY id DESC LIMIT 100")]
    return {"countries": countries, "crawls": crawls}


def has_queue_index(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'idx_claims_queue'"
                      ).fetchone() is not None
