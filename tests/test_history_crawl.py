"""Two real crawls of a local clinic site that changes between them: a claim
added, one removed, a page gone (404), a page failing (500). The crawler,
detector and database are the real ones; the site is served from a folder on
127.0.0.1 by a server in a subprocess, and rewritten between the crawls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import sqlite_utils

from conftest import REPO, STEMWATCH, free_port, wait_for_http

SERVER = """
import json, sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

root = Path(sys.argv[1])

class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        forced = json.loads((root / "_status.json").read_text()) if (root / "_status.json").exists() else {}
        if self.path in forced:
            self.send_error(forced[self.path])
            return
        super().do_GET()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), partial(Handler, directory=str(root))).serve_forever()
"""

FDA = "Our stem cell therapy is FDA approved."
CURE = "Stem cell injections cure Parkinson's disease."
AUTISM = "We now treat autism with stem cell infusions."
GUARANTEE = "Stem cell results guaranteed or your money back!"
REJECTION = "Our donor stem cell treatment carries no risk of rejection, so no matching is needed."
CARTILAGE = "Stem cells regrow cartilage in your knee without surgery."


def page(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return textwrap.dedent(f"""\
        <!doctype html><html lang="en"><head><title>{title} | Renew Stem Cell Clinic</title></head>
        <body><nav><a href="/">Home</a> <a href="/treatments.html">Treatments</a>
        <a href="/offer.html">Offer</a> <a href="/faq.html">FAQ</a></nav>
        <h1>{title}</h1>{body}<footer>Book your consultation today: call us.</footer></body></html>""")


def write_site(root, pages: dict[str, str], status: dict[str, int]):
    for old in root.glob("*.html"):
        old.unlink()
    for name, html in pages.items():
        (root / name).write_text(html, encoding="utf-8")
    (root / "_status.json").write_text(json.dumps(status))


def crawl(port: int, db) -> None:
    result = subprocess.run(
        [*STEMWATCH, "crawl", f"http://127.0.0.1:{port}/", "--db", str(db), "--allow-host", "127.0.0.1",
         "--set", "DOWNLOAD_DELAY=0", "--set", "RETRY_TIMES=0"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def two_real_crawls(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    db = tmp_path_factory.mktemp("db") / "clinic.db"
    port = free_port()
    write_site(root, {
        "index.html": page("Welcome", FDA, CURE),
        "treatments.html": page("Treatments", CARTILAGE),
        "offer.html": page("Special offer", GUARANTEE),
        "faq.html": page("FAQ", REJECTION),
    }, {})
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port)])
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", proc=server)
        crawl(port, db)
        write_site(root, {
            "index.html": page("Welcome", CURE, AUTISM),
            "treatments.html": page("Treatments", CARTILAGE),
            "faq.html": page("FAQ", REJECTION),
        }, {"/faq.html": 500})
        scheduled = subprocess.run(  # the second crawl as a scheduled run
            [*STEMWATCH, "schedule", f"http://127.0.0.1:{port}/", "--db", str(db), "--allow-host", "127.0.0.1",
             "--crawl-arg=--set", "--crawl-arg=DOWNLOAD_DELAY=0", "--crawl-arg=--set", "--crawl-arg=RETRY_TIMES=0"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
        assert "finished with exit code 0" in scheduled.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
    return sqlite_utils.Database(db), db


def _claims(db, where: str, params=()) -> dict[str, dict]:
    """Rows of claim_status by the test sentence they hold."""
    out = {}
    for row in db.query(f"select * from claim_status where {where}", params):
        for sentence in (FDA, CURE, AUTISM, GUARANTEE, REJECTION, CARTILAGE):
            if sentence in row["sentence"]:
                out.setdefault(sentence, dict(row))
    return out


def test_pages_of_both_crawls_are_kept(two_real_crawls):
    db, _ = two_real_crawls
    c1, c2 = [r["id"] for r in db.query("select id from crawls order by id")]
    statuses = {(r["crawl_id"], r["url"].rsplit("/", 1)[1]): r["status"] for r in db.query("select * from pages")}
    assert statuses[(c1, "offer.html")] == 200 and statuses[(c2, "offer.html")] == 404
    assert statuses[(c1, "faq.html")] == 200 and statuses[(c2, "faq.html")] == 500
    history = list(db.query("select * from page_history where url like '%/' order by crawl_id"))
    assert [h["crawl_id"] for h in history] == [c1, c2] and history[1]["body_changed"] == 1


def test_lifecycle_of_real_claims(two_real_crawls):
    db, _ = two_real_crawls
    c1, c2 = [r["id"] for r in db.query("select id from crawls order by id")]
    st = _claims(db, "1")
    assert set(st) == {FDA, CURE, AUTISM, GUARANTEE, REJECTION, CARTILAGE}, st.keys()
    assert (st[FDA]["present"], st[FDA]["removed_in_crawl"], st[FDA]["removed_reason"]) == (0, c2, "no longer on the page")
    assert (st[GUARANTEE]["present"], st[GUARANTEE]["removed_reason"]) == (0, "page gone (HTTP 404)")
    assert (st[AUTISM]["present"], st[AUTISM]["first_seen_crawl"]) == (1, c2)
    assert (st[CURE]["present"], st[CURE]["crawls_seen"]) == (1, 2)
    assert (st[CARTILAGE]["present"], st[CARTILAGE]["crawls_seen"]) == (1, 2)
    # the 500 does not make the FAQ's claim look removed
    assert (st[REJECTION]["present"], st[REJECTION]["last_checked_crawl"]) == (1, c1)


def test_changes_command_after_real_crawls(two_real_crawls):
    _, path = two_real_crawls
    result = subprocess.run([*STEMWATCH, "changes", "--db", str(path), "--format", "json"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    got = {(r["change"], s) for r in rows for s in (FDA, AUTISM, GUARANTEE, REJECTION) if s in r["sentence"]}
    assert got == {("new", AUTISM), ("removed", FDA), ("removed", GUARANTEE)}
    assert all(r["page_changed"] == 1 and r["detector_changed"] == 0 for r in rows)
