"""Serve the bundled demo sites on 127.0.0.1, one port per site.

The sites live in data/demo/sites/<slug>/ and are listed in
data/demo/sites.csv. Sitemaps and robots.txt may say {{BASE}} where an
absolute URL is needed: the port is only known when the server starts.
"""

from __future__ import annotations

import csv
import mimetypes
import posixpath
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
_TEMPLATED = {".xml", ".txt"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 drops connections under a crawl
    allow_reuse_address = True


def _handler_for(root: Path):
    class Handler(BaseHTTPRequestHandler):
        server_version = "stemwatch-demo/1"

        def log_message(self, *args):  # keep the demo's terminal for the crawl
            pass

        def _resolve(self) -> Path | None:
            path = posixpath.normpath(unquote(urlsplit(self.path).path))
            parts = [p for p in path.split("/") if p and p not in (".", "..")]
            target = root.joinpath(*parts)
            if target.is_dir():
                target = target / "index.html"
            try:
                target.resolve().relative_to(root.resolve())
            except ValueError:
                return None
            return target if target.is_file() else None

        def _send(self, head_only: bool):
            target = self._resolve()
            if target is None:
                body = b"<!doctype html><title>Not found</title><h1>Page not found</h1>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)
                return
            body = target.read_bytes()
            if target.suffix in _TEMPLATED:
                host, port = self.server.server_address[:2]
                body = body.replace(b"{{BASE}}", f"http://{host}:{port}".encode())
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype.endswith("xml"):
                ctype += "; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def do_GET(self):
            self._send(head_only=False)

        def do_HEAD(self):
            self._send(head_only=True)

    return Handler


@dataclass
class DemoSite:
    slug: str
    name: str
    url: str
    kind: str = ""
    country: str = ""
    notes: str = ""


@dataclass
class DemoSites:
    sites: list[DemoSite]
    _servers: list = field(default_factory=list, repr=False)

    def seeds(self) -> list[dict]:
        return [
            {"url": s.url, "name": s.name, "country": s.country, "notes": s.notes, "kind": s.kind, "slug": s.slug}
            for s in self.sites
        ]

    def write_seeds(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["url", "name", "country", "notes", "kind", "slug"])
            writer.writeheader()
            writer.writerows(self.seeds())
        return path

    def stop(self):
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def load_site_list(demo_dir: Path = DEMO_DIR) -> list[dict]:
    with open(demo_dir / "sites.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def start_demo_sites(demo_dir: Path = DEMO_DIR, host: str = "127.0.0.1", base_port: int = 0) -> DemoSites:
    """Start one HTTP server per demo site in background threads.

    base_port 0 picks free ports (tests); otherwise ports base_port,
    base_port + 1, ... so the demo's URLs stay the same between runs.
    """
    demo = DemoSites(sites=[])
    for i, row in enumerate(load_site_list(demo_dir)):
        root = demo_dir / "sites" / row["slug"]
        port = base_port + i if base_port else 0
        server = _Server((host, port), _handler_for(root))
        threading.Thread(target=server.serve_forever, name=f"demo-{row['slug']}", daemon=True).start()
        demo._servers.append(server)
        demo.sites.append(
            DemoSite(
                slug=row["slug"], name=row["name"], url=f"http://{host}:{server.server_address[1]}/",
                kind=row.get("kind", ""), country=row.get("country", ""), notes=row.get("notes", ""),
            )
        )
    return demo
