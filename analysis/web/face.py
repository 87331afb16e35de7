"""What a journalist sees first: the tables that matter, in the order they are used, with
true notes; the machinery hidden; links to what is new, the charts and the feed.

Datasette orders a database's tables by name (the home page by links and row counts,
five at most) and metadata cannot change that, so templates/index.html and
database.html, copies of Datasette 0.65's with the table loop changed, ask
`stemwatch_tables` for the order. Every other database keeps Datasette's."""

from __future__ import annotations

import copy
import os
from urllib.parse import urlencode

from datasette import hookimpl

# The order a journalist works in: the queue and the claims, then where they come from.
TABLE_ORDER = ["claims", "sites", "pages", "crawls", "reviews", "claim_verdicts", "links"]
VIEW_ORDER = ["claim_status", "claim_changes", "claim_verdicts", "page_history"]
# Schema bookkeeping, stored bodies, capture resources, re-analysis runs and counts kept
# for the charts: none is something to read (FTS shadow tables Datasette hides itself).
HIDDEN_TABLES = ["_sqlite_migrations", "snapshots", "page_resources", "reanalysis_runs", "claim_counts",
                 "sqlite_stat1", "sqlite_stat4"]
HIDDEN_VIEWS = {"page_observations", "page_observation_steps"}  # steps of claim_changes

# Facet counts read every row of the table: past this size a page with five of them takes
# seconds, so the big tables get none by default (one click adds one) and Datasette stops
# suggesting them (each suggestion is another scan).
LARGE_DATABASE_BYTES = 256 * 2**20

# Columns a table page shows when opened from the home or database page (Datasette 0.65
# has no metadata for default columns; ?_col= is its own way to choose them).
DEFAULT_COLUMNS = {
    "claims": ["site", "category", "stance", "severity", "score", "sentence", "text", "url", "crawl_id",
               "claim_key"],
    "pages": ["site", "url", "status", "fetched_at", "title", "page_kind", "crawl_id", "error"],
}

PAGE_COLUMNS = {  # beside the plugin's notes on sha256, text and error
    "crawl_id": "The crawl that fetched the page",
    "site": "The site (registrable domain) the page belongs to",
    "url": "The URL requested",
    "final_url": "The URL after redirects",
    "status": "HTTP status of the response (empty when the fetch failed before one)",
    "content_type": "Content-Type of the response",
    "fetched_at": "When the response was received (UTC)",
    "size": "Size of the response body in bytes",
    "title": "The page's title",
    "depth": "Links followed from the seed to reach the page",
    "referer": "The page that linked to it",
    "page_kind": "clinic, news, academic, regulator, advocacy or other, as the detector read the page",
    "lang": "The language the detector read the page in",
    "detector_version": "Version of the detector that read the page (empty: not analysed)",
    "analysis_error": "Why the detector could not analyse the page, if it could not",
}
SITE_COLUMNS = {
    "domain": "The site's key: its registrable domain (host and port for an IP address)",
    "name": "The name given in the seed list",
    "url": "The seed URL",
    "country": "From the seed list",
    "state": "From the seed list",
    "notes": "From the seed list",
    "extra": "Any other columns of the seed list, as JSON",
    "first_crawled": "When a crawl first started with this site among its seeds (UTC)",
    "last_crawled": "When a crawl last started with this site among its seeds (UTC)",
}
CRAWL_COLUMNS = {
    "started_at": "When the crawl started (UTC)",
    "finished_at": "When it finished (UTC; empty while running or if it was killed)",
    "seeds": "The seed URLs, as JSON",
    "status": "running, finished or interrupted",
    "pages": "Pages recorded, failed fetches included",
    "errors": "Failed fetches",
    "claims": "Claim rows stored when the crawl finished",
    "detector_version": "Version of the detector that read the crawl's pages",
    "warc_dir": "Where the crawl's WARC captures are, relative to the database's folder",
}

