"""Screenshots of captured pages, and PDFs of evidence reports, by headless Chromium
with the network cut off.

A screenshot must show what the crawler captured, not what the clinic serves today,
and making it must not tell the clinic that someone is looking. So every request the
page makes is intercepted: a URL that was captured is answered with the captured
response, anything else is refused. JavaScript is off; service workers, downloads and
popups are refused; a navigation away from the page (a meta refresh, a frame
targeting the top) is aborted. Captured redirects are followed here, within the
captures: Chromium is never handed a 3xx, since Playwright does not route the request
that follows one.

Routing only sees requests. Chromium also opens connections of its own: a
`<link rel=preconnect>` opens a TCP connection that no route hears of. So the context
is offline, host names never resolve, and the browser's proxy is a loopback socket
that refuses every connection (loopback included), so whatever slips past the routes
reaches nobody.

The PDF step loads only the report and files under the bundle folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

from w3lib.url import safe_url_string

CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # No DNS at all: a <link rel=dns-prefetch> must not tell a resolver which clinic is looked at.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
INSTALL_HINT = "install Debian's Chromium (apt-get install chromium) or set STEMWATCH_CHROMIUM to its path"
# Headers of the transfer, not of the content: the capture's body is already decoded
# and whole. Cookies, HSTS and Alt-Svc would only carry state or upgrades to later pages.
DROPPED_HEADERS = frozenset({
    "content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive",
    "trailer", "te", "upgrade", "proxy-connection", "set-cookie", "set-cookie2",
    "strict-transport-security", "alt-svc",
})
DEFAULT_PORTS = {"http": 80, "https": 443}
PAPER_SIZES = ("A4", "Letter")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The report is served at this name under base_dir, so its relative image paths resolve
# there; no file of that name is read or written.
_REPORT_NAME = ".stemwatch-report-print.html"
_FOOTER = (
    '<div style="font-size:8px;font-family:sans-serif;color:#555;width:100%;'
    'padding:0 11mm;display:flex;justify-content:space-between">'
    '<span>stemwatch evidence report</span>'
    '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>'
)
_MARGINS = {"top": "10mm", "bottom": "14mm", "left": "11mm", "right": "11mm"}


class RenderError(Exception):
    """Chromium or Playwright is missing, or a page could not be rendered."""


@dataclass(frozen=True)
class Capture:
    """One response exactly as captured at crawl time; the body is already decoded of
    any content-encoding."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class ScreenshotResult:
    path: Path
    sha256: str
    width: int
    height: int
    served: list[str] = field(default_factory=list)  # URLs answered from the captures
    blocked: list[str] = field(default_factory=list)  # URLs refused


# -- pure helpers ----------------------------------------------------------------

def normalise_url(url: str) -> str:
    """The URL as a lookup key: no fragment, scheme and host in lower case, no default
    port, "/" for an empty path, and percent-encoded the way a browser sends it, so a
    capture stored by the crawler matches the request Chromium makes."""
    try:
        parts = urlsplit(safe_url_string(url.strip()))
        port = parts.port
    except ValueError:
        return url.split("#", 1)[0]
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or ("/" if netloc else "")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def capture_table(captures: Mapping[str, Capture]) -> dict[str, Capture]:
    """Captures by normalised URL. Two captures that normalise alike are a mistake in
    the caller: which one a page would get is not for the renderer to guess."""
    table: dict[str, Capture] = {}
    for url, capture in captures.items():
        key = normalise_url(url)
        if key in table and table[key] is not capture:
            raise RenderError(f"two captures for the same URL: {url}")
        table[key] = capture
    return table


@dataclass
class Redirects:
    """Where a URL leads through captured redirects."""

    chain: list[str]  # the URLs on the way, the first and the last included
    capture: Capture | None  # the capture that ends the chain; None if a hop was not captured


def _location(capture: Capture) -> str | None:
    if not 300 <= capture.status < 400:
        return None
    for name, value in capture.headers:
        if name.lower() == "location" and value.strip():
            return urljoin(capture.url, value.strip())
    return None


def follow_redirects(url: str, table: dict[str, Capture], limit: int = 10) -> Redirects:
    """Follow captured redirects from url. Chromium is never handed a redirect: it
    would fetch the target itself, past the routes (Playwright does not route the
    requests of a redirect)."""
    chain = [url]
    seen = {normalise_url(url)}
    capture = table.get(normalise_url(url))
    while capture is not None:
        target = _location(capture)
        if target is None:
            if 300 <= capture.status < 400:
                return Redirects(chain, None)  # a redirect to nowhere
            return Redirects(chain, capture)
        key = normalise_url(target)
        if key in seen or len(chain) > limit:
            return Redirects(chain, None)  # a loop, or too long
        seen.add(key)
        chain.append(target)
        capture = table.get(key)
    return Redirects(chain, None)


