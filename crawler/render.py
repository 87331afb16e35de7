"""Pages that need a browser: rendered by Debian's Chromium through scrapy-playwright,
only where needed.

Many clinic sites are made with site builders that write their text with
JavaScript; the HTML the server sends holds little more than scripts. Such a page
is rendered when:

- the crawl asks for it (``stemwatch crawl --render js``: every page);
- its seed asks for it (a ``render`` column of ``js`` in the seed CSV; ``off``
  never renders that site);
- the auto rule judges it (``needs_rendering``): an HTML page with fewer than
  ``STEMWATCH_RENDER_AUTO_WORDS`` visible words that runs JavaScript (a
  ``<script>`` with a ``src`` or with code; JSON data blocks and templates do not
  count). It is fetched again with rendering: a second request, ``dont_filter``,
  marked ``stemwatch_render="auto"``; the rest of the crawl stays plain.

``RenderingDownloadHandler`` takes the http and https schemes only when rendering
can happen at all (``configure``); it hands plain requests to Scrapy's own HTTP
handler and imports scrapy-playwright only for the first page to render, so a
crawl that renders nothing never starts Playwright or a browser. With
``STEMWATCH_RENDER=off``, or without Chromium or scrapy-playwright, the handler is
not installed and the crawl is the plain one.

The browser reaches the network only through this module. Chromium's own
connections go to a loopback socket that refuses them (a proxy that is not there,
loopback included) and it resolves no host name, so what it would fetch by
itself (a preconnect, a WebSocket, a popup, a service worker) reaches nobody.
Every request a page makes (the page, its scripts, XHR and fetch, iframes) is
routed here: refused when ``crawler.netguard`` refuses its host (after DNS, with
the crawl's ``STEMWATCH_ALLOW_HOSTS``) and counted in ``stemwatch/render/blocked``;
images, media and fonts are refused for speed; anything else is fetched by
Playwright's HTTP client one hop at a time, each redirect target checked again,
and handed to the page. A redirect of the page itself goes back to Scrapy as the
3xx the server sent, so RedirectMiddleware, the address guard and robots.txt
treat it as they treat any redirect.

What the server sent for the page is kept in ``request.meta["stemwatch_hops"]``
for the capture (crawler/capture.py) and the page row (``raw_sha256``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import shutil
import socket
import time
from contextlib import suppress
from urllib.parse import urljoin, urlsplit

from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.utils.misc import build_from_crawler, load_object

from crawler.netguard import allowed_hosts, check_host, check_resolved, normalise_host, parse_ip

logger = logging.getLogger(__name__)

MODES = ("off", "auto", "js")
HANDLER = "crawler.render.RenderingDownloadHandler"
PLAIN_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
CONTEXT = "stemwatch"
# The flags Chromium needs on this kind of machine, and no DNS of its own: every
# request is fetched for it after the guard (see the module's docstring).
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Not needed for a page's text; refused before any fetch.
SKIPPED_TYPES = frozenset({"image", "media", "font"})
RENDERED_TYPES = ("text/html", "application/xhtml+xml")
INSTALL_HINT = ("install Debian's Chromium (apt-get install chromium) or set STEMWATCH_CHROMIUM to its path, "
                "and scrapy-playwright (pip install scrapy-playwright)")
META = "stemwatch_render"  # why a request is rendered: crawl, seed or auto
HOPS = "stemwatch_hops"  # what the server sent the browser for the page itself

_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_SCRIPT_TYPE = re.compile(rb"""\btype\s*=\s*["']?\s*([^"'\s>]*)""", re.I)
_SCRIPT_SRC = re.compile(rb"\bsrc\s*=", re.I)
_JS_TYPES = frozenset({
    b"", b"module", b"text/javascript", b"application/javascript", b"application/x-javascript",
    b"text/ecmascript", b"application/ecmascript", b"text/jscript",
})


# -- when to render ------------------------------------------------------------------
def render_mode(settings) -> str:
    mode = (settings.get("STEMWATCH_RENDER") or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"STEMWATCH_RENDER is {mode!r}; it takes one of {', '.join(MODES)}")
    return mode


def seed_render(seed: dict) -> str | None:
    """A seed's own wish: 'js' (render every page of its site), 'off' (never), or None."""
    value = (seed.get("render") or "").strip().lower()
    if value in ("js", "javascript", "yes", "1", "true"):
        return "js"
    if value in ("off", "no", "0", "false", "none"):
        return "off"
    return None


def runs_javascript(body: bytes) -> bool:
    """Whether an HTML body has a script the browser would run: a <script> with a src,
    or with code in it, of a JavaScript type (JSON data blocks, templates and the like
    are not run)."""
    for match in _SCRIPT.finditer(body):
        attrs, code = match.group(1), match.group(2)
        kind = _SCRIPT_TYPE.search(attrs)
        if kind is not None and kind.group(1).lower() not in _JS_TYPES:
            continue
        if _SCRIPT_SRC.search(attrs) or code.strip():
            return True
    return False


def needs_rendering(text: str, body: bytes, max_words: int) -> bool:
    """The auto rule: fewer than max_words visible words, and a script to run."""
    if max_words <= 0:
        return False
    return len((text or "").split()) < max_words and runs_javascript(body)


# -- what rendering needs ------------------------------------------------------------
def chromium_executable(settings) -> str | None:
    """STEMWATCH_CHROMIUM (setting or environment), else /usr/bin/chromium, else chromium on PATH."""
    configured = settings.get("STEMWATCH_CHROMIUM") or os.environ.get("STEMWATCH_CHROMIUM")
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable(settings) -> str | None:
    """Why pages cannot be rendered here, or None. Imports nothing."""
    if importlib.util.find_spec("scrapy_playwright") is None:
        return f"scrapy-playwright is not installed ({INSTALL_HINT})"
    if chromium_executable(settings) is None:
        configured = settings.get("STEMWATCH_CHROMIUM") or os.environ.get("STEMWATCH_CHROMIUM")
        if configured:
            return f"STEMWATCH_CHROMIUM={configured} is not an executable file ({INSTALL_HINT})"
        return f"Chromium was not found ({INSTALL_HINT})"
    return None


def configure(settings) -> None:
    """Before the crawler starts (ClinicsSpider.update_settings): take the http and
    https schemes and set scrapy-playwright's settings, only if a page may be
    rendered and can be. Settings given on the command line win."""
    if render_mode(settings) == "off" or unavailable(settings) is not None:
        return
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    for scheme in ("http", "https"):
        handlers.setdefault(scheme, HANDLER)
    settings.set("DOWNLOAD_HANDLERS", handlers, priority="spider")
    pages = max(1, settings.getint("STEMWATCH_RENDER_PAGES", 2))
    timeout_ms = max(1.0, settings.getfloat("STEMWATCH_RENDER_TIMEOUT", 30)) * 1000
    defaults = {
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "executable_path": chromium_executable(settings), "headless": True,
            "args": list(CHROMIUM_FLAGS), "timeout": timeout_ms,
        },
        # one browser, one context, a few pages at a time
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": pages,
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": timeout_ms,
        # what a download (a PDF opened in the browser) may take to start and finish
        "PLAYWRIGHT_DOWNLOAD_TIMEOUT": timeout_ms,
    }
    for name, value in defaults.items():
        settings.set(name, value, priority="spider")


