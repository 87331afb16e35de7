"""Named queries of the store: code outside analysis.store calls these, never SQL.

Small functions over a Store (`store.db` is its sqlite-utils Database); the
schema and its migrations are in database.py, the history views in
history_sql.py.
"""

from __future__ import annotations

from analysis.store.database import Store, StoreError, utcnow, write_transaction
from analysis.store.history_sql import latest_crawl

# A claim (alias c) of its site's latest crawl: "what the site says now". Latest by
# capture time, not crawl id: an archive imported today holds the past.
LATEST_CRAWL = f"c.crawl_id = {latest_crawl('c.site')}"


# -- crawls ------------------------------------------------------------------------
def crawl_status(store: Store, crawl_id: int) -> str | None:
    row = store.db.execute("select status from crawls where id = ?", [crawl_id]).fetchone()
    return row[0] if row else None


def set_crawl_status(store: Store, crawl_id: int, status: str) -> None:
    """A crawl running again is no longer finished; any other status leaves finished_at."""
    changes = {"status": status, **({"finished_at": None} if status == "running" else {})}
    with write_transaction(store.db):
        store.db["crawls"].update(crawl_id, changes)


def resume_state(store: Store, crawl_id: int, sites: set[str]) -> tuple[list[tuple[str, str]], list[dict]]:
    """What a resumed crawl already has: stored (url, site) pairs, and the
    frontier: same-site link targets of stored pages not stored themselves."""
    stored = [(r["url"], r["site"]) for r in store.db.query(
        "select url, site from pages where crawl_id = ?", [crawl_id])]
    if not sites:
        return stored, []
    marks = ",".join("?" for _ in sites)
    frontier = [dict(r) for r in store.db.query(
        f"""select l.target url, l.target_site site, min(p.depth) + 1 depth, min(l.source) referer
            from links l join pages p on p.id = l.page_id
            where l.crawl_id = ? and l.target_site in ({marks})
              and not exists (select 1 from pages q where q.crawl_id = l.crawl_id and q.url = l.target)
            group by l.target order by depth, min(l.rowid)""",
        [crawl_id, *sorted(sites)])]
    return stored, frontier


def stored_urls(store: Store, crawl_id: int) -> set[str]:
    """URLs of the pages a crawl has stored."""
    return {r[0] for r in store.db.execute("select url from pages where crawl_id = ?", [crawl_id])}


def per_site_counts(store: Store, crawl_id: int) -> list[dict]:
    """Per site of a crawl: pages, failed pages and claim rows."""
    return [dict(r) for r in store.db.query(
        "select site, count(*) pages, sum(error is not null) errors, "
        "(select count(*) from claims c where c.crawl_id = p.crawl_id and c.site = p.site) claims "
        "from pages p where crawl_id = ? group by site", [crawl_id])]


# -- claims and reviews ---------------------------------------------------------------
def claim_summary(store: Store, claim_id: int) -> dict | None:
    row = store.db.execute("select category, stance, sentence, url from claims where id = ?", [claim_id]).fetchone()
    return dict(zip(("category", "stance", "sentence", "url"), row)) if row else None


def detected_verdicts(store: Store) -> dict[str, str]:
    """claim_key -> current verdict, for reviewed claims some stored page still has."""
    return dict(store.db.execute(
        "select v.claim_key, v.verdict from claim_verdicts v "
        "where exists (select 1 from claims c where c.claim_key = v.claim_key)").fetchall())


def resolve_site(store: Store, text: str) -> str:
    """A site's key from its key, its name (any case) or a URL on it."""
    from analysis.store.sites import site_key

    value = text.strip()
    rows = store.db.execute(
        "select domain from sites where domain = ? or lower(name) = lower(?)", [value, value]).fetchall()
    if not rows and ("/" in value or "." in value):
        try:
            key = site_key(value if "//" in value else "http://" + value)
        except ValueError:
            key = None
        if key:
            rows = store.db.execute("select domain from sites where domain = ?", [key]).fetchall()
    if not rows:
        known = [r[0] for r in store.db.execute("select domain from sites order by domain limit 8")]
        hint = f"; known sites: {', '.join(known)}" + ("..." if len(known) == 8 else "") if known else ""
        raise StoreError(f"no site {text!r} in {store.path}{hint}")
    return rows[0][0]


def select_claims(store: Store, *, site=None, claim_ids=(), category=None, stance="promoted", crawl_id=None):
    """The claims to export; by default the promoted ones of each site's latest crawl."""
    where, params = ["p.sha256 is not null"], []
    if claim_ids:
        where.append(f"c.id in ({','.join('?' * len(claim_ids))})")
        params += list(claim_ids)
    else:
        if crawl_id is None:
            where.append(LATEST_CRAWL)
        else:
            where.append("c.crawl_id = ?")
            params.append(crawl_id)
        if stance:
            where.append("c.stance = ?")
            params.append(stance)
    if site:
        where.append("(c.site = ? or s.name = ?)")
        params += [site, site]
    if category:
        where.append("c.category = ?")
        params.append(category)
    sql = (
        "select c.*, p.fetched_at, p.status as http_status, p.sha256 as page_sha256, p.headers, "
        "s.name as site_name from claims c join pages p on p.id = c.page_id "
        "left join sites s on s.domain = c.site where " + " and ".join(where) + " order by c.site, c.url, c.id"
    )
    return [dict(r) for r in store.db.query(sql, params)]


# -- re-analysis runs and integrity ---------------------------------------------------
def start_reanalysis_run(store: Store, version: str, crawl_id: int | None, workers: int) -> int:
    return store.db["reanalysis_runs"].insert(
        {"started_at": utcnow(), "detector_version": version, "crawl_id": crawl_id,
         "workers": workers, "pages": 0, "claims": 0, "status": "running"}).last_pk


def finish_reanalysis_run(store: Store, run_id: int, **counts) -> None:
    store.db["reanalysis_runs"].update(run_id, {"finished_at": utcnow(), **counts})


def integrity_check(store: Store) -> list[str]:
    """SQLite's own check: ["ok"] for a sound file."""
    return [r[0] for r in store.db.execute("PRAGMA integrity_check")]
