"""The page as captured: /<db>/-/claim/<id>/captured, and the captured document itself,
/<db>/-/page/<id>/captured.

The document is built from the page's stored snapshot (its SHA-256 checked first) and
shown with nothing of it able to run or reach the network, by three layers, each
enough alone against what the others miss:

1. Sanitised (nh3, an allowlist): scripts, styles, event handlers, frames, forms,
   objects, meta refreshes and comments go; a link keeps its text but loses its address
   (a click would load the live site), except a link within the page; an image keeps
   only an address of embedded data. No URL that leads off this Datasette remains.
2. Served with a Content-Security-Policy that loads nothing but embedded images and
   inline styles, runs no script (`sandbox` without allow-scripts), and may be framed
   only by this Datasette: ``default-src 'none'; img-src data:; style-src
   'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self';
   sandbox``. Opened on its own, it is sandboxed all the same.
3. Framed by the claim's page in ``<iframe sandbox>`` (no allow-scripts, no
   allow-same-origin, no allow-top-navigation) with no referrer.

The live page is a separate link marked *live* (rel="noreferrer noopener").
"""

from __future__ import annotations

import sqlite3

import nh3
import sqlite_utils
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from analysis.display import visible
from analysis.extract.charset import decode_body
from analysis.extract.content import media_type
from analysis.extract.sniff import is_binary
from analysis.store import queue as q
from analysis.store.history import snapshot_problem
from analysis.web.queue import claim_path, live_href, stemwatch_database

WRAPPER_ROUTE = r"^/(?P<database>[^/]+)/-/claim/(?P<claim_id>[0-9]{1,18})/captured$"
DOCUMENT_ROUTE = r"^/(?P<database>[^/]+)/-/page/(?P<page_id>[0-9]{1,18})/captured$"

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'self'; sandbox")
DOCUMENT_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",  # frame-ancestors, for browsers without it
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Tags kept for structure; every other tag goes (its text stays) and these lose their content too.
TAGS = (set(nh3.ALLOWED_TAGS) | {"main", "section", "font", "center", "big"}) - {"area", "map"}
DROPPED_WITH_CONTENT = {"script", "style", "template", "iframe", "frame", "frameset", "noscript", "noembed",
                        "noframes", "object", "embed", "applet", "title", "textarea", "select", "button",
                        "svg", "math", "xmp", "plaintext", "canvas", "video", "audio"}
ATTRIBUTES = {
    **{tag: set(attrs) - {"cite"} for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"class", "id", "title", "lang", "dir", "align", "style"},
    "a": {"href", "hreflang", "name"},
    "img": {"src", "alt", "width", "height", "align"},
}
ID_PREFIX = "captured-"
EMBEDDED_IMAGE = ("data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp")
DOCUMENT_STYLE = (
    "body{font:16px/1.5 Georgia,serif;max-width:52rem;margin:0 auto;padding:0 1rem 3rem;color:#222}"
    "img{max-width:100%;height:auto}"
    ".stemwatch-captured{font:13px/1.4 system-ui,sans-serif;background:#fff3cd;border-bottom:1px solid #d6b656;"
    "margin:0 -1rem 1rem;padding:.5rem 1rem}")


def keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: no address off this document survives, no style loads."""
    if attribute == "href":
        # within the page only, ids being prefixed; any other link would load a live page
        return f"#{ID_PREFIX}{value[1:]}" if value.startswith("#") and len(value) > 1 else None
    if attribute == "src":
        return value if value.lower().startswith(EMBEDDED_IMAGE) else None
    if attribute == "id":
        return ID_PREFIX + value  # an id of the page can shadow nothing of this document
    if attribute == "style":
        lowered = value.lower().replace("\\", "")
        return None if ("url(" in lowered or "expression(" in lowered or "@import" in lowered) else value
    return value


def sanitise(html: str) -> str:
    """The page's markup with nothing that runs or loads (layer 1 of the module's three)."""
    return nh3.clean(
        html, tags=TAGS, clean_content_tags=DROPPED_WITH_CONTENT, attributes=ATTRIBUTES,
        attribute_filter=keep_attribute, url_schemes={"data"}, strip_comments=True,
        link_rel="noopener noreferrer")


def captured_document(page: dict, body: bytes) -> str:
    """The whole document served in the frame: a note saying what it is, then the page."""
    ctype = media_type(page.get("content_type"))
    title = visible(page.get("title") or page.get("url") or "")
    note = Markup('<p class="stemwatch-captured">Captured {} from {} (SHA-256 {}). Scripts, styles, frames, forms '
                  'and every external address removed; links do not leave this page.</p>').format(
        page.get("fetched_at") or "?", visible(page.get("url") or ""), page.get("sha256") or "")
    if ctype == "application/pdf" or body[:5] == b"%PDF-" or is_binary(body, ctype):
        content = Markup("<p>Not a web page ({}): its text is on the claim's page.</p>").format(ctype or "binary")
    elif ctype == "text/plain":
        content = Markup("<pre>{}</pre>").format(visible(decode_body(body, page.get("content_type") or "", html=False)[0]))
    else:
        html = decode_body(body, page.get("content_type") or "")[0].replace("\r\n", "\n").replace("\r", "\n")
        # control characters and bidirectional overrides shown, as everywhere stemwatch shows a page
        content = Markup(sanitise(visible(html)))
    return str(Markup('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
                      "<title>Captured: {}</title><style>{}</style></head><body>{}{}</body></html>").format(
        title, Markup(DOCUMENT_STYLE), note, content))


def read_page(conn: sqlite3.Connection, page_id: int) -> dict | None:
    return q.page_snapshot(sqlite_utils.Database(conn), page_id)


async def document_view(datasette, request):
    """The captured document, sanitised, under the strict policy (layers 1 and 2)."""
    db = await stemwatch_database(datasette, request.url_vars["database"])
    if db is None:
        return Response.text("No stemwatch database of that name", status=404, headers=DOCUMENT_HEADERS)
    page = await db.execute_fn(lambda conn: read_page(conn, int(request.url_vars["page_id"])))
    if page is None or page["body"] is None:
        return Response.text("No stored snapshot of this page", status=404, headers=DOCUMENT_HEADERS)
    body, problem = snapshot_problem(page["sha256"], page["compression"], page["body"])
    if problem:
        return Response.text(f"The stored snapshot {problem}: not shown", status=409, headers=DOCUMENT_HEADERS)
    return Response.html(captured_document(page, body), headers=DOCUMENT_HEADERS)


async def wrapper_view(datasette, request):
    """The claim's page as captured, framed (layer 3), with the live address apart."""
    name = request.url_vars["database"]
    claim_id = int(request.url_vars["claim_id"])
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.html("No stemwatch database of that name", status=404)
    claim = await db.execute_fn(lambda conn: q.claim_in_context(sqlite_utils.Database(conn), claim_id))
    if claim is None:
        return Response.html(f"No claim {claim_id} in {escape(name)}", status=404)
    html = await datasette.render_template("stemwatch_captured.html", {
        "database": name, "claim": claim, "site": visible(claim["site_name"]), "title": visible(claim["title"] or ""),
        "url": visible(claim["url"]), "live_url": live_href(claim["url"]), "captured": claim["sha256"] is not None,
        "document_src": f"{datasette.urls.database(name)}/-/page/{claim['page_id']}/captured",
        "claim_href": claim_path(datasette, name, claim_id), "csp": CSP,
    }, request=request)
    return Response.html(html)