# -- the guard, for the browser's requests ------------------------------------------
class BrowserGuard:
    """crawler.netguard's rules for a request the browser makes: IP literals and
    local names at once, other names on the addresses they resolve to."""

    def __init__(self, allow: frozenset[str]):
        self.allow = allow
        self._resolved: dict[tuple[str, int], list[str]] = {}

    @staticmethod
    def scheme_problem(url: str) -> str | None:
        scheme = urlsplit(url).scheme.lower()
        return None if scheme in ("http", "https") else f"scheme {scheme!r} is not fetched"

    async def problem(self, url: str) -> str | None:
        """Why the browser must not fetch url, or None."""
        bad_scheme = self.scheme_problem(url)
        if bad_scheme:
            return bad_scheme
        parts = urlsplit(url)
        host = parts.hostname or ""
        problem = check_host(host, self.allow)
        if problem or normalise_host(host) in self.allow or parse_ip(host) is not None:
            return problem
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "invalid port"
        key = (normalise_host(host), port)
        addresses = self._resolved.get(key)
        if addresses is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(key[0], port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return f"dns: cannot resolve {key[0]}"
            addresses = self._resolved[key] = sorted({info[4][0] for info in infos})
        for address in addresses:
            problem = check_resolved(host, address, self.allow)
            if problem:
                return problem
        return None


class RenderUnavailable(Exception):
    """The browser could not be started: the page is fetched as the server sends it
    (not an IgnoreRequest, which would drop the page)."""


class RenderTimeout(Exception):
    """A page that took longer than STEMWATCH_RENDER_TIMEOUT to render."""


def _header_pairs(headers_array: list[dict]) -> list[tuple[str, str]]:
    return [(h["name"], h["value"]) for h in headers_array]


class _Traffic:
    """A rendered page's requests in flight (every one passes the route)."""

    def __init__(self):
        self.in_flight = 0
        self.last_change = time.monotonic()

    def start(self):
        self.in_flight += 1
        self.last_change = time.monotonic()

    def end(self):
        self.in_flight -= 1
        self.last_change = time.monotonic()


# The network counts as quiet after this long with no request in flight: long enough
# for a script to start the next fetch when the last one ends, far shorter than the
# half second of Playwright's "networkidle".
QUIET_SECONDS = 0.2


async def _settle(traffic: _Traffic, timeout: float) -> None:
    """After the load event: wait until the page's requests are done (the data a
    script fetches), but no longer than timeout; a page that never goes quiet
    (polling, a chat widget) is taken as it is then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if traffic.in_flight <= 0 and time.monotonic() - traffic.last_change >= QUIET_SECONDS:
            return
        await asyncio.sleep(0.05)


class RenderingDownloadHandler:
    """Scrapy's HTTP handler for plain requests; for requests marked ``playwright``,
    scrapy-playwright's handler, started on first use, with the routes above."""

    lazy = False

    def __init__(self, crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.plain = build_from_crawler(load_object(settings.get("STEMWATCH_PLAIN_HANDLER") or PLAIN_HANDLER),
                                        crawler)
        self.guard = BrowserGuard(allowed_hosts(settings.get("STEMWATCH_ALLOW_HOSTS")))
        self.timeout = max(1.0, settings.getfloat("STEMWATCH_RENDER_TIMEOUT", 30))
        self.settle = max(0.0, settings.getfloat("STEMWATCH_RENDER_SETTLE", 2.0))
        self.max_redirects = settings.getint("REDIRECT_MAX_TIMES", 5)
        self.max_size = settings.getint("DOWNLOAD_MAXSIZE") or None
        self.fetch_timeout_ms = max(1.0, settings.getfloat("DOWNLOAD_TIMEOUT", 30)) * 1000
        self.context_kwargs = {
            "user_agent": settings.get("USER_AGENT"),
            "java_script_enabled": True,
            # service workers fetch outside the page's routes
            "service_workers": "block",
            # as Scrapy's own client: certificates are not what a crawl checks
            "ignore_https_errors": True,
            "locale": "en-US",
        }
        self.slots = asyncio.Semaphore(max(1, settings.getint("STEMWATCH_RENDER_PAGES", 2)))
        self.browser = None  # scrapy-playwright's handler, once started
        self.broken: str | None = None
        self._starting = asyncio.Lock()
        self._dead_proxy: socket.socket | None = None

    @classmethod
    def from_crawler(cls, crawler):
        # Never NotConfigured: for a download handler that would switch off the scheme
        # itself. A crawl that cannot render does not install this handler (configure).
        return cls(crawler)

    async def download_request(self, request):
        if not request.meta.get("playwright"):
            return await self.plain.download_request(request)
        return await self._render(request)

    async def close(self) -> None:
        await self.plain.close()
        if self.browser is not None:
            with suppress(Exception):  # a browser that died already
                await self.browser.close()
            self.browser = None
        if self._dead_proxy is not None:
            self._dead_proxy.close()
            self._dead_proxy = None

    # -- the browser -------------------------------------------------------------------
    async def _browser(self):
        async with self._starting:
            if self.broken:
                raise RenderUnavailable(self.broken)
            if self.browser is not None:
                return self.browser
            started = time.monotonic()
            try:
                from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

                handler = ScrapyPlaywrightDownloadHandler.from_crawler(self.crawler)
                # A loopback socket bound but not listening: whatever Chromium tries to
                # reach by itself is refused (<-loopback>: loopback too).
                self._dead_proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._dead_proxy.bind(("127.0.0.1", 0))
                port = self._dead_proxy.getsockname()[1]
                options = handler.config.launch_options
                options["args"] = [*options.get("args", ()), f"--proxy-server=http://127.0.0.1:{port}",
                                   "--proxy-bypass-list=<-loopback>"]
                # Started here, not at engine start: a crawl that renders nothing never
                # runs Playwright. These are the steps of the handler's own start.
                await handler._launch()
                await handler._maybe_launch_browser()
            except Exception as e:
                self.broken = f"rendering is off: the browser did not start ({type(e).__name__}: {e})"[:500]
                logger.error("%s; pages are crawled as the server sends them (%s)", self.broken, INSTALL_HINT)
                self.stats.set_value("stemwatch/render/unavailable", self.broken)
                raise RenderUnavailable(self.broken) from e
            self.browser = handler
            self.stats.set_value("stemwatch/render/browser_start_seconds", round(time.monotonic() - started, 3))
            logger.info("Chromium started for rendering (%s)", handler.config.launch_options.get("executable_path"))
            return handler

    async def _render(self, request):
        browser = await self._browser()
        meta = request.meta
        traffic = _Traffic()
        async with self.slots:  # the render timeout starts when the page has a slot
            meta.update({
                "playwright_context": CONTEXT,
                "playwright_context_kwargs": self.context_kwargs,
                "playwright_include_page": True,  # closed here, whatever happens
                "playwright_page_init_callback": self._page_init(request, traffic),
                "playwright_page_methods": [_page_method(self._settle(request, traffic))],
                HOPS: [],
            })
            for key in ("stemwatch_render_blocked", "stemwatch_render_raw"):
                meta.pop(key, None)
            started = time.monotonic()
            try:
                response = await asyncio.wait_for(browser.download_request(request), self.timeout)
            except asyncio.TimeoutError:
                raise RenderTimeout(f"render timeout: no page in {self.timeout:g}s") from None
            except Exception:
                blocked = meta.pop("stemwatch_render_blocked", None)
                if blocked:
                    from crawler.middlewares import BlockedRequest

                    raise BlockedRequest(blocked) from None
                raise
            finally:
                page = meta.pop("playwright_page", None)
                if page is not None:
                    with suppress(Exception):
                        await page.close()
                for key in ("playwright_page_init_callback", "playwright_page_methods", "playwright_include_page",
                            "playwright_context_kwargs"):
                    meta.pop(key, None)
        raw = meta.pop("stemwatch_render_raw", None)
        if raw is not None:
            # Not a page to render (a redirect, or not HTML): what the server sent.
            self.stats.inc_value(f"stemwatch/render/{raw['why']}")
            return self._raw_response(request, meta[HOPS][-1])
        self.stats.inc_value("stemwatch/render/pages")
        self.stats.inc_value("stemwatch/render/seconds", round(time.monotonic() - started, 3))
        return response

    def _settle(self, request, traffic: _Traffic):
        async def settle(page) -> None:
            if "stemwatch_render_raw" not in request.meta:  # nothing to wait for on an empty stand-in
                await _settle(traffic, self.settle)
        return settle

    @staticmethod
    def _raw_response(request, hop: dict):
        headers = Headers([(k, v) for k, v in hop["headers"]
                           if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")])
        cls = responsetypes.from_args(headers=headers, url=hop["url"], body=hop["body"])
        return cls(url=hop["url"], status=hop["status"], headers=headers, body=hop["body"], request=request,
                   flags=["stemwatch-render-raw"])

    # -- routes ------------------------------------------------------------------------
    def _page_init(self, request, traffic: _Traffic):
        async def init(page, _request) -> None:
            async def handle(route) -> None:
                traffic.start()
                try:
                    await self._route(route, page, request)
                finally:
                    traffic.end()

            # after scrapy-playwright's own route, so this one is asked first
            await page.route("**", handle)
        return init

    async def _route(self, route, page, request) -> None:
        from playwright.async_api import Error as PlaywrightError

        pw = route.request
        try:
            main = pw.is_navigation_request() and pw.frame.parent_frame is None
        except PlaywrightError:
            main = False
        try:
            problem = await self.guard.problem(pw.url)
            if problem and problem.startswith("dns:"):
                self.stats.inc_value("stemwatch/render/unresolved")
                await route.abort("namenotresolved")
                return
            if problem:
                self._blocked(pw.url, problem, request, main)
                await route.abort("blockedbyclient")
                return
            if pw.resource_type in SKIPPED_TYPES and not main:
                self.stats.inc_value("stemwatch/render/skipped")
                await route.abort("blockedbyclient")
                return
            url = pw.url
            response = await route.fetch(max_redirects=0, timeout=self.fetch_timeout_ms)
            for _ in range(self.max_redirects + 1):
                body = await response.body()
                if self.max_size and len(body) > self.max_size:
                    self.stats.inc_value("stemwatch/render/too_large")
                    await route.abort("failed")
                    return
                location = response.headers.get("location")
                redirect = 300 <= response.status < 400 and location
                if main:
                    request.meta[HOPS].append({
                        "url": url, "status": response.status, "headers": _header_pairs(response.headers_array),
                        "body": body, "method": pw.method,
                        "request_headers": _header_pairs(await pw.headers_array()),
                    })
                    mtype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
                    if redirect or (mtype and mtype not in RENDERED_TYPES):
                        # the page itself is not rendered: Scrapy gets what the server sent
                        request.meta["stemwatch_render_raw"] = {"why": "redirects" if redirect else "not_html"}
                        await route.fulfill(status=200, body=b"", content_type="text/plain")
                        return
                if not redirect:
                    await route.fulfill(response=response, body=body)
                    return
                target = urljoin(url, location)
                problem = await self.guard.problem(target)
                if problem:
                    self._blocked(target, f"{problem} (after a redirect)", request, main)
                    await route.abort("blockedbyclient")
                    return
                keep = response.status in (307, 308)
                headers = {k: v for k, v in (await pw.all_headers()).items()
                           if k.lower() not in ("host", "content-length", "cookie")}
                response = await page.context.request.fetch(
                    target, method=pw.method if keep else "GET", headers=headers,
                    data=pw.post_data_buffer if keep else None, max_redirects=0, timeout=self.fetch_timeout_ms)
                url = target
            self.stats.inc_value("stemwatch/render/redirect_loops")
            await route.abort("failed")
        except PlaywrightError as e:
            # a fetch that failed, or a page already closed: the page goes on without it
            logger.debug("browser request %s failed: %s", pw.url, e)
            with suppress(PlaywrightError):
                await route.abort("failed")

    def _blocked(self, url: str, problem: str, request, main: bool) -> None:
        self.stats.inc_value("stemwatch/render/blocked")
        logger.info("blocked a browser request to %s from %s: %s", url, request.url, problem)
        if main:
            request.meta["stemwatch_render_blocked"] = f"blocked: {problem}"


def _page_method(function, *args):
    from scrapy_playwright.page import PageMethod

    return PageMethod(function, *args)
