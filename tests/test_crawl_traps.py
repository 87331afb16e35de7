"""Traps and faults, all on one local site, crawled once: every test below
reads the same crawl. Each fault must end in a recorded row (or a bounded
number of fetches), never a stuck or crashed crawl."""

from __future__ import annotations

import threading
import time

import pytest

from tests.servers import Site, gzip_bomb, html, ok, pages, redirect, run_crawl_cli

LIMITS = {
    "STEMWATCH_MAX_PER_PATTERN": "6", "DOWNLOAD_TIMEOUT": "1.5", "RETRY_TIMES": "1",
    "DOWNLOAD_MAXSIZE": str(1024 * 1024), "DOWNLOAD_WARNSIZE": str(512 * 1024),
    "REDIRECT_MAX_TIMES": "4", "STEMWATCH_RETRY_AFTER_MAX": "30", "DEPTH_LIMIT": "40",
}


def once_then(first, then):
    """A handler answering `first` on the first request, `then` afterwards."""
    lock, state = threading.Lock(), {"n": 0}

    def handle(handler, path, query):
        with lock:
            state["n"] += 1
            n = state["n"]
        return first if n == 1 else then
    return handle


def calendar(handler, path, query):
    month = int(query.split("=")[1]) if query else 0
    return ok(html(f"Events month {month}", "<p>No events.</p>",
                   [f"/calendar?month={month - 1}", f"/calendar?month={month + 1}"]))


def events(handler, path, query):
    year, month = (int(x) for x in path.split("/")[2:4])
    return ok(html(f"Events {year}-{month}", "", [f"/events/{year + (month == 12)}/{month % 12 + 1}"]))


def blog(handler, path, query):
    page = int(query.split("=")[1]) if query else 1
    return ok(html(f"Blog page {page}", "<p>Posts.</p>", [f"/blog?page={page + 1}"]))


def session(handler, path, query):
    token = time.monotonic_ns()
    return ok(html("Session page", "", [f"/session?PHPSESSID={token}", f"/shop;jsessionid={token}"]))


LATIN1 = "<html><head><title>Clínica</title></head><body><p>Células madre: atención médica.</p></body></html>"
CP1252 = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
          "<title>Prices</title></head><body><p>\u201cMiracle\u201d therapy \u2013 only 5000\u20ac</p></body></html>")
UNDECLARED = "<html><body><p>Traitement des cellules souches à Montréal: “guérison” garantie, très efficace.</p></body></html>"

ROUTES = {
    "/calendar": calendar,
    "/events/*": events,
    "/blog": blog,
    "/session": session,
    "/shop": ok(html("Shop")),
    "/loop-a": redirect("/loop-b"),
    "/loop-b": redirect("/loop-a"),
    "/slow": Site.slow(4, ok(html("Too late"))),
    "/flaky": once_then((500, {"Content-Type": "text/html"}, html("Oops")), ok(html("Recovered"))),
    "/always500": (500, {"Content-Type": "text/html"}, html("Broken")),
    "/forbidden": (403, {"Content-Type": "text/html"}, html("Forbidden")),
    "/reset": Site.reset,
    "/binary": ok(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "text/html"),
    "/malformed": ok(b"<html><body><p>Unclosed <div>Stem <b>cells <i>here<table><tr><td>cell"
                     b"<a href='/after-malformed'>next</a></p></div></body"),
    "/after-malformed": ok(html("After")),
    "/bomb": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, gzip_bomb(20 * 1024 * 1024)),
    "/huge": ok(b"<html><body>" + b"<p>filler</p>" * 200_000 + b"</body></html>"),
    "/latin1": ok(LATIN1.encode("latin-1"), "text/html; charset=ISO-8859-1"),
    "/cp1252": ok(CP1252.encode("cp1252"), "text/html"),
    "/undeclared": ok(UNDECLARED.encode("cp1252"), "text/html"),
    "/retry-after": once_then((503, {"Content-Type": "text/html", "Retry-After": "1"}, html("Busy")),
                              ok(html("Served after waiting"))),
    "/retry-after-long": (429, {"Content-Type": "text/html", "Retry-After": "3600"}, html("Slow down")),
}
ROUTES["/"] = ok(html("Trap clinic", "<p>Welcome</p>", [
    "/calendar?month=0", "/events/2031/1", "/blog?page=1", "/session", "/loop-a", "/slow", "/flaky",
    "/always500", "/forbidden", "/reset", "/binary", "/malformed", "/bomb", "/huge", "/latin1",
    "/cp1252", "/undeclared", "/retry-after", "/retry-after-long",
]))


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    db = tmp_path_factory.mktemp("traps") / "traps.db"
    with Site(ROUTES) as site:
        started = time.monotonic()
        result = run_crawl_cli([site.url("/")], db, settings=LIMITS, timeout=100)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return {"db": db, "site": site, "pages": pages(db), "elapsed": elapsed, "result": result}


