"""The journalist's review queue: /<db>/-/queue.

Promoted claims without a verdict, one row per statement (a sentence, or a list with
all its conditions), most severe and most confident first, narrowed by site, category,
country and "new since crawl N", a page at a time. The queries are in
analysis.store.queue; this module reads the request and renders
templates/stemwatch_queue.html.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import sqlite_utils
from datasette.utils import sqlite_timelimit
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from analysis.detect.taxonomy import Taxonomy, load_taxonomy
from analysis.display import visible
from analysis.store import queue as q
from analysis.web.plugin import STEMWATCH_TABLES

ROUTE = r"^/(?P<database>[^/]+)/-/queue$"
MAX_PAGE = 200


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    return load_taxonomy()


async def stemwatch_database(datasette, name: str):
    """The named database if it is a stemwatch one, else None."""
    try:
        db = datasette.get_database(name)
    except KeyError:
        return None
    return db if STEMWATCH_TABLES <= set(await db.table_names()) else None


def queue_filter(args) -> q.QueueFilter:
    """The filter a query string names; a bad crawl number narrows nothing."""
    since = (args.get("since") or "").strip()
    category = (args.get("category") or "").strip()
    return q.QueueFilter(
        site=(args.get("site") or "").strip(),
        category=category if category in taxonomy().categories else "",
        country=(args.get("country") or "").strip(),
        since_crawl=int(since) if since.isdigit() else None,
    )


def with_filter(path: str, f: q.QueueFilter, **extra) -> str:
    """path?the filter's arguments (and extra ones), for links that keep the filter."""
    args = {**f.query(), **{k: str(v) for k, v in extra.items() if v is not None}}
    return f"{path}?{urlencode(args)}" if args else path


def live_href(url: str | None) -> str | None:
    """A page's address as a link to the live site: only a web address (never javascript:)."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


def claim_path(datasette, database: str, claim_id: int) -> str:
    return f"{datasette.urls.database(database)}/-/claim/{claim_id}"


def statement_html(claims: list[dict]) -> Markup:
    """What a queue row quotes: the statement (a sentence, or a heading) with the words
    of its claims marked, then for a list each item with its words marked."""
    from analysis.detect.text import match_span

    heading = claims[0]["sentence"].partition(" … ")[0]
    in_heading, items = [], {}
    for c in claims:
        head, sep, item = c["sentence"].partition(" … ")
        span = match_span(c["sentence"], c["text"])
        if not sep or (span is not None and span[1] <= len(head)):
            in_heading.append(c["text"])
        else:
            items.setdefault(item, []).append(c["text"])
    quoted = mark_all(heading, in_heading)
    if not items:
        return quoted
    return Markup("{} … {}").format(quoted, Markup(" · ").join(mark_all(i, t) for i, t in items.items()))


def mark_all(sentence: str, texts: list[str]) -> Markup:
    """The sentence with each of these words marked (highlight() marks one)."""
    from analysis.detect.text import match_span

    shown = visible(sentence)
    spans = sorted({s for s in (match_span(shown, visible(t)) for t in texts) if s})
    out, at = [], 0
    for i, j in spans:
        if i < at:  # overlapping matches: the first one marks the words
            continue
        out.append(escape(shown[at:i]))
        out.append(Markup("<mark>{}</mark>").format(shown[i:j]))
        at = j
    out.append(escape(shown[at:]))
    return Markup("").join(out)


def queue_row(datasette, database: str, f: q.QueueFilter, row: dict) -> dict:
    """A statement as its template row: where it links, what it quotes, its categories."""
    cats = taxonomy().categories
    lead, claims = row["leader"], row["claims"]
    categories = []
    for c in sorted(claims, key=lambda c: c["rank"]):
        if c["category"] not in [x["id"] for x in categories]:
            categories.append({"id": c["category"], "name": cats[c["category"]].name if c["category"] in cats
                               else c["category"], "severity": c["severity"]})
    scores = [c["score"] for c in claims if c["score"] is not None]
    return {
        # the statement's first claim on the page: a list opens at its first condition
        "href": with_filter(claim_path(datasette, database, claims[0]["id"]), f),
        "quote": statement_html(claims),
        "claims": len(claims),
        "categories": categories,
        "severity": lead["severity"],
        "score": max(scores) if scores else None,
        "site": visible(lead["site_name"]),
        "site_filter": with_filter(datasette.urls.database(database) + "/-/queue",
                                   q.QueueFilter(lead["site"], f.category, f.country, f.since_crawl)),
        "country": visible(lead["country"] or ""),
        "title": visible(lead["title"] or ""),
        "url": visible(lead["url"]),
    }


def page_size(args) -> int:
    """Datasette's _size argument: statements a page, 1 to MAX_PAGE."""
    size = (args.get("_size") or "").strip()
    return max(1, min(int(size), MAX_PAGE)) if size.isdigit() else q.PAGE_SIZE


