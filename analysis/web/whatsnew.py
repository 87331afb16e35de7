"""What is new: claims new and removed crawl by crawl, as pages and an Atom feed.

Both read the claim_changes view (analysis/store/history_sql.py has its rules), one
crawl at a time: since m013 a filter on the crawl reaches the pages table, so a crawl
of a thousand sites takes a few dozen milliseconds however many crawls came before.
A crawl compares each page with that page's previous observation, which for a site
crawled on a rolling schedule is the site's previous crawl.
"""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import groupby

from lxml import etree
from markupsafe import Markup

ATOM = "http://www.w3.org/2005/Atom"
SITES_PER_PAGE = 100  # of one crawl; the rest on the next page
CRAWLS_PER_SITE = 20  # a site's page shows its latest crawls
FEED_ENTRIES = 100  # whole crawls are read until at least this many new claims
FEED_CRAWLS = 20  # and no further back than this
NEW = ("new", "returned")


def routes() -> list[tuple[str, object]]:
    return [
        (r"^/(?P<database>[^/]+)/-/new$", new_page),
        (r"^/(?P<database>[^/]+)/-/new\.atom$", new_feed),
    ]


def feed_path(datasette, database: str, site: str | None = None) -> str:
    from urllib.parse import urlencode

    path = datasette.urls.database(database) + "/-/new.atom"
    return path + ("?" + urlencode({"site": site}) if site else "")


# -- queries -------------------------------------------------------------------------
async def resolve_site(db, text: str) -> dict | None:
    """The site a visitor named: its domain, its name, or a URL on it."""
    from analysis.store.sites import site_key

    text = text.strip()
    candidates = [text, text.lower()]
    if "://" in text:
        candidates.append(site_key(text))
    for value in candidates:
        rows = (await db.execute("select domain, name from sites where domain = ? or name = ? limit 1",
                                 [value, value])).rows
        if rows:
            return {"domain": rows[0][0], "name": rows[0][1] or rows[0][0]}
    return None


async def crawl_ids(db, site: str | None, before: int | None, limit: int) -> list[int]:
    """Crawls that fetched something (of the site), newest first, below `before`."""
    where, params = ["crawl_id is not null"], []
    if site:
        where.append("site = ?")
        params.append(site)
    if before is not None:
        where.append("crawl_id <= ?")
        params.append(before)
    # one index step per crawl (pages by crawl, or by site and crawl) instead of a scan
    sql = (f"with recursive c(id) as (select max(crawl_id) from pages where {' and '.join(where)} "
           f"union all select (select max(crawl_id) from pages where {' and '.join(where)} and crawl_id < c.id) "
           f"from c where c.id is not null) select id from c where id is not null limit {int(limit)}")
    return [r[0] for r in (await db.execute(sql, params * 2)).rows]


async def crawl_changes(db, crawl_id: int, site: str | None, stance: str | None) -> list[dict]:
    """The claim_changes rows of one crawl (one site), in the order the pages group them."""
    where, params = ["crawl_id = ?"], [crawl_id]
    if site:
        where.append("site = ?")
        params.append(site)
    if stance:
        where.append("stance = ?")
        params.append(stance)
    sql = (f"select * from claim_changes where {' and '.join(where)} "
           "order by site, change = 'removed', category, url, claim_key")
    return [dict(r) for r in (await db.execute(sql, params)).rows]


async def crawl_info(db, crawl_ids_: list[int]) -> dict[int, dict]:
    if not crawl_ids_:
        return {}
    marks = ",".join("?" * len(crawl_ids_))
    rows = (await db.execute(f"select id, started_at, finished_at, status from crawls where id in ({marks})",
                             crawl_ids_)).rows
    return {r[0]: dict(r) for r in rows}


async def site_names(db, domains: set[str]) -> dict[str, str]:
    if not domains:
        return {}
    names = {}
    domains_ = sorted(domains)
    for i in range(0, len(domains_), 500):  # under SQLite's limit on bound parameters
        chunk = domains_[i:i + 500]
        rows = (await db.execute(f"select domain, name from sites where domain in ({','.join('?' * len(chunk))})",
                                 chunk)).rows
        names.update({r[0]: r[1] for r in rows if r[1]})
    return names


