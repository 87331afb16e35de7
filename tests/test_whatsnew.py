"""What is new, the feed, the charts and the face of the database, in a real Datasette
process over HTTP (plain `datasette FILE`), with one look through Chromium; and the
m013 views and queue, row for row the same as before."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from lxml import etree, html as lxml_html

from analysis.models import Claim, PageAnalysis
from analysis.store.database import MIGRATIONS, Store, claim_key
from analysis.web.whatsnew import entry_id
from conftest import REPO, free_port, wait_for_http

ATOM = "{http://www.w3.org/2005/Atom}"
ALPHA, BETA = "alpha.example", "beta.example"
DAY1, DAY8 = "2026-11-01T10:00:00Z", "2026-11-08T10:00:00Z"


def _claim(category: str, sentence: str, words: str, stance: str = "promoted", score: float = 0.9) -> Claim:
    start = sentence.index(words)
    return Claim(category, stance, words, sentence, start, start + len(words), f"{category}-p", "high",
                 "why", "" if stance == "promoted" else "reports", score)


FDA = _claim("regulatory-misrepresentation", "Our stem cell therapy is FDA approved.", "FDA approved")
CURE = _claim("disease-cure", "Our stem cells reverse autism in weeks.", "reverse autism")
GUARANTEE = _claim("miracle-guarantee", "Results guaranteed or your money back.", "Results guaranteed")
LIVE = _claim("live-cells-in-processed-product", "Our amniotic fluid holds live stem cells.", "live stem cells")
CARTILAGE = _claim("cartilage-regrowth", "Regrow knee cartilage without surgery.", "Regrow knee cartilage")
REJECTION = _claim("rejection-free", "Donor cells carry no risk of rejection.", "no risk of rejection")
NEWS = _claim("disease-cure", "Reports say some clinics claim to cure autism.", "cure autism", stance="reported",
              score=None)

# path -> claims (HTTP 200) or an HTTP status (a failed fetch), per site, per crawl
CRAWL1 = {ALPHA: {"/": [FDA, CURE], "/b": [GUARANTEE]}, BETA: {"/": [CARTILAGE, NEWS]}}
CRAWL2 = {ALPHA: {"/": [CURE, LIVE], "/b": 500}, BETA: {"/": [CARTILAGE, REJECTION]}}


def crawl(store: Store, pages: dict, on: str) -> int:
    crawl_id = store.start_crawl([{"url": "https://www.alpha.example/", "site": ALPHA, "name": "Alpha Clinic"},
                                  {"url": "https://beta.example/", "site": BETA, "name": "Beta Cells"}])
    store.db.execute("update crawls set started_at = ? where id = ?", [on, crawl_id])
    for site, paths in pages.items():
        for path, spec in paths.items():
            row = {"crawl_id": crawl_id, "site": site, "url": f"https://{site}{path}", "fetched_at": on}
            if isinstance(spec, int):
                store.add_pages([{**row, "status": spec, "error": f"HTTP {spec}"}])
                continue
            text = " ".join(c.sentence for c in spec)
            [page] = store.add_pages([{**row, "status": 200, "text": text, "body": text.encode()}])
            store.add_analyses([(page, PageAnalysis(page_kind="clinic", claims=list(spec), detector_version="t"))])
    store.finish_crawl(crawl_id, "finished", detector_version="t")
    return crawl_id


def key(site: str, path: str, c: Claim) -> str:
    return claim_key(site, f"https://{site}{path}", c.category, c.sentence)


def build(path: Path, *, stop_before: str | None = None) -> None:
    store = Store(path, migrate=False)
    MIGRATIONS.apply(store.db, stop_before=stop_before)
    crawl(store, CRAWL1, DAY1)
    crawl(store, CRAWL2, DAY8)
    store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("whatsnew") / "whatsnew.db"
    build(path)
    port = free_port()
    datasette = str(Path(sys.executable).with_name("datasette"))
    proc = subprocess.Popen([datasette, str(path), "--port", str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/-/versions.json", proc=proc)
        yield f"http://127.0.0.1:{port}", path.stem, path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode("utf-8")


def changes_on_page(page: str) -> dict[str, set[str]]:
    """claim key -> the change classes shown for it."""
    doc = lxml_html.fromstring(page)
    out: dict[str, set[str]] = {}
    for div in doc.xpath('//div[@data-claim-key]'):
        out.setdefault(div.get("data-claim-key"), set()).update(div.get("class").split()[1:])
    return out


# -- what is new ----------------------------------------------------------------------
def test_what_is_new_shows_exactly_the_new_and_removed_claims_of_the_latest_crawl(served):
    base, name, _ = served
    status, _, page = get(f"{base}/{name}/-/new")
    assert status == 200
    assert changes_on_page(page) == {
        key(ALPHA, "/", LIVE): {"new"}, key(ALPHA, "/", FDA): {"removed"}, key(BETA, "/", REJECTION): {"new"}}
    # the failed fetch of /b removed nothing; dates say when each was seen and not seen
    assert key(ALPHA, "/b", GUARANTEE) not in page
    assert "present on 2026-11-01 10:00 UTC (crawl 1), absent on 2026-11-08 10:00 UTC (crawl 2)" in page
    assert "seen on 2026-11-08 10:00 UTC (crawl 2), not on 2026-11-01 10:00 UTC (crawl 1)" in page
    assert "Alpha Clinic" in page and "Beta Cells" in page  # names, not only hosts
    assert "<mark>live stem cells</mark>" in page
    # every stance: the news report gone from beta's page shows too
    status, _, page = get(f"{base}/{name}/-/new?stance=all")
    assert changes_on_page(page)[key(BETA, "/", NEWS)] == {"removed"}
    # the crawl before, where every claim was first seen
    status, _, page = get(f"{base}/{name}/-/new?crawl=1")
    assert set(changes_on_page(page)) == {key(ALPHA, "/", FDA), key(ALPHA, "/", CURE),
                                          key(ALPHA, "/b", GUARANTEE), key(BETA, "/", CARTILAGE)}
    assert 'href="?crawl=1"' in get(f"{base}/{name}/-/new")[2]  # linked as the earlier crawl


def test_a_site_page_shows_each_crawl_of_that_site_only(served):
    base, name, _ = served
    status, _, page = get(f"{base}/{name}/-/new?site=" + urllib.parse.quote("Alpha Clinic"))
    assert status == 200
    shown = changes_on_page(page)
    assert shown == {key(ALPHA, "/", LIVE): {"new"}, key(ALPHA, "/", FDA): {"new", "removed"},
                     key(ALPHA, "/", CURE): {"new"}, key(ALPHA, "/b", GUARANTEE): {"new"}}
    assert 'id="crawl-2"' in page and 'id="crawl-1"' in page
    assert page.index('id="crawl-2"') < page.index('id="crawl-1"')  # newest first
    assert get(f"{base}/{name}/-/new?site={BETA}")[0] == 200  # by domain too
    assert get(f"{base}/{name}/-/new?site=nowhere.example")[0] == 404


# -- the feed ------------------------------------------------------------------------
def feed(url: str) -> etree._Element:
    status, ctype, body = get(url)
    assert status == 200 and ctype.startswith("application/atom+xml")
    root = etree.fromstring(body.encode("utf-8"))
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}").text
    return root


def test_the_feed_has_one_entry_per_new_promoted_claim_with_stable_ids(served):
    base, name, path = served
    root = feed(f"{base}/{name}/-/new.atom")
    entries = root.findall(f"{ATOM}entry")
    expected = {key(ALPHA, "/", LIVE), key(BETA, "/", REJECTION), key(ALPHA, "/", FDA), key(ALPHA, "/", CURE),
                key(ALPHA, "/b", GUARANTEE), key(BETA, "/", CARTILAGE)}
    ids = [e.find(f"{ATOM}id").text for e in entries]
    assert sorted(ids) == sorted(entry_id(k) for k in expected)  # once each; the reported claim is not one
    for entry in entries:
        assert entry.find(f"{ATOM}title").text and entry.find(f"{ATOM}updated").text.endswith("Z")
        assert entry.find(f"{ATOM}link[@rel='alternate']").get("href").startswith(base + f"/{name}/claims/")
    assert entries[0].find(f"{ATOM}updated").text == "2026-11-08T10:00:00Z"  # newest first
    # the same claims get the same ids on the next read, and in the site's own feed
    assert [e.find(f"{ATOM}id").text for e in feed(f"{base}/{name}/-/new.atom").findall(f"{ATOM}entry")] == ids
    alpha = feed(f"{base}/{name}/-/new.atom?site={ALPHA}")
    assert {e.find(f"{ATOM}id").text for e in alpha.findall(f"{ATOM}entry")} == {
        entry_id(key(ALPHA, "/", c)) for c in (LIVE, FDA, CURE)} | {entry_id(key(ALPHA, "/b", GUARANTEE))}


@pytest.mark.parametrize("page", ["/", "/{name}"])
def test_the_feed_is_linked_from_the_index_and_the_database_page(served, page):
    base, name, _ = served
    status, _, body = get(base + page.format(name=name))
    doc = lxml_html.fromstring(body)
    [link] = doc.xpath('//head/link[@rel="alternate"][@type="application/atom+xml"]')
    assert link.get("href") == f"/{name}/-/new.atom"
    assert doc.xpath(f'//body//a[@href="/{name}/-/new.atom"]')  # visibly too
    assert doc.xpath(f'//body//a[@href="/{name}/-/new"]') and doc.xpath(f'//body//a[@href="/{name}/-/charts"]')
    feed(base + link.get("href"))


# -- the face -------------------------------------------------------------------------
INTERNAL = ("_sqlite_migrations", "claims_fts", "pages_fts", "snapshots", "claim_counts", "page_resources",
            "reanalysis_runs")


def test_internal_tables_are_absent_from_the_index_and_the_database_page(served):
    base, name, _ = served
    for url in ("/", "/.json", f"/{name}"):
        status, _, body = get(base + url)
        assert status == 200
        for table in INTERNAL:
            assert f">{table}<" not in body and f'"name": "{table}"' not in body, (url, table)
    listed = json.loads(get(f"{base}/.json")[2])[name]["tables_and_views_truncated"]
    assert listed and not {t["name"] for t in listed} & set(INTERNAL)
    tables = {t["name"]: t for t in json.loads(get(f"{base}/{name}.json")[2])["tables"]}
    assert all(tables[t]["hidden"] for t in INTERNAL if t in tables)


def test_tables_come_in_the_order_a_journalist_uses_them(served):
    base, name, _ = served
    doc = lxml_html.fromstring(get(f"{base}/{name}")[2])
    shown = [a.text for a in doc.xpath('//div[@class="db-table"]/h3/a')]
    assert shown[:6] == ["claims", "sites", "pages", "crawls", "reviews", "links"]
    assert doc.xpath('//div[@class="db-table"]/h3/a')[0].get("href").startswith(f"/{name}/claims?_col=site")
    views = [a.text for a in doc.xpath('//h2[@id="views"]/following-sibling::ul[1]/li/a')]
    assert views[:2] == ["claim_status", "claim_changes"] and "page_observation_steps" not in views
    home = lxml_html.fromstring(get(f"{base}/")[2])
    links = [a.text for a in home.xpath("//h2/following-sibling::p[2]/a")]
    assert links[:4] == ["Promoted claims to review", "What is new", "Charts", "claims"]


def test_default_sorts_labels_and_columns(served):
    base, name, _ = served
    def order(table: str) -> str:
        return json.loads(get(f"{base}/{name}/{table}.json")[2])["query"]["sql"].split(" order by ")[1]

    assert order("claims").startswith("id desc") and order("crawls").startswith("id desc")
    assert order("pages").startswith("id desc") and order("sites").startswith("name")
    claims = json.loads(get(f"{base}/{name}/claims.json")[2])["rows"]
    assert [r[0] for r in claims] == sorted((r[0] for r in claims), reverse=True)
    page = get(f"{base}/{name}/claims")[2]
    assert ">Alpha Clinic</a>" in page  # the site's name where the claim names its host
    assert ">2026-11-08T10:00:00Z</a>" in page  # a claim's crawl by when it started
    assert "Version of the detector that read the page" in get(f"{base}/{name}/pages")[2]


# -- charts ---------------------------------------------------------------------------
def test_chart_specs_are_served_with_data_from_this_datasette(served):
    base, name, _ = served
    page = get(f"{base}/{name}/-/charts")[2]
    doc = lxml_html.fromstring(page)
    specs = [d.get("data-spec") for d in doc.xpath('//div[@class="stemwatch-chart"]')]
    assert len(specs) == 3
    for spec_url in specs:
        status, ctype, body = get(base + spec_url)
        spec = json.loads(body)
        assert status == 200 and "vega-lite" in spec["$schema"] and spec["data"]["url"].startswith(f"/{name}/")
        status, ctype, data = get(base + spec["data"]["url"])
        assert status == 200 and ctype.startswith("application/json") and json.loads(data)
    share = json.loads(get(f"{base}/{name}/chart_share_of_sites.json?_shape=array")[2])
    assert {r["category"]: r["share"] for r in share}["disease-cure"] == 0.5  # alpha's cure; beta has none
    scripts = doc.xpath("//script/@src")
    assert any("vega-6.4.0.min.js" in s for s in scripts) and all(s.startswith("/") for s in scripts)
    for src in scripts:
        status, ctype, body = get(base + src)
        assert status == 200 and len(body) > 500


def test_the_pages_in_chromium_draw_the_chart_and_ask_only_this_datasette(served):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    base, name, _ = served
    artifacts = REPO / ".artifacts"
    artifacts.mkdir(exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    hosts = set()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: hosts.add(urllib.parse.urlsplit(r.url).hostname))
        page.goto(f"{base}/{name}/-/new")
        page.screenshot(path=str(artifacts / "whatsnew.png"), full_page=True)
        assert page.locator(".change.new").count() == 2
        page.goto(f"{base}/{name}/-/charts")
        page.wait_for_selector('#chart-promoted-by-category[data-drawn="1"] svg', timeout=15000)
        page.wait_for_function("document.querySelectorAll('.stemwatch-chart[data-drawn=\"1\"] svg').length == 3",
                               timeout=15000)
        page.screenshot(path=str(artifacts / "charts.png"), full_page=True)
        browser.close()
    assert hosts == {"127.0.0.1"}
    assert (artifacts / "charts.png").stat().st_size > 10_000


# -- m013: the same rows, faster ---------------------------------------------------------
OLD_CLAIMS_TO_REVIEW = (
    "select min(c.id) as claim_id, coalesce(s.name, c.site) as site, c.category, c.severity,\n"
    "       round(max(c.score), 2) as score,\n"
    "       c.sentence, c.text, min(c.url) as url, count(*) as pages, p.fetched_at as captured_at,\n"
    "       (select v.verdict from claim_verdicts v where v.claim_key = c.claim_key) as verdict\n"
    "from claims c join pages p on p.id = c.page_id left join sites s on s.domain = c.site\n"
    "where c.stance = 'promoted'\n"
    "  and c.crawl_id = (select max(p2.crawl_id) from pages p2 where p2.site = c.site)\n"
    "  and (:category = '' or c.category = :category)\n"
    "  and (:site = '' or s.name like '%' || :site || '%' or c.site = :site)\n"
    "group by c.site, c.category, lower(c.sentence)\n"
    "order by c.severity = 'high' desc, max(c.score) desc, site, c.category"
)


def rows(conn: sqlite3.Connection, sql: str, params=()) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql, params)]


def test_m013_views_and_the_queue_give_the_same_rows(tmp_path):
    from analysis.store.reviews import add_review
    from analysis.web.plugin import CANNED_QUERIES

    path = tmp_path / "m013.db"
    build(path, stop_before="m013_datasette_at_scale")
    store = Store(path, migrate=False)
    add_review(store.db, "1", "unsure")
    add_review(store.db, "1", "confirmed", "seen", reviewer="ana")
    # a third crawl of alpha: the page back after its failure, a claim returns, one goes
    crawl(store, {ALPHA: {"/": [FDA, CURE], "/b": [GUARANTEE]}}, "2026-11-15T10:00:00Z")
    store.close()
    queries = {
        "claim_changes": "select * from claim_changes order by crawl_id, change, claim_key",
        "claim_changes of a crawl": "select * from claim_changes where crawl_id = 3 order by change, claim_key",
        "claim_status": "select * from claim_status order by claim_key",
        "claim_status of a site": f"select * from claim_status where site = '{BETA}' order by claim_key",
        "page_observation_steps": "select * from page_observation_steps order by url, crawl_id",
    }
    queue = [{"category": "", "site": ""}, {"category": "disease-cure", "site": ""}, {"category": "", "site": "Alpha"}]
    conn = sqlite3.connect(path)
    before = {name: rows(conn, sql) for name, sql in queries.items()}
    before_queue = [rows(conn, OLD_CLAIMS_TO_REVIEW, p) for p in queue]
    conn.close()
    assert len(before["claim_changes"]) == 5 + 4 + 2 and len(before["claim_status"]) == 7
    Store(path).close()  # applies m013
    conn = sqlite3.connect(path)
    assert {name: rows(conn, sql) for name, sql in queries.items()} == before
    assert [rows(conn, CANNED_QUERIES["claims_to_review"]["sql"], p) for p in queue] == before_queue
    assert before_queue[0] and before_queue[2] and not any(r[1] == "Beta Cells" for r in before_queue[2])


def test_claim_counts_follow_every_write_to_claims(tmp_path):
    path = tmp_path / "counts.db"
    build(path)
    store = Store(path)
    grouped = ("select crawl_id, site, category, stance, count(*) from claims "
               "group by crawl_id, site, category, stance order by 1, 2, 3, 4")
    counted = "select crawl_id, site, category, stance, claims from claim_counts order by 1, 2, 3, 4"
    assert rows(store.db.conn, counted) == rows(store.db.conn, grouped)
    # a page analysed again (reanalyze, a resumed crawl) replaces its claims
    page = store.db.execute("select id from pages where crawl_id = 2 and site = ? and error is null", [ALPHA]).fetchone()[0]
    store.add_analyses([(page, PageAnalysis(page_kind="clinic", claims=[GUARANTEE, GUARANTEE], detector_version="u"))])
    store.db.execute("update claims set stance = 'negated' where id = (select min(id) from claims)")
    store.db.execute("delete from claims where site = ?", [BETA])
    assert rows(store.db.conn, counted) == rows(store.db.conn, grouped)
    store.close()