def hits(crawl, prefix):
    return sum(n for path, n in crawl["site"].hits.items() if path.startswith(prefix))


def test_crawl_finishes_in_bounded_time(crawl):
    assert crawl["elapsed"] < 60
    assert "Crawl 1 finished" in crawl["result"].stdout


def test_infinite_calendars_and_pagination_are_capped(crawl):
    assert hits(crawl, "/calendar") == 6
    assert hits(crawl, "/events/") == 6
    assert hits(crawl, "/blog") == 6
    assert sum(1 for p in crawl["pages"] if p.startswith("/calendar")) == 6


def test_session_ids_do_not_multiply_pages(crawl):
    assert hits(crawl, "/session") == 1
    assert hits(crawl, "/shop") == 1
    assert "/shop" in crawl["pages"]


def test_redirect_loop_ends_in_an_error_row(crawl):
    row = crawl["pages"]["/loop-a"]
    assert row["error"] == "max redirections reached"
    assert hits(crawl, "/loop-") <= 5


def test_timeouts_are_retried_then_recorded(crawl):
    row = crawl["pages"]["/slow"]
    assert row["error"].startswith("timeout")
    assert row["status"] is None
    assert hits(crawl, "/slow") == 2


def test_server_errors_retried_client_errors_recorded(crawl):
    p = crawl["pages"]
    assert p["/flaky"]["status"] == 200 and p["/flaky"]["error"] is None
    assert hits(crawl, "/flaky") == 2
    assert p["/always500"]["status"] == 500 and p["/always500"]["error"] == "HTTP 500"
    assert hits(crawl, "/always500") == 2
    assert p["/forbidden"]["status"] == 403 and p["/forbidden"]["error"] == "HTTP 403"
    assert hits(crawl, "/forbidden") == 1


def test_connection_reset_recorded(crawl):
    assert crawl["pages"]["/reset"]["error"].startswith("connection lost")
    # One retry of ours; Twisted's connection pool may retry once more
    # itself when the lost connection was a reused one.
    assert 2 <= hits(crawl, "/reset") <= 4


def test_binary_served_as_html_recorded(crawl):
    row = crawl["pages"]["/binary"]
    assert row["error"] == "binary content served as text/html"
    assert row["text"] is None


def test_malformed_html_is_read(crawl):
    row = crawl["pages"]["/malformed"]
    assert row["error"] is None and "Stem cells here" in row["text"]
    assert crawl["pages"]["/after-malformed"]["status"] == 200


def test_gzip_bomb_and_oversized_bodies_are_refused(crawl):
    assert "DOWNLOAD_MAXSIZE" in crawl["pages"]["/bomb"]["error"]
    huge = crawl["pages"]["/huge"]["error"]
    assert huge and ("maxsize" in huge.lower() or "cancel" in huge.lower() or "larger" in huge.lower()), huge


def test_charsets_decode(crawl):
    p = crawl["pages"]
    assert p["/latin1"]["title"] == "Clínica"
    assert "Células madre: atención médica." in p["/latin1"]["text"]
    assert "\u201cMiracle\u201d therapy \u2013 only 5000\u20ac" in p["/cp1252"]["text"]
    assert "à Montréal: “guérison” garantie, très efficace." in p["/undeclared"]["text"]


def test_retry_after_is_honoured(crawl):
    log = [t for t, path in crawl["site"].log if path == "/retry-after"]
    assert len(log) == 2 and log[1] - log[0] >= 0.9
    assert crawl["pages"]["/retry-after"]["status"] == 200


def test_too_long_retry_after_gives_up_at_once(crawl):
    row = crawl["pages"]["/retry-after-long"]
    assert row["status"] == 429 and row["error"] == "HTTP 429"
    assert hits(crawl, "/retry-after-long") == 1
