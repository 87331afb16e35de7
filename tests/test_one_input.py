"""A page gives the same claims whichever way it reaches the detector: a straight
crawl, a crawl killed with SIGKILL and resumed (its stored pages are analysed at
the end), `reanalyze` over stored pages, and `scan` of the saved HTML."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
import zlib
from pathlib import Path

from analysis.detect.detector import get_detector
from analysis.detect.scan import read_page
from tests.conftest import STEMWATCH
from tests.servers import REPO, Site, crawl_command, ok, run_crawl_cli
from tests.test_crawl_resume import stored_count

SITE_DIR = REPO / "data" / "demo" / "sites" / "novacell-institute"
DETECT = {"STEMWATCH_DETECT": "1", "STEMWATCH_BATCH_SIZE": "2", "CONCURRENT_REQUESTS_PER_DOMAIN": "1"}


def site_routes(hold: threading.Event | None = None):
    """The demo clinic's files. With `hold`, once /conditions/ is served every other
    page waits until `hold` is set: a crawl stalls with that page stored."""
    served = threading.Event()

    def serve(handler, path, query):
        if hold is not None and served.is_set() and path != "/robots.txt":
            hold.wait(30)
        if path == "/conditions/":
            served.set()
        target = (SITE_DIR / path.lstrip("/")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or SITE_DIR not in target.parents:
            return 404, {"Content-Type": "text/html"}, b"not found"
        ctype = {".html": "text/html; charset=utf-8", ".css": "text/css", ".txt": "text/plain"}[target.suffix]
        return ok(target.read_bytes(), ctype)
    return {"/*": serve}


def claims_by_path(db: Path, port: int) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute('select p.url, c.category, c.stance, c.start, c."end", c.pattern, c.sentence '
                            "from claims c join pages p on p.id = c.page_id order by p.url, c.start, c.category")
        out: dict[str, list[tuple]] = {}
        for url, *claim in rows:
            out.setdefault(url.split(str(port), 1)[1], []).append(tuple(claim))
        return out
    finally:
        conn.close()


def test_the_same_page_gives_the_same_claims_on_every_path(tmp_path):
    straight, killed, stored = tmp_path / "straight.db", tmp_path / "killed.db", tmp_path / "stored.db"
    with Site(site_routes()) as site:
        assert run_crawl_cli([site.url("/")], straight, settings=DETECT).returncode == 0
        # stored without detection, then analysed by reanalyze
        assert run_crawl_cli([site.url("/")], stored, settings={"STEMWATCH_DETECT": "0"}).returncode == 0
        r = subprocess.run([*STEMWATCH, "reanalyze", "--db", str(stored)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        want = claims_by_path(straight, site.port)
        assert len(want.get("/conditions/", [])) >= 10  # the page whose headings matter

    hold = threading.Event()
    with Site(site_routes(hold)) as slow:
        # killed once the conditions page is stored, before the crawl ends; the pages the
        # killed run stored are analysed when the resumed run closes
        proc = subprocess.Popen(crawl_command([slow.url("/")], killed, settings={**DETECT, "STEMWATCH_DETECT": "0"}),
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not _has_page(killed, "/conditions/"):
            assert proc.poll() is None and time.monotonic() < deadline, "the crawl ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        hold.set()
        assert stored_count(killed) < len(want)
        r = run_crawl_cli([], killed, "--resume", settings=DETECT, timeout=120)
        assert r.returncode == 0, r.stderr

    assert claims_by_path(killed, slow.port) == want
    assert claims_by_path(stored, site.port) == want

    # scan of each saved page, told the page's address
    conn = sqlite3.connect(straight)
    rows = conn.execute("select p.url, s.body, s.compression from pages p join snapshots s on s.sha256 = p.sha256 "
                        "where p.content_type like 'text/html%'").fetchall()
    conn.close()
    detector = get_detector()
    for i, (url, body, compression) in enumerate(rows):
        path = tmp_path / f"page{i}.html"
        path.write_bytes(zlib.decompress(body) if compression == "zlib" else body)
        analysis = next(detector.analyze_many([read_page(path, url)]))
        got = sorted((c.category, c.stance, c.start, c.end, c.pattern, c.sentence) for c in analysis.claims)
        assert got == sorted(want.get(url.split(str(site.port), 1)[1], [])), url


def _has_page(db: Path, path: str) -> bool:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("select 1 from pages where url like ?", [f"%{path}"]).fetchone() is not None
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return False
