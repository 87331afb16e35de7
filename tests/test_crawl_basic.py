"""Real crawls of local sites in a subprocess: scope, links, robots, sitemaps,
content kinds, identity, claims, the crawl record and the command line."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys

import pytest

from tests.servers import Site, generated_site, html, ok, pages, redirect, run_crawl_cli, tiny_pdf

CLAIM = "<p>Our stem cell therapy cures Parkinson's disease and regrows cartilage.</p>"


def clinic_routes(other_base: str) -> dict:
    return {
        "/robots.txt": ok(b"User-agent: *\nDisallow: /private\nSitemap: /sitemap-pages.xml\n", "text/plain"),
        "/sitemap-pages.xml": ok(
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>/orphan</loc></url><url><loc>https://elsewhere.org/x</loc></url></urlset>",
            "application/xml"),
        "/": ok(html("Regen Clinic", CLAIM, [
            "/about", "/treatments?utm_source=news&fbclid=abc#prices", "/treatments",
            "https://www.fda.gov/consumers/stem-cells", f"{other_base}/", "/private/secret",
            "/brochure.pdf", "/photo.jpg", "/video", "/notes.txt", "/gone", "/moved",
        ])),
        # /sitemap.xml (always tried) is an index pointing at a gzipped sitemap.
        "/sitemap.xml": ok(
            b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<sitemap><loc>/sitemap-2.xml.gz</loc></sitemap></sitemapindex>", "application/xml"),
        "/sitemap-2.xml.gz": ok(gzip.compress(
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>/from-index</loc></url></urlset>"), "application/x-gzip"),
        "/from-index": ok(html("Listed in a gzipped sitemap")),
        "/about": ok(html("About us", "<p>Founded in 2010.</p>", ["/", "/treatments"])),
        "/treatments": ok(html("Treatments", "<p>We treat knees.</p>", ["/about"])),
        "/orphan": ok(html("Only in the sitemap", "<p>Hidden page.</p>")),
        "/private/secret": ok(html("Secret")),
        "/brochure.pdf": ok(tiny_pdf("Stem cells regrow cartilage in every knee."), "application/pdf"),
        "/photo.jpg": ok(b"\xff\xd8\xff" + b"\0" * 1000, "image/jpeg"),
        "/video": ok(b"\0" * 200_000, "video/mp4"),
        "/notes.txt": ok(b"Plain notes\n\nline two", "text/plain; charset=utf-8"),
        "/gone": (404, {"Content-Type": "text/html"}, html("Not here")),
        "/moved": redirect("/about?sessionid=123"),
    }


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("basic")
    with Site({"/": ok(html("Other clinic", "<p>Welcome</p>", ["/team"])),
               "/team": ok(html("Team"))}) as other:
        with Site(clinic_routes(other.base)) as site:
            seeds = tmp / "seeds.csv"
            seeds.write_text(
                f"url,name,country,state,notes\n{site.url('/')},Regen Clinic,US,FL,ads\n"
                f"not a url,Broken,,,\n{other.url('/')},Other Clinic,MX,,\n{site.url('/about')},Dup,,,\n"
            )
            db = tmp / "crawl.db"
            result = run_crawl_cli([str(seeds)], db, "--contact", "research@example.org",
                                   settings={"STEMWATCH_DETECT": "1"})
            yield {"result": result, "db": db, "site": site, "other": other}


def test_exit_status_and_summary(crawl):
    r = crawl["result"]
    assert r.returncode == 0, r.stderr
    assert "seeds.csv:3" in r.stderr and "row skipped" in r.stderr
    assert "duplicate of site" in r.stderr
    assert "Crawl 1 finished" in r.stdout
    assert "Claims by category and stance:" in r.stdout
    assert "disease-cure" in r.stdout
    assert "Regen Clinic" in r.stdout and "Other Clinic" in r.stdout


def test_pages_fetched_once_in_scope(crawl):
    site, other = crawl["site"], crawl["other"]
    hits = site.hits
    assert hits["/treatments"] == 1  # tracking parameters and fragment dropped
    assert hits["/about"] == 1
    assert hits["/orphan"] == 1  # found through the robots.txt sitemap
    assert hits["/from-index"] == 1  # through /sitemap.xml, an index, and a gzipped sitemap
    assert hits["/private/secret"] == 0  # robots.txt obeyed
    assert hits["/photo.jpg"] == 0  # not a page
    assert other.hits["/team"] == 1
    stored = pages(crawl["db"], crawl["site"].base)
    assert stored["/private/secret"]["error"] == "Forbidden by robots.txt"
    assert "/photo.jpg" not in stored
    assert not any("utm_source" in u or "fbclid" in u or "sessionid" in u for u in stored)


def test_content_kinds(crawl):
    stored = pages(crawl["db"], crawl["site"].base)
    assert stored["/brochure.pdf"]["text"] == "Stem cells regrow cartilage in every knee."
    assert stored["/notes.txt"]["text"] == "Plain notes\nline two"
    assert stored["/"]["title"] == "Regen Clinic"
    video = stored["/video"]
    assert video["content_type"] == "video/mp4" and video["text"] is None and video["error"] is None
    assert video["sha256"] is None  # body not stored: the download stopped at the headers
    assert stored["/gone"]["status"] == 404 and stored["/gone"]["error"] == "HTTP 404"
    moved = stored["/moved"]
    assert moved["status"] == 200 and moved["final_url"].endswith("/about?sessionid=123")


def test_links_recorded_with_outbound_flag(crawl):
    conn = sqlite3.connect(crawl["db"])
    rows = conn.execute(
        "select target, outbound from links where source = ?", [crawl["site"].url("/")]).fetchall()
    links = dict(rows)
    assert links["https://www.fda.gov/consumers/stem-cells"] == 1
    assert links[crawl["other"].url("/")] == 1
    assert links[crawl["site"].url("/treatments")] == 0
    assert crawl["site"].url("/treatments?fbclid=abc&utm_source=news") not in links


def test_sites_and_crawl_record(crawl):
    conn = sqlite3.connect(crawl["db"])
    conn.row_factory = sqlite3.Row
    site = conn.execute("select * from sites where name = 'Regen Clinic'").fetchone()
    assert (site["country"], site["state"], site["notes"]) == ("US", "FL", "ads")
    crawl_row = conn.execute("select * from crawls").fetchone()
    assert crawl_row["status"] == "finished"
    stats = json.loads(crawl_row["stats"])
    assert stats["finish_reason"] == "finished"
    per_site = stats["per_site"]
    assert set(per_site) == {f"127.0.0.1:{crawl['site'].port}", f"127.0.0.1:{crawl['other'].port}"}
    assert per_site[f"127.0.0.1:{crawl['other'].port}"]["pages"] == 2
    assert stats["stemwatch/pages"] == crawl_row["pages"]
    assert crawl_row["claims"] > 0 and crawl_row["detector_version"]
    claims = {r[0] for r in conn.execute(
        "select category from claims c join pages p on p.id = c.page_id where p.url = ?",
        [crawl["site"].url("/")])}
    assert "disease-cure" in claims


def test_identity_and_no_listening_ports(crawl):
    agents = crawl["site"].user_agents
    assert agents and all("stemwatch" in a and "research@example.org" in a for a in agents)
    # Telnet console and remote-control server are off: Scrapy logs nothing about them.
    assert "Telnet" not in crawl["result"].stderr
    assert "remote" not in crawl["result"].stderr.lower()


def test_progress_lines(crawl):
    assert "pages/s - done" in crawl["result"].stderr


def test_page_cap_and_depth_limit(tmp_path):
    with Site(generated_site(300, links_per_page=3)) as site:
        db = tmp_path / "cap.db"
        r = run_crawl_cli([site.url("/")], db, "--max-pages-per-site", "12")
        assert r.returncode == 0, r.stderr
        stored = pages(db)
        assert len(stored) == 12
        assert sum(n for path, n in site.hits.items() if path.startswith("/p/")) == 11
        db2 = tmp_path / "depth.db"
        r = run_crawl_cli([site.url("/")], db2, settings={"DEPTH_LIMIT": "2"})
        assert r.returncode == 0, r.stderr
        depths = {row["depth"] for row in pages(db2).values()}
        assert depths == {0, 1, 2}
        assert len(pages(db2)) == 1 + 1 + 3  # home, /p/0, its three links


def test_unusable_input_fails_clearly(tmp_path):
    r = run_crawl_cli([str(tmp_path / "nope.csv")], tmp_path / "x.db")
    assert r.returncode != 0 and "no such seed file" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nA\n")
    r = run_crawl_cli([str(bad)], tmp_path / "x.db")
    assert r.returncode != 0 and "no 'url' column" in r.stderr
    r = run_crawl_cli([], tmp_path / "x.db", "--resume")
    assert r.returncode != 0 and "nothing to resume" in r.stderr
    assert not (tmp_path / "x.db.jobs").exists()


def test_help_has_example():
    r = subprocess.run([sys.executable, "-m", "analysis.cli", "crawl", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    description = r.stdout.split("Options:")[0].strip().splitlines()
    assert description[-1].strip().startswith("Example: stemwatch crawl ")


def test_scrapy_crawl_command_works_from_the_repo_root(tmp_path):
    from tests.servers import REPO

    with Site(generated_site(4)) as site:
        seeds = tmp_path / "seeds.csv"
        seeds.write_text(f"url,name\n{site.url('/')},Scrapy CLI clinic\n")
        db = tmp_path / "scrapy.db"
        r = subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "clinics", "-a", f"seeds={seeds}",
             "-s", f"STEMWATCH_DB={db}", "-s", "STEMWATCH_ALLOW_HOSTS=127.0.0.1", "-s", "DOWNLOAD_DELAY=0",
             "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "STEMWATCH_DETECT=0", "-s", "LOG_LEVEL=WARNING"],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    stored = pages(db)
    assert len(stored) == 5 and all(row["status"] == 200 for row in stored.values())
    conn = sqlite3.connect(db)
    assert conn.execute("select status from crawls").fetchone()[0] == "finished"
    assert conn.execute("select name from sites").fetchone()[0] == "Scrapy CLI clinic"


def test_requests_to_one_site_are_spaced_by_the_download_delay(tmp_path):
    with Site(generated_site(8, links_per_page=2)) as site:
        db = tmp_path / "polite.db"
        r = run_crawl_cli([site.url("/")], db, settings={
            "DOWNLOAD_DELAY": "0.3", "DOWNLOAD_DELAY_JITTER": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
            "STEMWATCH_SITEMAPS": "0"})
        assert r.returncode == 0, r.stderr
    times = sorted(t for t, path in site.log if path != "/robots.txt")
    assert len(times) == 9
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.25, gaps


def test_progress_on_a_terminal_is_a_live_display(tmp_path):
    import os
    import pty

    from tests.servers import REPO, crawl_command

    master, slave = pty.openpty()
    with Site(generated_site(30)) as site:
        proc = subprocess.Popen(crawl_command([site.url("/")], tmp_path / "tty.db"), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the pty closed: the crawl is over
                break
            if not data:
                break
            chunks.append(data)
        out, _ = proc.communicate(timeout=60)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0 and "Crawl 1 finished" in out
    assert "\r" in shown and " pages" in shown  # redrawn in place
    assert "31 pages (0 errors" in shown and shown.rstrip().endswith("- done")


def test_robots_txt_holds_for_every_request_waiting_for_it(tmp_path):
    """Several requests to a site wait for its robots.txt at the start of a crawl (three
    seeds of one site, and its sitemap): each one is judged by its rules. Scrapy 2.19's
    own middleware let all but the first waiter through."""
    routes = {
        "/robots.txt": ok(b"User-agent: *\nDisallow: /private\nDisallow: /sitemap.xml\n", "text/plain"),
        "/": ok(html("Home", "<p>Welcome</p>", ["/a"])), "/a": ok(html("A")),
        "/private/1": ok(html("Private")), "/private/2": ok(html("Private")),
        "/sitemap.xml": ok(b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                           b"<url><loc>/private/3</loc></url></urlset>", "application/xml"),
    }
    with Site(routes) as site:
        r = run_crawl_cli([site.url("/"), site.url("/private/1"), site.url("/private/2")], tmp_path / "r.db")
    assert r.returncode == 0, r.stderr
    assert site.hits["/a"] == 1
    assert [p for p in site.hits if p.startswith("/private") or p == "/sitemap.xml"] == []
    stored = pages(tmp_path / "r.db", site.base)
    assert stored["/private/1"]["error"] == stored["/private/2"]["error"] == "Forbidden by robots.txt"
