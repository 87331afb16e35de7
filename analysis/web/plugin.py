"""The stemwatch Datasette plugin: it owns the database's metadata, canned queries and
claim highlighting through Datasette's hooks, so plain ``datasette clinics.db`` shows
the same as ``stemwatch serve``. Registered by the ``datasette`` entry point."""

from __future__ import annotations

import os

import sqlite_utils
from datasette import hookimpl
from markupsafe import Markup, escape

from analysis.detect.text import match_span
from analysis.display import has_hidden, visible
from analysis.web.csvsafe import CsvRewriter
from analysis.web.signin import (
    SIGNIN_PATH, csrf_refusal, login_alias, read_only, signed_in_reviewer, signin_url, signin_view)


STEMWATCH_TABLES = {"claims", "crawls", "pages"}  # a database holding these is a stemwatch one


def highlight(sentence: str, text: str) -> Markup:
    """The sentence with the claim's words wrapped in <mark>; control characters and
    bidirectional overrides shown, not obeyed (analysis.display.visible)."""
    if not sentence:
        return Markup("")
    sentence, text = visible(sentence), visible(text)
    span = match_span(sentence, text)
    if span is None:
        return escape(sentence)
    i, j = span
    return Markup("{}<mark>{}</mark>{}").format(sentence[:i], sentence[i:j], sentence[j:])


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def allowed_hosts() -> frozenset[str]:
    """The names this Datasette answers to: loopback, and STEMWATCH_ALLOWED_HOSTS
    (comma-separated; `stemwatch serve --host` adds its own). A request naming any other
    host is refused: a DNS-rebinding page would otherwise read and write through it."""
    extra = {h.strip().lower() for h in os.environ.get("STEMWATCH_ALLOWED_HOSTS", "").split(",") if h.strip()}
    return LOOPBACK_HOSTS | extra