# -- grouping, for the template ---------------------------------------------------------
def group_rows(rows: list[dict], names: dict[str, str]) -> list[dict]:
    """One entry per site: its new, returned and removed claims, each list by category."""
    sites = []
    for site, site_rows in groupby(rows, key=lambda r: r["site"]):
        site_rows = list(site_rows)
        sections = []
        for label, changes in (("New", ("new",)), ("Back on the page", ("returned",)), ("Removed", ("removed",))):
            chosen = [r for r in site_rows if r["change"] in changes]
            if chosen:
                by_category = [(cat, list(rs)) for cat, rs in groupby(sorted(chosen, key=lambda r: r["category"]),
                                                                     key=lambda r: r["category"])]
                sections.append({"label": label, "count": len(chosen), "categories": by_category})
        previous = sorted({(r["prev_crawl_id"], r["previous_observed_at"]) for r in site_rows
                           if r["prev_crawl_id"] is not None})
        sites.append({"site": site, "name": names.get(site) or site, "sections": sections,
                      "previous": previous[-1] if previous else None,
                      "new": sum(r["change"] in NEW for r in site_rows),
                      "removed": sum(r["change"] == "removed" for r in site_rows)})
    return sites


def when(ts: str | None) -> str:
    """2026-11-25 04:40 UTC, as `stemwatch changes` prints it."""
    from analysis.store.history import _day

    return _day(ts)


# -- the page ---------------------------------------------------------------------------
async def new_page(datasette, request):
    from datasette.utils.asgi import Response

    from analysis.web.plugin import highlight

    name = request.url_vars["database"]
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.html("No stemwatch database of that name", status=404)
    stance = None if request.args.get("stance") == "all" else "promoted"
    site_arg = (request.args.get("site") or "").strip()
    site = await resolve_site(db, site_arg) if site_arg else None
    if site_arg and site is None:
        return Response.html(await datasette.render_template(
            "stemwatch_new.html", {"database": name, "missing_site": site_arg, "crawls": [], "stance": stance},
            request=request), status=404)
    before = _int(request.args.get("crawl"))
    page = max(1, _int(request.args.get("page")) or 1)
    domain = site["domain"] if site else None
    wanted = CRAWLS_PER_SITE if site else 2  # one crawl, and where the next page starts
    ids = await crawl_ids(db, domain, before, wanted)
    shown = ids if site else ids[:1]
    info = await crawl_info(db, shown)
    crawls = []
    for crawl_id in shown:
        rows = await crawl_changes(db, crawl_id, domain, stance)
        names = await site_names(db, {r["site"] for r in rows})
        sites = group_rows(rows, names)
        more = False
        if not site:
            more = len(sites) > page * SITES_PER_PAGE
            sites = sites[(page - 1) * SITES_PER_PAGE: page * SITES_PER_PAGE]
        crawls.append({"id": crawl_id, **info.get(crawl_id, {}), "sites": sites, "more": more,
                       "new": sum(s["new"] for s in sites), "removed": sum(s["removed"] for s in sites)})
    earlier = ids[1] if not site and len(ids) > 1 else None
    context = {
        "database": name, "site": site, "crawls": crawls, "stance": stance, "page": page, "earlier": earlier,
        "feed_url": feed_path(datasette, name, domain), "highlight": highlight, "when": when,
        "charts_url": datasette.urls.database(name) + "/-/charts",
        "new_url": datasette.urls.database(name) + "/-/new",
    }
    html = await datasette.render_template("stemwatch_new.html", context, request=request)
    return Response.html(html)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


async def stemwatch_database(datasette, name: str):
    from analysis.web.plugin import STEMWATCH_TABLES

    try:
        db = datasette.get_database(name)
    except KeyError:
        return None
    return db if STEMWATCH_TABLES <= set(await db.table_names()) else None


# -- the feed ---------------------------------------------------------------------------
async def feed_rows(db, site: str | None) -> list[dict]:
    """New promoted claims of the latest crawls (whole crawls, newest first), one per claim
    identity: its latest arrival."""
    rows: list[dict] = []
    for crawl_id in await crawl_ids(db, site, None, FEED_CRAWLS):
        rows.extend(r for r in await crawl_changes(db, crawl_id, site, "promoted") if r["change"] in NEW)
        if len(rows) >= FEED_ENTRIES:
            break
    latest: dict[str, dict] = {}
    for row in rows:  # newest crawl first: the first row of a key is its latest arrival
        latest.setdefault(row["claim_key"], row)
    return sorted(latest.values(), key=lambda r: (r["observed_at"] or "", r["claim_id"]), reverse=True)