FACE = {
    "tables": {
        "claims": {"sort_desc": "id"},
        "pages": {"sort_desc": "id", "columns": PAGE_COLUMNS},
        "sites": {"label_column": "name", "sort": "name", "columns": SITE_COLUMNS},
        # a claim's or page's crawl shows as when it started
        "crawls": {"label_column": "started_at", "sort_desc": "id", "columns": CRAWL_COLUMNS},
        "reviews": {"sort_desc": "id"},
        **{name: {"hidden": True} for name in HIDDEN_TABLES},
    },
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def is_large(datasette, name: str) -> bool:
    try:
        path = datasette.databases[name].path
        return bool(path) and os.path.getsize(path) > LARGE_DATABASE_BYTES
    except (KeyError, OSError):
        return False


def database_face(datasette, name: str, base: dict) -> dict:
    """`base` (the plugin's notes and facets) with this module's order, labels and hidden
    tables; a large database's big tables without default facets."""
    merged = deep_merge(base, FACE)
    if is_large(datasette, name):
        for table in ("claims", "pages", "links", "claim_changes", "claim_status"):
            merged["tables"].get(table, {})["facets"] = []
        # sorted, the whole history is computed before its first row: /-/new is the sorted way
        merged["tables"].get("claim_changes", {}).pop("sort_desc", None)
        claims = merged["tables"]["claims"]
        claims["description"] = (claims.get("description", "") + " Facets are off by default at this size "
                                 "(each reads every row): add one from a column's menu.").strip()
    return merged


def with_face(datasette, metadata: dict) -> dict:
    dbs = metadata.get("databases") or {}
    return {**metadata, "databases": {name: database_face(datasette, name, m) for name, m in dbs.items()}}


# -- templates ------------------------------------------------------------------------
def table_url(datasette, database: str, table: str) -> str:
    url = datasette.urls.table(database, table)
    columns = DEFAULT_COLUMNS.get(table)
    return url + ("?" + urlencode([("_col", c) for c in columns]) if columns else "")


async def is_stemwatch(datasette, database: str) -> bool:
    from analysis.web.plugin import STEMWATCH_TABLES

    try:
        db = datasette.get_database(database)
    except KeyError:
        return False
    return STEMWATCH_TABLES <= set(await db.table_names())


def ordered(names: list[str], order: list[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda n: (rank.get(n, len(order)), n))


async def stemwatch_tables(datasette, database: str, tables: list[dict]) -> list[dict]:
    """The database page's tables in the journalist's order (a stemwatch database), each
    with the URL that opens it on its default columns; others as Datasette gave them."""
    if not await is_stemwatch(datasette, database):
        return [{**t, "url": datasette.urls.table(database, t["name"])} for t in tables]
    by_name = {t["name"]: t for t in tables}
    return [{**by_name[n], "url": table_url(datasette, database, n)}
            for n in ordered(list(by_name), TABLE_ORDER)]


async def stemwatch_views(datasette, database: str, views: list[dict]) -> list[dict]:
    if not await is_stemwatch(datasette, database):
        return views
    by_name = {v["name"]: v for v in views if v["name"] not in HIDDEN_VIEWS}
    return [by_name[n] for n in ordered(list(by_name), VIEW_ORDER)]


async def stemwatch_home(datasette, database: str) -> dict | None:
    """For the home page: a stemwatch database's links, in order (None for another database)."""
    if not await is_stemwatch(datasette, database):
        return None
    db = datasette.get_database(database)
    hidden = set(await db.hidden_table_names())
    names = [n for n in await db.table_names() if n not in hidden]
    base = datasette.urls.database(database)
    links = [{"label": "Promoted claims to review", "url": f"{base}/claims_to_review?category=&site="},
             {"label": "What is new", "url": f"{base}/-/new"},
             {"label": "Charts", "url": f"{base}/-/charts"}]
    links += [{"label": n, "url": table_url(datasette, database, n)} for n in ordered(names, TABLE_ORDER)[:6]]
    return {"links": links, "feed_url": f"{base}/-/new.atom"}


@hookimpl
def extra_template_vars(datasette, database, request):
    async def extra():
        names = [n for n in datasette.databases if not n.startswith("_")]
        feeds = []
        for name in ([database] if database else names):
            if name and await is_stemwatch(datasette, name):
                feeds.append({"database": name, "url": datasette.urls.database(name) + "/-/new.atom"})
        return {
            "stemwatch_feeds": feeds,
            "stemwatch_tables": lambda tables: stemwatch_tables(datasette, database, tables),
            "stemwatch_views": lambda views: stemwatch_views(datasette, database, views),
            "stemwatch_home": lambda name: stemwatch_home(datasette, name),
        }
    return extra


@hookimpl
def menu_links(datasette):
    async def links():
        out = []
        for name in datasette.databases:
            if not name.startswith("_") and await is_stemwatch(datasette, name):
                out.append({"href": datasette.urls.database(name) + "/-/new", "label": f"What is new: {name}"})
        return out
    return links


@hookimpl
def startup(datasette):
    async def facets_for_large_databases():
        # Suggestions scan each column of the table in turn: over a million claims that is
        # seconds per page. A facet asked for reads every row once (about 200 ms at a million
        # claims): given the query's time limit it shows instead of timing out. Only Datasette's
        # defaults are changed (a setting given as the default cannot be told from it), and
        # there is no public setter in Datasette 0.65.
        for name in list(datasette.databases):
            if not name.startswith("_") and is_large(datasette, name) and await is_stemwatch(datasette, name):
                if datasette.setting("suggest_facets") is True:
                    datasette._settings["suggest_facets"] = False
                if datasette.setting("facet_time_limit_ms") == 200:
                    datasette._settings["facet_time_limit_ms"] = datasette.setting("sql_time_limit_ms")
                return
    return facets_for_large_databases