def read_queue(conn: sqlite3.Connection, f: q.QueueFilter, after: q.Cursor | None, size: int,
               limit_ms: int) -> dict:
    db = sqlite_utils.Database(conn)
    with sqlite_timelimit(conn, limit_ms):
        leaders = q.queue_leaders(db, f, after, size + 1)
        rows = q.statements(db, leaders[:size])
        left, complete = q.queue_left(db, f)
    return {"rows": rows, "more": len(leaders) > size, "left": left, "complete": complete,
            "choices": q.filter_choices(db), "indexed": q.has_queue_index(db)}


def left_text(left: int, complete: bool) -> str:
    if complete:
        return f"{left:,} statement{'s' if left != 1 else ''} left to review"
    if left >= q.COUNT_CAP:
        return f"more than {q.COUNT_CAP:,} statements left to review"
    return f"at least {left:,} statements left to review"


async def queue_view(datasette, request):
    name = request.url_vars["database"]
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.html("No stemwatch database of that name", status=404)
    f = queue_filter(request.args)
    after = q.Cursor.parse(request.args.get("after"))
    size = page_size(request.args)
    limit_ms = int(datasette.setting("sql_time_limit_ms") or 1000)
    path = datasette.urls.database(name) + "/-/queue"
    try:
        data = await db.execute_fn(lambda conn: read_queue(conn, f, after, size, limit_ms))
    except sqlite3.OperationalError as e:
        if "interrupted" not in str(e):
            raise
        data = None  # the page says the filter took too long
    rows = [queue_row(datasette, name, f, r) for r in data["rows"]] if data else []
    sized = {"_size": size if size != q.PAGE_SIZE else None}
    next_href = (with_filter(path, f, after=data["rows"][-1]["cursor"], **sized)
                 if data and data["more"] and data["rows"] else None)
    html = await datasette.render_template("stemwatch_queue.html", {
        "database": name, "filter": f, "rows": rows, "next_href": next_href,
        "first_href": with_filter(path, f, **sized) if after else None, "queue_path": path,
        "left": left_text(data["left"], data["complete"]) if data else None,
        "timed_out": data is None, "choices": data["choices"] if data else {"countries": [], "crawls": []},
        "indexed": data["indexed"] if data else True, "categories": taxonomy().categories,
    }, request=request)
    return Response.html(html)


def workspace_links(datasette, metadata: dict) -> dict:
    """The instance metadata with each stemwatch database's review queue linked from the
    index page and from the database's own page: the journalist's home."""
    names = list(metadata.get("databases", {}))
    if not names:
        return metadata
    links = Markup(", ").join(
        Markup('<a href="{}">{}</a>').format(datasette.urls.database(n) + "/-/queue", n) for n in names)
    databases = {n: {**meta, "description_html": Markup(
        'Journalists: start at <a href="{}">the review queue</a>, one row per statement to check.'
    ).format(datasette.urls.database(n) + "/-/queue")} for n, meta in metadata["databases"].items()}
    return {**metadata, "databases": databases,
            "description_html": Markup(metadata.get("description_html", ""))
            + Markup(" <strong>Review queue</strong>: {}.").format(links)}
