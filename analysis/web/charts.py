"""Charts: Vega-Lite specs (static/charts/*.vl.json) drawn in the browser by the Vega
and Vega-Lite builds vendored in static/vendor/ (BSD-3-Clause, see VENDORED.md), with
their data from canned queries of the database as Datasette JSON. Nothing is fetched
from anywhere but this Datasette.

The counts come from claim_counts (migration m013, kept by triggers on claims): claim
rows per crawl, site, category and stance, a few per site and crawl."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"
SPECS = STATIC / "charts"
SUMMARY_TABLE = "claim_counts"

# Each site's latest crawl, one index step per site (pages by site and crawl).
_LATEST = ("latest as (select s.domain as site, (select max(p.crawl_id) from pages p where p.site = s.domain) "
           "as crawl_id from sites s)")

CHART_QUERIES = {
    "chart_promoted_by_category": {
        "title": "Chart data: promoted claims per category, crawl by crawl",
        "description": "Promoted claim rows found by each crawl, per category (from claim_counts).",
        "sql": (
            "select k.id as crawl_id, substr(k.started_at, 1, 10) as started, n.category, sum(n.claims) as claims\n"
            "from claim_counts n join crawls k on k.id = n.crawl_id\n"
            "where n.stance = 'promoted'\n"
            "group by k.id, n.category order by k.id, n.category"
        ),
    },
    "chart_promoted_by_site": {
        "title": "Chart data: promoted claims of the ten busiest sites, crawl by crawl",
        "description": ("The ten sites with the most promoted claim rows in their latest crawl, and their "
                        "promoted claim rows in every crawl of them."),
        "sql": (
            f"with {_LATEST},\n"
            "top as (select l.site, sum(n.claims) as claims from latest l cross join claim_counts n\n"
            "        on n.crawl_id = l.crawl_id and n.site = l.site where n.stance = 'promoted'\n"
            "        group by l.site order by claims desc, l.site limit 10)\n"
            "select coalesce(s.name, t.site) as site, n.crawl_id, substr(k.started_at, 1, 10) as started,\n"
            "       sum(n.claims) as claims\n"
            "from top t join claim_counts n on n.site = t.site and n.stance = 'promoted'\n"
            "join crawls k on k.id = n.crawl_id left join sites s on s.domain = t.site\n"
            "group by t.site, n.crawl_id order by t.claims desc, t.site, n.crawl_id"
        ),
    },
    "chart_share_of_sites": {
        "title": "Chart data: share of sites making each claim",
        "description": ("For each category, the sites whose latest crawl found it promoted, and their share "
                        "of the sites crawled."),
        "sql": (
            f"with {_LATEST},\n"
            "crawled as (select count(*) as n from latest where crawl_id is not null)\n"
            "select n.category, count(distinct l.site) as sites, (select n from crawled) as sites_crawled,\n"
            "       round(1.0 * count(distinct l.site) / (select n from crawled), 4) as share\n"
            "from latest l cross join claim_counts n on n.crawl_id = l.crawl_id and n.site = l.site\n"
            "where n.stance = 'promoted' group by n.category order by share desc, n.category"
        ),
    },
}

CHARTS = [  # (spec file, the canned query it reads)
    ("promoted-by-category", "chart_promoted_by_category"),
    ("promoted-by-site", "chart_promoted_by_site"),
    ("share-of-sites", "chart_share_of_sites"),
]


def routes() -> list[tuple[str, object]]:
    return [
        (r"^/(?P<database>[^/]+)/-/charts$", charts_page),
        (r"^/(?P<database>[^/]+)/-/charts/(?P<chart>[a-z-]+)\.vl\.json$", chart_spec),
    ]


@lru_cache(maxsize=None)
def _spec_text(chart: str) -> str:
    return (SPECS / f"{chart}.vl.json").read_text(encoding="utf-8")


def spec_for(datasette, database: str, chart: str) -> dict | None:
    """The chart's Vega-Lite spec with its data URL in this database."""
    queries = dict(CHARTS)
    if chart not in queries:
        return None
    spec = json.loads(_spec_text(chart))
    spec["data"] = {**spec.get("data", {}),
                    "url": datasette.urls.database(database) + f"/{queries[chart]}.json?_shape=array"}
    return spec


def static_url(datasette, path: str) -> str:
    """A file of this plugin's static folder, under the name Datasette mounted it by
    (the distribution's name when installed, the module's otherwise)."""
    from datasette.plugins import get_plugins

    for plugin in get_plugins():
        if plugin.get("static_path") and Path(plugin["static_path"]).resolve() == STATIC.resolve():
            return datasette.urls.static_plugins(plugin["name"], path)
    return datasette.urls.static_plugins("stemwatch", path)


async def has_counts(db) -> bool:
    return SUMMARY_TABLE in await db.table_names()


async def chart_spec(datasette, request):
    from datasette.utils.asgi import Response

    from analysis.web.whatsnew import stemwatch_database

    name = request.url_vars["database"]
    if await stemwatch_database(datasette, name) is None:
        return Response.text("No stemwatch database of that name", status=404)
    spec = spec_for(datasette, name, request.url_vars["chart"])
    if spec is None:
        return Response.text("No such chart", status=404)
    return Response.json(spec)


async def charts_page(datasette, request):
    from datasette.utils.asgi import Response

    from analysis.web.whatsnew import feed_path, stemwatch_database

    name = request.url_vars["database"]
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.html("No stemwatch database of that name", status=404)
    base = datasette.urls.database(name)
    charts = [{"id": chart, "spec_url": f"{base}/-/charts/{chart}.vl.json", "data_url": f"{base}/{query}",
               "title": CHART_QUERIES[query]["title"].split(": ", 1)[1].capitalize(),
               "description": CHART_QUERIES[query]["description"]} for chart, query in CHARTS]
    html = await datasette.render_template("stemwatch_charts.html", {
        "database": name, "charts": charts, "ready": await has_counts(db),
        "scripts": [static_url(datasette, p) for p in
                    ("vendor/vega-6.4.0.min.js", "vendor/vega-lite-6.4.3.min.js", "stemwatch-charts.js")],
        "feed_url": feed_path(datasette, name), "new_url": f"{base}/-/new",
    }, request=request)
    return Response.html(html)
