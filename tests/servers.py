"""Local HTTP servers for crawler tests and the crawl benchmark.

A `Site` is a threaded HTTP server on 127.0.0.1 (port 0: the OS picks a
free one) with per-path handlers, so each test builds the trap or fault it
needs: redirect loops, slow answers, resets, gzip bombs, calendars... Every
request is counted in `site.hits` (path with query) so a test can assert
what the crawler fetched and how often.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Reply = tuple  # (status, headers dict, body bytes)


def html(title: str, body: str = "", links=(), lang: str = "en", charset: str | None = "utf-8") -> bytes:
    meta = f'<meta charset="{charset}">' if charset else ""
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    doc = (f'<!doctype html><html lang="{lang}"><head>{meta}<title>{title}</title></head>'
           f"<body><h1>{title}</h1>{body}<ul>{anchors}</ul></body></html>")
    return doc.encode(charset or "utf-8")


def ok(body: bytes, ctype: str = "text/html; charset=utf-8", **headers) -> Reply:
    return 200, {"Content-Type": ctype, **headers}, body


def redirect(location: str, status: int = 302) -> Reply:
    return status, {"Location": location, "Content-Type": "text/html"}, b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default of 5 drops connections under load
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # resets and timeouts are what some tests are about


class Site:
    """A web site on 127.0.0.1. `routes` maps a path (or path?query, or a
    prefix ending in '*') to a Reply or to a callable(handler, path, query)
    returning a Reply, or None when it wrote the answer itself."""

    def __init__(self, routes: dict | None = None, default=None, robots: str | None = None,
                 host: str = "127.0.0.1"):
        self.routes = dict(routes or {})
        if robots is not None:
            self.routes["/robots.txt"] = ok(robots.encode(), "text/plain")
        self.default = default
        self.hits: Counter = Counter()
        self.user_agents: set[str] = set()
        self.log: list[tuple[float, str]] = []
        self.active = 0  # requests being answered now, and the most at once
        self.max_active = 0
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site._handle(self)

            def do_HEAD(self):
                site._handle(self)

        self.server = _Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return self.base + path

    def start(self) -> "Site":
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def route_for(self, path: str, query: str):
        full = f"{path}?{query}" if query else path
        if full in self.routes:
            return self.routes[full]
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("*") and full.startswith(p[:-1])]
        if prefixes:
            return self.routes[max(prefixes, key=len)]
        return self.default

    def _handle(self, handler: BaseHTTPRequestHandler):
        parts = urlsplit(handler.path)
        full = f"{parts.path}?{parts.query}" if parts.query else parts.path
        with self._lock:
            self.hits[full] += 1
            self.log.append((time.monotonic(), full))
            self.user_agents.add(handler.headers.get("User-Agent", ""))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._answer(handler, parts)
        finally:
            with self._lock:
                self.active -= 1

    def _answer(self, handler: BaseHTTPRequestHandler, parts):
        route = self.route_for(parts.path, parts.query)
        if callable(route):
            route = route(handler, parts.path, parts.query)
            if route is None:
                return
        if route is None:
            route = (404, {"Content-Type": "text/html"}, html("Not found"))
        status, headers, body = route
        try:
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            if "Content-Length" not in headers:
                handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- handlers for faults ----------------------------------------------------
    @staticmethod
    def slow(seconds: float, reply: Reply):
        def handle(handler, path, query):
            time.sleep(seconds)
            return reply
        return handle

    @staticmethod
    def reset(handler, path, query):
        """Close the connection with a TCP RST before any answer."""
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return None


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of zeros, gzip-compressed (about 1000x smaller)."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def generated_site(pages: int, links_per_page: int = 5, words: int = 120, claim_every: int = 10):
    """Routes of a site of `pages` interlinked pages (/p/0 ... /p/N-1); every
    `claim_every`-th page makes a clinic-style claim."""
    filler = ("Our clinic offers consultations and care plans for patients and families. " * (words // 10))

    def page(handler, path, query):
        try:
            n = int(path.rsplit("/", 1)[1])
        except ValueError:
            return 404, {"Content-Type": "text/html"}, html("Not found")
        if n >= pages:
            return 404, {"Content-Type": "text/html"}, html("Not found")
        links = [f"/p/{(n * links_per_page + k + 1) % pages}" for k in range(links_per_page)]
        claim = ("<p>Stem cell therapy cures Parkinson's disease and regrows cartilage, guaranteed.</p>"
                 if claim_every and n % claim_every == 0 else "")
        return ok(html(f"Page {n}", f"<p>{filler}</p>{claim}", links))

    return {"/": ok(html("Home", "<p>Welcome</p>", ["/p/0"])), "/p/*": page}


# -- running crawls from tests -------------------------------------------------
REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
FAST = {
    # Politeness lifted for tests only: the servers are ours, on loopback.
    "DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
    "STEMWATCH_PROGRESS_INTERVAL": "1", "STEMWATCH_BATCH_SECONDS": "0.5",
    "DOWNLOAD_TIMEOUT": "3", "RETRY_TIMES": "1", "STEMWATCH_DETECT": "0",
}


def crawl_command(seeds, db_path, *extra, settings: dict | None = None, allow=("127.0.0.1",)) -> list[str]:
    """argv of `stemwatch crawl` for a test: our hosts allowed, delays lifted."""
    import sys

    argv = [sys.executable, "-m", "analysis.cli", "crawl", *seeds, "--db", str(db_path)]
    for host in allow:
        argv += ["--allow-host", host]
    for k, v in {**FAST, **(settings or {})}.items():
        argv += ["-s", f"{k}={v}"]
    return argv + list(extra)


def run_crawl_cli(seeds, db_path, *extra, settings: dict | None = None, allow=("127.0.0.1",), timeout=90):
    import subprocess

    return subprocess.run(
        crawl_command(seeds, db_path, *extra, settings=settings, allow=allow),
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def pages(db_path, base: str | None = None) -> dict[str, dict]:
    """Stored pages of a database by URL path (with query); with `base`
    (e.g. site.base), only that site's."""
    import sqlite3
    from urllib.parse import urlsplit

    conn = sqlite3.connect(str(db_path))
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("select * from pages order by id")]
    finally:
        conn.close()
    out = {}
    for row in rows:
        if base and not row["url"].startswith(base + "/"):
            continue
        parts = urlsplit(row["url"])
        out[parts.path + (f"?{parts.query}" if parts.query else "")] = row
    return out


def tiny_pdf(text: str, title: str = "Price list") -> bytes:
    """A one-page PDF whose page shows `text` (Helvetica, ASCII)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
