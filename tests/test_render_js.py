"""Pages whose text only a browser sees: rendered in Debian's Chromium through
scrapy-playwright, only where needed, through the real `stemwatch crawl`.

The clinic page below holds no claim in its HTML: its script fetches a JSON file
from the same server and writes the claim into the page."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from servers import REPO, Site, ok, redirect, run_crawl_cli

CHROMIUM = os.environ.get("STEMWATCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium and sets this, so a missing browser fails there.
REQUIRED = os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1"
CLAIM = "Our stem cell therapy cures autism in most children."
DETECT = {"STEMWATCH_DETECT": "1"}
ABOUT = b"<html><body><h1>About</h1><p>" + b"Our team has cared for patients and families since 2009. " * 6 + b"</p></body></html>"


@pytest.fixture(scope="module", autouse=True)
def browser_available():
    missing = []
    if CHROMIUM is None:
        missing.append("chromium is not installed (apt-get install chromium)")
    if importlib.util.find_spec("scrapy_playwright") is None:
        missing.append("scrapy-playwright is not installed (pip install scrapy-playwright)")
    if missing:
        if REQUIRED:
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))


def js_site(claim: str = CLAIM) -> Site:
    """A site-builder page: a loader, an empty root and a script; the text arrives as JSON."""
    shell = (b'<!doctype html><html><head><meta charset="utf-8"><title>Regenerative Clinic</title>'
             b'<script type="application/ld+json">{"@type": "MedicalClinic"}</script></head>'
             b'<body><div id="root">Loading</div><script src="/static/app.js"></script></body></html>')
    app = (b'fetch("/api/page.json").then(r => r.json()).then(d => {'
           b'document.getElementById("root").innerHTML = "<h2>Treatments</h2><p>" + d.text + "</p>"'
           b' + "<a href=\\"/about\\">About us</a>"; });')
    return Site({
        "/": ok(shell),
        "/static/app.js": ok(app, "application/javascript"),
        "/api/page.json": ok(json.dumps({"text": claim}).encode(), "application/json"),
        "/about": ok(ABOUT),
    }, robots="User-agent: *\nDisallow: /private\n")


def rows(db: Path, sql: str, params=()) -> list[dict]:
    conn = sqlite3.connect(str(db))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def snapshot(db: Path, digest: str) -> bytes:
    row = rows(db, "select compression, body from snapshots where sha256 = ?", [digest])[0]
    body = zlib.decompress(row["body"]) if row["compression"] == "zlib" else row["body"]
    assert hashlib.sha256(body).hexdigest() == digest
    return body


def stats(db: Path) -> dict:
    return json.loads(rows(db, "select stats from crawls order by id desc limit 1")[0]["stats"])


def claims(db: Path) -> list[dict]:
    return rows(db, "select c.url, c.sentence, c.stance, p.rendered from claims c join pages p on p.id = c.page_id")


def crawled(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result


# -- without rendering ----------------------------------------------------------------
def test_without_rendering_the_claim_is_not_seen_and_no_browser_is_loaded(tmp_path):
    with js_site() as site:
        db = tmp_path / "plain.db"
        # the auto rule off: nothing asks for rendering
        crawled(run_crawl_cli([site.url("/")], db, settings={**DETECT, "STEMWATCH_RENDER_AUTO_WORDS": "0"}))
        page = rows(db, "select * from pages where url = ?", [site.url("/")])[0]
        assert page["rendered"] == 0 and page["raw_sha256"] is None and page["text"].strip() == "Loading"
        assert claims(db) == []
        assert not [k for k in stats(db) if k.startswith(("playwright/", "stemwatch/render/"))]
        assert "/api/page.json" not in site.hits  # no script ran


def test_render_off_installs_nothing_and_the_auto_rule_reads_scripts():
    from scrapy.settings import Settings

    from crawler import render

    for mode, installed in (("off", False), ("auto", True), ("js", True)):
        settings = Settings()
        settings.setmodule("crawler.settings", priority="project")
        settings.set("STEMWATCH_RENDER", mode, priority="cmdline")
        render.configure(settings)
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        assert (handlers.get("https") == render.HANDLER) is installed, (mode, handlers)
        assert ("PLAYWRIGHT_LAUNCH_OPTIONS" in settings) is installed
    shell = b'<div id="root"></div><script src="/app.js"></script>'
    assert render.needs_rendering("", shell, 25)
    assert not render.needs_rendering("", shell, 0)  # 0 switches the rule off
    assert not render.needs_rendering(" ".join(["word"] * 25), shell, 25)
    assert not render.needs_rendering("", b'<script type="application/ld+json">{"a": 1}</script>', 25)
    assert render.needs_rendering("Loading", b"<script>\n  document.write('x')\n</script>", 25)


# -- --render js: every page, and the browser's requests guarded -----------------------
def guard_site(internal: Site) -> Site:
    """A page whose script and markup reach for internal addresses while writing a claim."""
    inside = internal.base  # 127.0.0.2: loopback, and not allowed
    page = f"""<!doctype html><html><head><title>Guarded</title>
<link rel="preconnect" href="{inside}"><link rel="stylesheet" href="{inside}/style.css"></head>
<body><div id="root">Loading</div>
<img src="http://169.254.169.254/latest/meta-data">
<iframe src="{inside}/frame"></iframe>
<script src="/guard.js"></script></body></html>""".encode()
    script = f"""