def host_of(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def write_refusal(datasette, request, form: dict, reviewer: str | None) -> str | None:
    """Why a POST may not write, or None: a read-only Datasette, a form without this
    Datasette's CSRF token (checked with or without cookies), or no signed-in reviewer
    (analysis.web.signin)."""
    if read_only():
        return "this Datasette is served read-only"
    refusal = csrf_refusal(datasette, request, form)
    if refusal is None and reviewer is None:
        return "sign in as a reviewer of this database to record a verdict"
    return refusal


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def checked(scope, receive, send):
            if scope.get("type") != "http":
                await app(scope, receive, send)
                return
            # read-only, it serves what it would show anyone: any name may reach it
            if not read_only():
                headers = dict(scope.get("headers") or [])
                host = host_of(headers.get(b"host", b"").decode("latin-1"))
                if host and host not in allowed_hosts():
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                    await send({"type": "http.response.body",
                                "body": f"Host {host!r} is not served here (STEMWATCH_ALLOWED_HOSTS)".encode()})
                    return
            await app(scope, receive, spreadsheet_safe_csv(datasette, scope, send))
        return checked
    return wrap


def csv_charset(content_type: str, path: str) -> str | None:
    """The charset of a CSV response, or None for any other. Datasette sends its CSV as
    text/csv with _dl=1 and as text/plain (shown in the browser) without; other
    text/plain answers (a refusal, a 405) are not CSV, and do not come from a .csv path."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "text/csv" and not (media == "text/plain" and path.endswith(".csv")):
        return None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


async def serves_stemwatch(datasette) -> bool:
    """Whether this Datasette serves a stemwatch database. Then every CSV it serves is
    neutralised, whichever database it names: a query of _memory can read the stemwatch
    tables of another (--crossdb). A Datasette with none is left as Datasette made it."""
    for name, db in list(datasette.databases.items()):
        if not name.startswith("_") and STEMWATCH_TABLES <= set(await db.table_names()):
            return True
    return False


def spreadsheet_safe_csv(datasette, scope, send):
    """`send`, with the body of a CSV response rewritten as it streams (CsvRewriter):
    no cell of it starts a spreadsheet formula. Any other response, an error among them,
    goes out as it came."""
    rewriter = None

    async def sending(message):
        nonlocal rewriter
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            named = {bytes(k).lower(): bytes(v).decode("latin-1") for k, v in headers}
            charset = csv_charset(named.get(b"content-type", ""), scope.get("path", ""))
            if (charset and message.get("status", 200) == 200
                    and named.get(b"content-encoding", "identity").lower() == "identity"
                    and await serves_stemwatch(datasette)):
                rewriter = CsvRewriter(charset)
                # an apostrophe makes the body longer than any length declared for it
                message = {**message, "headers": [(k, v) for k, v in headers if bytes(k).lower() != b"content-length"]}
        elif message["type"] == "http.response.body" and rewriter is not None:
            body = rewriter.feed(message.get("body", b""))
            if not message.get("more_body", False):
                body += rewriter.close()
            message = {**message, "body": body}
        await send(message)

    return sending


@hookimpl(tryfirst=True)  # before datasette-auth-passwords' routes: /-/login is answered here
def register_routes(datasette):
    from analysis.web import captured, claim_page, queue  # the journalist's workspace
    from analysis.web import charts, whatsnew

    return [
        (r"^/(?P<database>[^/]+)/mark_claim$", review_view),
        (rf"^{SIGNIN_PATH}$", signin_view),
        (r"^/-/login$", login_alias),
        (queue.ROUTE, queue.queue_view), (claim_page.ROUTE, claim_page.claim_view),
        (captured.WRAPPER_ROUTE, captured.wrapper_view), (captured.DOCUMENT_ROUTE, captured.document_view),
        *whatsnew.routes(),
        *charts.routes(),
    ]


async def review_view(datasette, request):
    """The review form (GET) and the verdict it records (POST), through the one
    validated writer, analysis.store.reviews.add_review, under the signed-in reviewer's
    name. Anyone may read the claim; only a signed-in reviewer may record a verdict."""
    from datasette.utils.asgi import Response

    from analysis.store.database import StoreError
    from analysis.store.reviews import MAX_NOTE, VERDICTS, add_review, claim_for_review

    name = request.url_vars["database"]
    try:
        db = datasette.get_database(name)
    except KeyError:
        return Response.html("No such database", status=404)
    params = dict(await request.post_vars()) if request.method == "POST" else dict(request.args)
    reviewer = None if read_only() else await signed_in_reviewer(datasette, request, db)
    if request.method == "POST":
        refusal = write_refusal(datasette, request, params, reviewer)
        if refusal:
            return Response.html(f"<p>Not recorded: {escape(refusal)}</p>", status=403)
    claim_id = (params.get("claim_id") or "").strip()
    message, status = None, 200
    if request.method == "POST":
        def write(conn):
            return add_review(sqlite_utils.Database(conn), claim_id, params.get("verdict") or "",
                              params.get("note"), reviewer)
        try:
            await db.execute_write_fn(write, block=True)
            message = "Verdict recorded."
        except StoreError as e:
            message, status = f"Not recorded: {e}", 400
    claim = None
    if claim_id:
        claim = await db.execute_fn(lambda conn: claim_for_review(sqlite_utils.Database(conn), claim_id))
    html = await datasette.render_template(
        "stemwatch_review.html",
        {"database": name, "claim_id": claim_id, "claim": claim, "verdicts": VERDICTS, "max_note": MAX_NOTE,
         "message": message, "highlighted": highlight(claim["sentence"], claim["text"]) if claim else "",
         "reviewer": reviewer, "read_only": read_only(), "signin_url": signin_url(datasette, request)},
        request=request)
    return Response.html(html, status=status)


@hookimpl
def get_metadata(datasette, key, database, table):
    from analysis.web.face import with_face
    from analysis.web.queue import workspace_links

    names = [name for name in datasette.databases if not name.startswith("_")]
    return with_face(datasette, workspace_links(datasette, instance_metadata(names)))


@hookimpl
def canned_queries(datasette, database, actor):
    async def queries():
        from analysis.web.charts import CHART_QUERIES, SUMMARY_TABLE

        names = set(await datasette.get_database(database).table_names())
        if not STEMWATCH_TABLES <= names:
            return {}
        return {**CANNED_QUERIES, **(CHART_QUERIES if SUMMARY_TABLE in names else {})}
    return queries


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if table == "claims" and column == "claim_key" and isinstance(value, str):
        # The claim's identity links to its page and to the review form, pre-filled with its id.
        # (Datasette renders the primary key column itself, so not there.)
        return Markup('<a href="{page}/-/claim/{id}" title="The claim in its page">in context</a> · '
                      '<a href="{page}/mark_claim?claim_id={id}" title="Mark this claim">review</a> {key}').format(
            id=row["id"], key=value, page=datasette.urls.database(database))
    if column == "claim_id" and table in (None, "claim_changes", "claim_status", "reviews") and isinstance(value, int):
        # Canned queries and the history views: each claim links to its page and the review form.
        return Markup('<a href="{page}/-/claim/{id}" title="The claim in its page">{id}</a>: '
                      '<a href="{page}/mark_claim?claim_id={id}" title="Mark this claim">review</a>').format(
            id=value, page=datasette.urls.database(database))
    if column == "sentence" and isinstance(value, str):
        # Any table, view or query that shows a claim's sentence beside its words.
        try:
            text = row["text"]
        except (KeyError, IndexError):
            return None
        return highlight(value, text)
    if isinstance(value, str) and has_hidden(value):  # any other text: a title, a quote, a URL
        return escape(visible(value))
    return None


CLAIM_COLUMNS = {
    "category": "Claim category id (the categories are defined in the project's patterns/taxonomy.json)",
    "score": "The learned stage's score (0 to 1) for this category on this page: sort by it to review the likeliest first",
    "stance": "promoted: the page makes the claim; negated / cautionary / reported: it denies, warns about or reports it",
    "severity": "high, medium or low: how directly the claim can harm a patient",
    "text": "The words that matched",
    "sentence": "The sentence that holds the claim, matched words highlighted",
    "start": "Character offset of the matched words in the page's extracted text",
    "end": "Character offset where the matched words end",
    "pattern": "Id of the detector pattern that matched",
    "why": "The consumer warning this claim answers",
    "cue": "The words that made the stance something other than promoted",
    "page_kind": "clinic, news, academic, regulator, advocacy or other",
    "claim_key": "Stable identity of the claim across crawls (site, URL, category, normalised sentence)",
    "detector_version": "Version of the detector and pattern files that produced this row",
}

CANNED_QUERIES = {
    "claims_to_review": {
        "title": "Promoted claims to review",
        "description": (
            "Each promoted statement once per site (the latest crawl that has it), with the page it "
            "was first found on, when it was captured, the model's score (most confident first) and "
            "the latest verdict. Filter by category or site."
        ),
        # Driven from each site's latest crawl (one index step per site) instead of testing
        # every claim against its site's latest crawl; the shown row's sentence, words,
        # severity, page and verdict are those of the claim it links to (the first stored).
        "sql": (
            "with latest as (select s.domain as site,\n"
            "                       (select p.crawl_id from pages p where p.site = s.domain\n"
            "                        order by p.fetched_at desc, p.crawl_id desc limit 1) as crawl_id\n"
            "                from sites s),\n"
            "statements as (\n"
            "    select c.site, c.category, min(c.id) as claim_id, max(c.score) as score, min(c.url) as url,\n"
            "           count(*) as pages\n"
            "    from latest l cross join claims c\n"
            "         on c.site = l.site and c.crawl_id = l.crawl_id and c.stance = 'promoted'\n"
            "    left join sites s on s.domain = c.site\n"
            "    where (:category = '' or c.category = :category)\n"
            "      and (:site = '' or s.name like '%' || :site || '%' or c.site = :site)\n"
            "    group by c.site, c.category, lower(c.sentence))\n"
            "select q.claim_id, coalesce(s.name, q.site) as site, q.category, c.severity,\n"
            "       round(q.score, 2) as score, c.sentence, c.text, q.url, q.pages, p.fetched_at as captured_at,\n"
            "       (select r.verdict from reviews r where r.claim_key = c.claim_key order by r.id desc limit 1)\n"
            "         as verdict\n"
            "from statements q join claims c on c.id = q.claim_id join pages p on p.id = c.page_id\n"
            "left join sites s on s.domain = q.site\n"
            "order by c.severity = 'high' desc, q.score desc, site, q.category"
        ),
        "hide_sql": True,
    },
    "promoted_by_site": {
        "title": "Promoted claims per site",
        "description": "How many distinct promoted claims each site makes, by category, in its latest crawl.",
        "sql": (
            "select c.site, s.name, c.category, count(distinct c.claim_key) as claims\n"
            "from claims c left join sites s on s.domain = c.site\n"
            "where c.stance = 'promoted'\n"
            "  and c.crawl_id = (select p.crawl_id from pages p where p.site = c.site\n"
            "                    order by p.fetched_at desc, p.crawl_id desc limit 1)\n"
            "group by c.site, c.category order by c.site, claims desc"
        ),
    },
    "crawl_overview": {
        "title": "Crawls",
        "description": "Each crawl with its pages, failures and claims.",
        "sql": (
            "select id, started_at, finished_at, status, pages, errors, claims, detector_version\n"
            "from crawls order by id desc"
        ),
    },
    "outbound_links": {
        "title": "Who links to whom",
        "description": "Off-site links found on crawled pages, counted by target site.",
        "sql": (
            "select site, target_site, count(*) as links from links where outbound = 1\n"
            "group by site, target_site order by links desc"
        ),
    },
}


def database_metadata() -> dict:
    """Table titles, descriptions, default facets and column notes of a stemwatch database."""
    return DATABASE_METADATA


def instance_metadata(database_names) -> dict:
    """Datasette metadata for the instance and each stemwatch database in it."""
    return {
        "title": "stemwatch",
        "description_html": (
            "Claims flagged on stem-cell clinic web pages. Only <strong>promoted</strong> claims "
            "are evidence of misleading marketing; the other stances show why a mention was not counted."
        ),
        "license": "Apache-2.0",
        "source": "stemwatch",
        "databases": {name: DATABASE_METADATA for name in database_names},
    }


DATABASE_METADATA = {
                "tables": {
                    "claims": {
                        "description": "One row per claim flagged on a page in a crawl.",
                        "facets": ["category", "stance", "site", "severity", "page_kind"],
                        "sort_desc": "id",
                        "columns": CLAIM_COLUMNS,
                    },
                    "pages": {
                        "description": "Every fetched page (or failed fetch) of every crawl.",
                        "facets": ["site", "status", "page_kind", "content_type"],
                        "columns": {
                            "sha256": ("SHA-256 of the body the text was read from, the key of its archived "
                                       "snapshot: the raw response body, or for a rendered page its DOM"),
                            "error": "Why the fetch failed, if it did",
                            "text": "Visible text extracted from the page (after its scripts ran, if rendered)",
                            "rendered": ("1: rendered in headless Chromium; text, sha256 and claims are the DOM's "
                                         "after the page's scripts ran"),
                            "raw_sha256": "For a rendered page: SHA-256 of what the server sent (also a snapshot)",
                            "render_reason": ("Why rendering was asked: crawl (--render js), seed (its render "
                                              "column), auto (little text and a script)"),
                            "render_error": "Rendering was asked and failed: the page is stored as the server sent it",
                            "rendered_record_id": "The WARC conversion record holding the rendered DOM",
                        },
                    },
                    "crawls": {"description": "One row per crawl run, with its statistics, and one per capture day of "
                                         "each imported web archive (settings.imported_from names it)."},
                    "sites": {"description": "The sites crawled, with the metadata from the seed list."},
                    "links": {
                        "description": "Links found on pages; outbound = 1 for off-site links.",
                        "facets": ["outbound", "target_site"],
                    },
                    "snapshots": {"hidden": True},
                    "reviewers": {"hidden": True},  # never served either (analysis.web.signin)
                    "_sqlite_migrations": {"hidden": True},  # the schema's bookkeeping
                    "claim_changes": {
                        "description": (
                            "Claims new, returned or removed between two successful fetches of a page. "
                            "'removed' means present when previous_observed_at was fetched, absent at "
                            "observed_at: never a deletion date. A failed fetch makes no change."
                        ),
                        "facets": ["change", "site", "category", "stance"],
                        "sort_desc": "observed_at",
                    },
                    "claim_status": {
                        "description": "Each claim identity: first and last seen, whether still present, and the latest verdict.",
                        "facets": ["present", "category", "stance", "site", "verdict"],
                    },
                    "claim_verdicts": {"description": "The latest reviewer verdict on each claim."},
                    "reviews": {
                        "description": "Every verdict ever recorded (append-only). Add one with the review link beside a claim.",
                        "facets": ["verdict", "reviewer"],
                    },
                    "page_history": {"description": "Every fetch of every page, with its snapshot hash and whether the body changed."},
                },
}