def fulfil_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Captured headers fit to answer a request with: transfer headers dropped, repeated
    names joined with a comma (RFC 9110, 5.3), the first spelling of a name kept."""
    merged: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if low in DROPPED_HEADERS:
            continue
        if low in spelling:
            merged[spelling[low]] += ", " + value
        else:
            spelling[low] = name
            merged[name] = value
    return merged


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise RenderError("not a PNG image")
    return struct.unpack(">II", data[16:24])


def _file_path(url: str) -> Path | None:
    """The local path a file:// URL names (symbolic links resolved), or None."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    return Path(url2pathname(parts.path)).resolve()


def file_under(url: str, base: Path) -> Path | None:
    """The file a file:// URL names, if it lies under base (after resolving symbolic
    links) and exists; None otherwise."""
    path = _file_path(url)
    if path is None or not path.is_relative_to(base.resolve()) or not path.is_file():
        return None
    return path


def chromium_path() -> str:
    """The Chromium to drive: $STEMWATCH_CHROMIUM, else /usr/bin/chromium, else
    chromium on PATH."""
    configured = os.environ.get("STEMWATCH_CHROMIUM")
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise RenderError(f"STEMWATCH_CHROMIUM={configured} is not an executable file: {INSTALL_HINT}")
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise RenderError(f"Chromium was not found: {INSTALL_HINT}")


def _unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


# -- request policy --------------------------------------------------------------

class _PagePolicy:
    """Answers every request of one page: from the captures, or refused."""

    def __init__(self, page_key: str, table: dict[str, Capture]):
        self.page_key = page_key
        self.table = table
        self.page = None
        self.started = False
        self.served: list[str] = []
        self.blocked: list[str] = []

    def _may_navigate(self, request, key: str) -> bool:
        try:
            frame = request.frame
        except Exception:  # a request of no frame (a worker): nothing to show
            return False
        if frame.page != self.page:
            return False  # a popup
        if frame.parent_frame is not None:
            return True  # a frame of the page: answered from the captures or refused
        if not self.started:
            self.started = True
            return key == self.page_key
        return False  # a meta refresh or a link targeting the top: the page stays

    def handle(self, route) -> None:
        request = route.request
        try:
            key = normalise_url(request.url)
            navigation = request.is_navigation_request()
            if navigation and not self._may_navigate(request, key):
                hops = Redirects([request.url], None)
            else:
                hops = follow_redirects(request.url, self.table)
            # A captured redirect is answered with its target's capture, under the
            # URL requested (a stylesheet's relative links resolve from there).
            for url in hops.chain[:-1]:
                _unique(self.served, url)
            capture = hops.capture
            if capture is None:
                _unique(self.blocked, hops.chain[-1])
                # ERR_ABORTED leaves the current document in place; another error would
                # replace it with Chromium's error page.
                route.abort("aborted" if navigation else "blockedbyclient")
                return
            _unique(self.served, hops.chain[-1])
            route.fulfill(status=capture.status, headers=fulfil_headers(capture.headers), body=capture.body)
        except Exception:
            # An unanswered route would hang the page until the timeout.
            _unique(self.blocked, request.url)
            _abort_quietly(route)


def _abort_quietly(route) -> None:
    try:
        route.abort("failed")
    except Exception:
        pass  # already answered, or the page is gone