def entry_id(claim_key: str) -> str:
    """The same claim (site, page, category, sentence) has the same id in every feed and
    every database: a reader shows a claim that comes back as the same entry, updated."""
    return f"tag:stemwatch,2025:claim/{claim_key}"


def atom_time(ts: str | None) -> str:
    """RFC 3339, as Atom wants: stored times are UTC ISO 8601, some without seconds."""
    if not ts:
        return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    text = ts.replace(" ", "T").rstrip("Z")
    if len(text) == 10:
        text += "T00:00:00"
    elif len(text) == 16:
        text += ":00"
    return text[:19] + "Z"


def build_feed(rows: list[dict], *, title: str, feed_id: str, self_url: str, page_url: str,
               names: dict[str, str], link_for) -> bytes:
    from analysis.display import visible
    from analysis.web.plugin import highlight

    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    etree.SubElement(feed, f"{{{ATOM}}}id").text = feed_id
    etree.SubElement(feed, f"{{{ATOM}}}title").text = title
    updated = max((atom_time(r["observed_at"]) for r in rows), default=atom_time(None))
    etree.SubElement(feed, f"{{{ATOM}}}updated").text = updated
    author = etree.SubElement(feed, f"{{{ATOM}}}author")
    etree.SubElement(author, f"{{{ATOM}}}name").text = "stemwatch"
    etree.SubElement(feed, f"{{{ATOM}}}link", rel="self", type="application/atom+xml", href=self_url)
    etree.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=page_url)
    etree.SubElement(feed, f"{{{ATOM}}}generator").text = "stemwatch"
    for row in rows:
        site = names.get(row["site"]) or row["site"]
        entry = etree.SubElement(feed, f"{{{ATOM}}}entry")
        etree.SubElement(entry, f"{{{ATOM}}}id").text = entry_id(row["claim_key"])
        sentence = " ".join(visible(row["sentence"] or "").split())
        short = sentence if len(sentence) <= 120 else sentence[:119] + "…"
        etree.SubElement(entry, f"{{{ATOM}}}title").text = f"{site}: {row['category']}: {short}"
        etree.SubElement(entry, f"{{{ATOM}}}updated").text = atom_time(row["observed_at"])
        etree.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=link_for(row))
        etree.SubElement(entry, f"{{{ATOM}}}link", rel="related", href=visible(row["url"] or ""))
        etree.SubElement(entry, f"{{{ATOM}}}category", term=row["category"])
        seen = f"seen on {when(row['observed_at'])} (crawl {row['crawl_id']})"
        if row["prev_crawl_id"] is not None:
            seen += f", not on {when(row['previous_observed_at'])} (crawl {row['prev_crawl_id']})"
        content = Markup("<p>{}</p><p>{} &middot; {}: {}</p><p>{}</p>").format(
            highlight(row["sentence"] or "", row["text"] or ""), site, row["change"], row["reason"], seen) + \
            Markup("<p>{}</p>").format(visible(row["url"] or ""))
        etree.SubElement(entry, f"{{{ATOM}}}content", type="html").text = str(content)
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)


async def new_feed(datasette, request):
    from datasette.utils.asgi import Response

    name = request.url_vars["database"]
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.text("No stemwatch database of that name", status=404)
    site_arg = (request.args.get("site") or "").strip()
    site = await resolve_site(db, site_arg) if site_arg else None
    if site_arg and site is None:
        return Response.text(f"No site {site_arg!r} in this database", status=404)
    domain = site["domain"] if site else None
    rows = await feed_rows(db, domain)
    names = await site_names(db, {r["site"] for r in rows})
    page = datasette.urls.database(name) + "/-/new" + (f"?site={domain}" if domain else "")
    body = build_feed(
        rows, title=f"New promoted claims: {site['name'] if site else name}",
        feed_id=f"tag:stemwatch,2025:feed/{name}" + (f"/{domain}" if domain else ""),
        self_url=datasette.absolute_url(request, feed_path(datasette, name, domain)),
        page_url=datasette.absolute_url(request, page), names=names,
        link_for=lambda r: datasette.absolute_url(request, datasette.urls.row(name, "claims", str(r["claim_id"]))))
    return Response(body, content_type="application/atom+xml; charset=utf-8")