fetch("http://10.0.0.1/x").catch(() => null);
fetch("{inside}/xhr").catch(() => null);
fetch("/hop").catch(() => null);
try {{ new WebSocket("{inside.replace('http', 'ws')}/ws"); }} catch (e) {{}}
document.getElementById("root").textContent = "Stem cell injections regrow cartilage, guaranteed.";
""".encode()
    return Site({
        "/": ok(page),
        "/guard.js": ok(script, "application/javascript"),
        "/hop": redirect(f"{inside}/after-redirect"),
    })


@pytest.fixture(scope="module")
def js_crawl(tmp_path_factory):
    internal = Site(default=ok(b"<p>internal</p>"), host="127.0.0.2").start()
    site, guarded = js_site().start(), None
    try:
        guarded = guard_site(internal).start()
        db = tmp_path_factory.mktemp("js") / "js.db"
        result = crawled(run_crawl_cli([site.url("/"), guarded.url("/")], db, "--render", "js", "-v",
                                       settings=DETECT))
        yield {"db": db, "site": site, "guarded": guarded, "internal": internal, "result": result}
    finally:
        for s in (site, guarded, internal):
            if s is not None:
                s.stop()


def test_render_js_finds_the_claim_and_keeps_both_snapshots(js_crawl):
    db, site = js_crawl["db"], js_crawl["site"]
    page = rows(db, "select * from pages where url = ?", [site.url("/")])[0]
    assert page["rendered"] == 1 and page["render_reason"] == "crawl" and page["render_error"] is None
    assert CLAIM in page["text"]
    assert any(c["sentence"] == CLAIM and c["stance"] == "promoted" and c["rendered"] == 1 for c in claims(db))
    # both stored: the DOM the text came from, and what the server sent
    rendered, raw = snapshot(db, page["sha256"]), snapshot(db, page["raw_sha256"])
    assert CLAIM.encode() in rendered and b'id="root"' in rendered
    assert CLAIM.encode() not in raw and b"Loading" in raw
    # a link the script wrote is followed; robots.txt held for the page itself
    about = rows(db, "select * from pages where url = ?", [site.url("/about")])[0]
    assert about["rendered"] == 1 and about["error"] is None
    assert site.hits["/robots.txt"] >= 1 and site.hits["/api/page.json"] >= 1


def test_render_js_capture_holds_what_the_server_sent_and_the_dom(js_crawl):
    from analysis.evidence.warc import read_capture
    from analysis.store.database import Store

    db, site = js_crawl["db"], js_crawl["site"]
    page = rows(db, "select * from pages where url = ?", [site.url("/")])[0]
    with Store(db) as store:
        folder = store.warc_dir(page["crawl_id"])
    capture = read_capture(folder / page["warc_file"], page["warc_offset"], page["warc_length"])
    assert capture.record_id == page["warc_record_id"] and capture.status == 200
    assert hashlib.sha256(capture.content).hexdigest() == page["raw_sha256"]
    assert capture.rendered_record_id == page["rendered_record_id"]
    assert hashlib.sha256(capture.rendered).hexdigest() == page["sha256"]
    verify = subprocess.run([sys.executable, "-m", "analysis.cli", "verify", "--db", str(db)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "the stored page is not the captured one" not in verify.stdout


def test_browser_requests_to_internal_addresses_are_blocked(js_crawl):
    db, guarded, internal = js_crawl["db"], js_crawl["guarded"], js_crawl["internal"]
    page = rows(db, "select * from pages where url = ?", [guarded.url("/")])[0]
    assert page["rendered"] == 1 and "regrow cartilage" in page["text"]  # the page itself still rendered
    assert internal.hits == {}, dict(internal.hits)  # nothing reached the address not allowed
    # the metadata image, 10.0.0.1, the XHR, the stylesheet, the iframe, the redirect's target
    assert stats(db)["stemwatch/render/blocked"] >= 6
    log = js_crawl["result"].stderr
    assert "blocked a browser request to http://10.0.0.1/x" in log
    assert "blocked a browser request to http://169.254.169.254/latest/meta-data" in log
    assert f"blocked a browser request to {internal.base}/after-redirect" in log
    assert guarded.hits["/hop"] == 1


# -- the seed's render column, and the auto rule ----------------------------------------
def test_seed_column_and_auto_rule_render_only_their_pages(tmp_path):
    with js_site() as by_seed, js_site() as by_rule:
        seeds = tmp_path / "seeds.csv"
        seeds.write_text(f"url,name,render\n{by_seed.url('/')},Seeded Clinic,js\n"
                         f"{by_rule.url('/')},Builder Clinic,\n")
        db = tmp_path / "auto.db"
        crawled(run_crawl_cli([str(seeds)], db, settings=DETECT))
        seeded = rows(db, "select * from pages where url like ?", [by_seed.base + "/%"])
        assert {p["url"]: (p["rendered"], p["render_reason"]) for p in seeded} == {
            by_seed.url("/"): (1, "seed"), by_seed.url("/about"): (1, "seed")}
        ruled = {p["url"]: p for p in rows(db, "select * from pages where url like ?", [by_rule.base + "/%"])}
        home = ruled[by_rule.url("/")]
        assert (home["rendered"], home["render_reason"]) == (1, "auto") and CLAIM in home["text"]
        assert CLAIM.encode() not in snapshot(db, home["raw_sha256"])
        # the page with text of its own is not rendered
        assert (ruled[by_rule.url("/about")]["rendered"], ruled[by_rule.url("/about")]["render_reason"]) == (0, None)
        assert by_rule.hits["/"] == 2  # fetched, judged, fetched again rendered
        found = {(c["url"], c["rendered"]) for c in claims(db) if c["sentence"] == CLAIM}
        assert found == {(by_seed.url("/"), 1), (by_rule.url("/"), 1)}
        assert stats(db)["stemwatch/render/auto"] == 1