def _refusing_socket() -> socket.socket:
    """A loopback socket bound but not listening: every connection to it is refused,
    and no other program can take its port while it is held."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class Renderer:
    """One headless Chromium for many pages; a fresh browser context for each page or
    PDF, closed after it. Use as a context manager."""

    def __init__(self, *, executable: str | None = None, timeout: float = 20.0):
        self.executable = executable
        self.timeout_ms = timeout * 1000
        self._playwright = None
        self._browser = None
        self._dead_proxy: socket.socket | None = None
        self._error: type[Exception] = Exception

    def __enter__(self) -> "Renderer":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        executable = self.executable or chromium_path()
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError as e:
            raise RenderError("Playwright is not installed: pip install playwright "
                              "(its browser download is not needed, Debian's Chromium is used)") from e
        self._error = Error
        self._dead_proxy = _refusing_socket()
        port = self._dead_proxy.getsockname()[1]
        try:
            self._playwright = sync_playwright().start()
            # Playwright sends loopback through the proxy too (<-loopback>), so a
            # stray connection to a 127.0.0.1 server is refused as well.
            self._browser = self._playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS),
                proxy={"server": f"http://127.0.0.1:{port}"}, timeout=self.timeout_ms,
            )
        except Error as e:
            self.close()
            raise RenderError(f"Chromium at {executable} did not start ({INSTALL_HINT}): {e}") from e

    def close(self) -> None:
        if self._browser is not None:
            try:
                self._browser.close()
            except self._error:
                pass
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if self._dead_proxy is not None:
            self._dead_proxy.close()
            self._dead_proxy = None

    def _context(self, **options):
        if self._browser is None:
            raise RenderError("the renderer is not open (use it as a context manager)")
        return self._browser.new_context(
            java_script_enabled=False, offline=True, service_workers="block", accept_downloads=False,
            locale="en-US", timezone_id="UTC", color_scheme="light", reduced_motion="reduce",
            **options,
        )

    def screenshot(self, url: str, captures: Mapping[str, Capture], out: Path, *,
                   width: int = 1280, max_height: int = 12000) -> ScreenshotResult:
        """A full-page PNG of the captured page at url, clipped to max_height, rendered
        from the captures alone."""
        table = capture_table(captures)
        if normalise_url(url) not in table:
            raise RenderError(f"no capture of the page itself: {url}")
        hops = follow_redirects(url, table)
        if hops.capture is None:
            raise RenderError(f"{url} redirects to {hops.chain[-1]}, which was not captured (or loops)")
        # Open the end of the redirect chain, as a browser would have shown it.
        target = hops.chain[-1]
        policy = _PagePolicy(normalise_url(target), table)
        policy.served.extend(hops.chain[:-1])
        context = self._context(viewport={"width": width, "height": min(900, max_height)}, device_scale_factor=1)
        try:
            context.route("**/*", policy.handle)
            page = context.new_page()
            policy.page = page
            try:
                page.goto(target, wait_until="load", timeout=self.timeout_ms)
                # Evaluation runs even with the page's scripts off.
                height = page.evaluate(
                    "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)")
                clip = {"x": 0, "y": 0, "width": width, "height": max(1, min(int(height), max_height))}
                data = page.screenshot(full_page=True, clip=clip, type="png", animations="disabled",
                                       caret="hide", timeout=self.timeout_ms)
            except self._error as e:
                raise RenderError(f"{url} did not render: {e}") from e
        finally:
            context.close()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        shot_width, shot_height = png_size(data)
        return ScreenshotResult(path=out, sha256=hashlib.sha256(data).hexdigest(), width=shot_width,
                                height=shot_height, served=policy.served, blocked=policy.blocked)

    def pdf(self, html: str, out: Path, *, base_dir: Path, paper: str = "A4") -> Path:
        """Print an HTML document to PDF: backgrounds printed, page numbers in the footer.
        Relative references resolve under base_dir, and only files there are loaded."""
        if paper not in PAPER_SIZES:
            raise RenderError(f"paper must be one of {', '.join(PAPER_SIZES)}, not {paper!r}")
        base = Path(base_dir).resolve()
        doc = base / _REPORT_NAME
        body = html.encode("utf-8")

        def handle(route) -> None:
            request = route.request
            try:
                if request.is_navigation_request() and _file_path(request.url) == doc:
                    route.fulfill(status=200, headers={"Content-Type": "text/html; charset=utf-8"}, body=body)
                    return
                path = None if request.is_navigation_request() else file_under(request.url, base)
                if path is None:
                    route.abort("aborted" if request.is_navigation_request() else "blockedbyclient")
                    return
                route.fulfill(path=path)
            except Exception:
                _abort_quietly(route)

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        context = self._context()
        try:
            context.route("**/*", handle)
            page = context.new_page()
            try:
                page.goto(doc.as_uri(), wait_until="load", timeout=self.timeout_ms)
                page.emulate_media(media="print")
                page.pdf(path=out, format=paper, print_background=True, display_header_footer=True,
                         header_template="<span></span>", footer_template=_FOOTER, margin=_MARGINS,
                         outline=True, tagged=True)
            except self._error as e:
                raise RenderError(f"the report could not be printed: {e}") from e
        finally:
            context.close()
        return out
