"""The `clinics` spider: fetch clinic sites within their scope, extract text.

It only fetches and extracts; storage and detection happen in the pipeline.
Every response becomes a PageItem and so does every failure (DNS, timeout,
refused, reset, blocked address, too large, redirect loop), with its error.

    scrapy crawl clinics -a seeds=data/seeds.csv -s STEMWATCH_DB=crawl.db
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots
from twisted.internet.error import (
    ConnectError,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawler.seeds import load_seeds
from analysis.store.sites import site_key
from crawler.urls import canonicalize
from analysis.detect.inputs import page_input
from analysis.models import KEPT_HEADERS
from analysis.extract.content import ContentError, read_body
from crawler.capture import META_KEY
from crawler.items import PageItem, ResourceItem
from crawler.dns import blocked_reason
from crawler import render

# Links to these are recorded but never fetched: they are not pages.
SKIP_EXTENSIONS = {
    "jpg", "jpeg", "png", "gif", "webp", "svg", "ico", "bmp", "tif", "tiff", "avif",
    "mp4", "m4v", "mov", "avi", "wmv", "webm", "mkv", "mp3", "wav", "ogg", "m4a", "flac",
    "zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "tar", "exe", "dmg", "msi", "apk", "iso",
    "css", "js", "json", "woff", "woff2", "ttf", "eot", "otf",
    "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "rtf", "ics", "vcf",
}
MAX_SITEMAPS_PER_SITE = 10  # sitemaps and sitemap indexes read per site: a trap limit
_NUMERIC_SEGMENT = re.compile(r"^[\d\-_.:]+$")


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def url_pattern(url: str) -> str:
    """URLs that differ only in numbers or query values: calendars
    (/events/2031/05, ?month=2031-05) and pagination (?page=7) share one."""
    parts = urlsplit(url)
    segments = ["0" if _NUMERIC_SEGMENT.match(s) else s for s in parts.path.split("/")]
    keys = sorted({q.split("=", 1)[0] for q in parts.query.split("&") if q})
    return f"{parts.netloc}{'/'.join(segments)}?{'&'.join(keys)}"


def describe_failure(failure) -> str:
    """A short error for a failed request, from the exception it raised."""
    exc = failure.value
    request = getattr(failure, "request", None)
    host = urlsplit(request.url).hostname if request is not None else ""
    if failure.check(IgnoreRequest):
        return str(exc) or "ignored"
    if failure.check(DNSLookupError, CannotResolveHostError):
        reason = blocked_reason(host or "")
        return reason or f"dns: cannot resolve {host}"
    if failure.check(TimeoutError, TCPTimedOutError, DownloadTimeoutError):
        return "timeout: " + (str(exc).strip() or "no response in time")
    if failure.check(ConnectionRefusedError, DownloadConnectionRefusedError):
        return "connection refused"
    if failure.check(ResponseDataLossError):
        return f"incomplete response: {exc}"[:300]
    if failure.check(DownloadCancelledError):
        return f"download cancelled: {exc}"[:300]
    if failure.check(ConnectionLost, ResponseFailed, ResponseNeverReceived, DownloadFailedError):
        cause = exc.__cause__ or exc
        reasons = getattr(cause, "reasons", None)
        detail = "; ".join(str(r.value) for r in reasons) if reasons else str(cause)
        return f"connection lost: {detail}"[:300]
    if failure.check(ConnectError):
        return f"connect failed: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def fill_contact(settings) -> None:
    """USER_AGENT names the contact (STEMWATCH_CONTACT, e.g. from -s or --contact)."""
    ua = settings.get("USER_AGENT") or ""
    if "%(contact)s" in ua:
        contact = settings.get("STEMWATCH_CONTACT") or "unknown"
        settings.set("USER_AGENT", ua % {"contact": contact}, priority=settings.getpriority("USER_AGENT"))


class ClinicsSpider(scrapy.Spider):
    name = "clinics"

    def __init__(self, seeds: str | None = None, seed_list: list[dict] | None = None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if seed_list is None:
            if not seeds:
                raise ValueError("clinics needs seeds: -a seeds=FILE.csv or -a seeds=URL[,URL...]")
            seed_list, problems = load_seeds([s for s in seeds.split(",") if s.strip()])
            for p in problems:
                self.logger.warning("seed: %s", p)
        self.seeds = seed_list
        self.sites = {s.get("site") or site_key(s["url"]): s for s in seed_list}
        self.seen: set[str] = set()  # canonical URLs scheduled or stored
        self.per_site: Counter = Counter()  # page requests per site
        self.per_pattern: Counter = Counter()
        self.sitemaps_per_site: Counter = Counter()
        self.frontier: list[dict] = []  # requests to resume with (set by the pipeline)
        self._site_cache: dict[str, str] = {}
        self.crawl_id = None

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        s = crawler.settings
        spider.max_pages = s.getint("STEMWATCH_MAX_PAGES_PER_SITE", 200)
        spider.max_depth = s.getint("DEPTH_LIMIT", 0)
        spider.max_per_pattern = s.getint("STEMWATCH_MAX_PER_PATTERN", 50)
        spider.max_url_length = s.getint("URLLENGTH_LIMIT", 2083)
        spider.use_sitemaps = s.getbool("STEMWATCH_SITEMAPS", True)
        spider.sitemap_maxsize = s.getint("DOWNLOAD_MAXSIZE")
        spider.page_resources = s.getbool("STEMWATCH_PAGE_RESOURCES")
        spider.max_resources = s.getint("STEMWATCH_PAGE_RESOURCES_MAX", 30)
        spider.render_mode = render.render_mode(s)
        spider.auto_words = s.getint("STEMWATCH_RENDER_AUTO_WORDS", 25)
        # why pages cannot be rendered here (said once, when a page would be)
        spider.render_problem = render.unavailable(s) if spider.render_mode != "off" else None
        spider.render_warned = False
        return spider

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        fill_contact(settings)
        render.configure(settings)  # only when a page may be rendered: plain crawls stay as they are

    # -- resume --------------------------------------------------------------
    def prime(self, stored: list[tuple[str, str]], frontier: list[dict]):
        """Pages already stored (url, site) are not fetched again; frontier
        (dicts of url, site, depth, referer) is scheduled at start."""
        for url, site in stored:
            self.seen.add(url)
            self.per_site[site] += 1
            self.per_pattern[url_pattern(url)] += 1
        self.frontier = frontier

    # -- requests --------------------------------------------------------------
    def site_of(self, url: str) -> str:
        """site_key, cached per scheme://host:port (a crawl sees few hosts)."""
        origin = url[: url.find("/", url.find("//") + 2) % (len(url) + 1)]
        key = self._site_cache.get(origin)
        if key is None:
            key = self._site_cache[origin] = site_key(url)
        return key

    def in_scope(self, url: str) -> str | None:
        if not url.startswith(("http://", "https://")):
            return None
        key = self.site_of(url)
        return key if key in self.sites else None

    def page_request(self, url: str, depth: int, referer: str | None = None, site: str | None = None,
                     canonical: bool = False):
        """A request for a page, or None if it is out of scope, seen, over a
        limit or not a page at all. `canonical`: url is canonicalised already."""
        canon = url if canonical else canonicalize(url)
        if canon in self.seen:
            return None
        site = site or self.in_scope(canon)
        if site is None:
            return None
        stats = self.crawler.stats
        path = urlsplit(canon).path.lower()
        ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
        if ext in SKIP_EXTENSIONS:
            stats.inc_value("stemwatch/skipped/not_a_page")
            return None
        if self.max_depth and depth > self.max_depth:
            stats.inc_value("stemwatch/skipped/depth")
            return None
        if len(canon) > self.max_url_length:
            stats.inc_value("stemwatch/skipped/url_length")
            return None
        if not self.admit(canon, site):
            return None
        headers = {"Referer": referer} if referer else None
        meta = {"site": site, "depth": depth, "stemwatch_kind": "page", "download_slot": site}
        reason = self.render_reason(site)
        if reason and self.can_render():
            meta.update({"playwright": True, render.META: reason})
        return scrapy.Request(
            canon, callback=self.parse, errback=self.failed, dont_filter=True, headers=headers, meta=meta,
        )

    # -- rendering -------------------------------------------------------------
    def render_reason(self, site: str) -> str | None:
        """Why every page of a site is rendered ('crawl': --render js, 'seed': its
        render column), or None."""
        wish = render.seed_render(self.sites.get(site) or {})
        if self.render_mode == "off" or wish == "off":
            return None
        if self.render_mode == "js":
            return "crawl"
        return "seed" if wish == "js" else None

    def auto_renders(self, site: str) -> bool:
        return (self.render_mode == "auto" and self.auto_words > 0
                and render.seed_render(self.sites.get(site) or {}) != "off")

    def can_render(self) -> bool:
        if self.render_problem and not self.render_warned:
            self.render_warned = True
            self.logger.warning("rendering is off: %s; pages are crawled as the server sends them",
                                self.render_problem)
        return self.render_problem is None

    def render_request(self, response, item: PageItem):
        """The page again, rendered (the auto rule judged it): what the server sent the
        first time goes along, to be stored as it is if rendering fails."""
        request = response.request
        plain = {
            "url": response.url, "status": response.status, "body": response.body,
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, vs in response.headers.items() for v in vs],
            "capture": response.meta.get(META_KEY),
        }
        meta = {key: request.meta[key] for key in ("site", "depth", "download_slot", "redirect_urls")
                if key in request.meta}
        meta.update({"stemwatch_kind": "page", "playwright": True, render.META: "auto",
                     "stemwatch_url": item["url"], "stemwatch_plain": plain})
        self.crawler.stats.inc_value("stemwatch/render/auto")
        referer = request.headers.get("Referer")
        return scrapy.Request(response.url, callback=self.parse, errback=self.failed, dont_filter=True,
                              headers={"Referer": referer} if referer else None, meta=meta, priority=10)

    def render_failed(self, failure):
        """A page whose rendering failed: what the server sent, with the reason."""
        request = failure.request
        reason = describe_failure(failure)
        self.crawler.stats.inc_value("stemwatch/render/failed")
        self.logger.warning("cannot render %s (%s): stored as the server sent it", request.url, reason)
        plain = request.meta.get("stemwatch_plain")
        meta = {k: v for k, v in request.meta.items()
                if not k.startswith(("playwright", "stemwatch_plain", render.HOPS))}
        meta["stemwatch_render_error"] = reason
        if plain is None:
            # rendered from the start: fetched again, plainly
            yield request.replace(meta=meta, dont_filter=True, priority=10)
            return
        meta[META_KEY] = plain["capture"]
        replay = request.replace(url=plain["url"], meta=meta)
        cls = responsetypes.from_args(headers=Headers(plain["headers"]), url=plain["url"], body=plain["body"])
        yield from self.parse(cls(url=plain["url"], status=plain["status"], headers=Headers(plain["headers"]),
                                  body=plain["body"], request=replay))

    def admit(self, canon: str, site: str) -> bool:
        """The page caps: whether a page that passed every other check is requested
        (and counted). A distributed crawl counts in Redis instead."""
        stats = self.crawler.stats
        if self.per_site[site] >= self.max_pages:
            stats.inc_value("stemwatch/skipped/site_cap")
            return False
        pattern = url_pattern(canon)
        if self.max_per_pattern and self.per_pattern[pattern] >= self.max_per_pattern:
            stats.inc_value("stemwatch/skipped/pattern_cap")
            return False
        self.seen.add(canon)
        self.per_site[site] += 1
        self.per_pattern[pattern] += 1
        return True

    async def start(self):
        for entry in self.frontier:
            req = self.page_request(entry["url"], entry.get("depth") or 0, entry.get("referer"), entry.get("site"))
            if req is not None:
                yield req
        for seed in self.seeds:
            for req in self.seed_requests(seed):
                yield req

    def seed_requests(self, seed: dict):
        """A seed's pages, its robots.txt and its sitemap."""
        site = seed.get("site") or site_key(seed["url"])
        for url in [seed["url"], *seed.get("extra_urls", [])]:
            req = self.page_request(url, 0, site=site)
            if req is not None:
                yield req
        if self.use_sitemaps:
            base = "{0.scheme}://{0.netloc}".format(urlsplit(seed["url"]))
            yield scrapy.Request(
                base + "/robots.txt", callback=self.parse_robots, errback=self.aux_failed,
                dont_filter=True, priority=5,
                meta={"site": site, "stemwatch_kind": "robots", "dont_obey_robotstxt": True,
                      "download_slot": site},
            )
            req = self.sitemap_request(base + "/sitemap.xml", site)
            if req is not None:
                yield req

    def admit_sitemap(self, url: str, site: str) -> bool:
        if self.sitemaps_per_site[site] >= MAX_SITEMAPS_PER_SITE:
            return False
        self.sitemaps_per_site[site] += 1
        return True

    def sitemap_request(self, url: str, site: str):
        if self.in_scope(url) != site or not self.admit_sitemap(url, site):
            return None
        return scrapy.Request(
            url, callback=self.parse_sitemap, errback=self.aux_failed, dont_filter=True, priority=5,
            meta={"site": site, "stemwatch_kind": "sitemap", "depth_reset": True, "depth": 0,
                  "download_slot": site},
        )

    # -- callbacks -------------------------------------------------------------
    def parse_robots(self, response):
        if response.status != 200:
            return
        site = response.meta["site"]
        for url in sitemap_urls_from_robots(response.body, base_url=response.url):
            if canonicalize(url) == canonicalize(response.urljoin("/sitemap.xml")):
                continue  # fetched anyway
            req = self.sitemap_request(url, site)
            if req is not None:
                yield req

    def parse_sitemap(self, response):
        if response.status != 200:
            return
        site = response.meta["site"]
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.sitemap_maxsize)
            except Exception:
                self.crawler.stats.inc_value("stemwatch/sitemap_errors")
                return
        try:
            sitemap = Sitemap(body)
        except Exception:
            self.crawler.stats.inc_value("stemwatch/sitemap_errors")
            return
        self.crawler.stats.inc_value("stemwatch/sitemaps")
        for entry in sitemap:
            loc = (entry.get("loc") or "").strip()
            if not loc:
                continue
            loc = response.urljoin(loc)  # lenient: sitemaps should hold absolute URLs
            if sitemap.type == "sitemapindex":
                req = self.sitemap_request(loc, site)
            else:
                req = self.page_request(loc, 1, response.url)
                if req is not None:
                    self.crawler.stats.inc_value("stemwatch/from_sitemap")
            if req is not None:
                yield req

    def base_item(self, request, **fields) -> PageItem:
        capture = request.meta.get(META_KEY) or {}
        item = PageItem(
            site=request.meta.get("site") or site_key(request.url),
            url=request.meta.get("stemwatch_url") or canonicalize(request.meta.get("redirect_urls", [request.url])[0]),
            # the capture's time when there is one, so the page and its WARC record agree
            fetched_at=capture["date"][:19] + "Z" if capture else utcnow(),
            warc_file=capture.get("file"), warc_offset=capture.get("offset"),
            warc_length=capture.get("length"), warc_record_id=capture.get("record_id"),
            depth=request.meta.get("depth", 0),
            referer=(request.headers.get("Referer") or b"").decode("latin-1") or None,
            final_url=request.url,
            status=None, content_type=None, size=None, title=None, text=None,
            detector_input=None, error=None, headers=None, body=None, links=[],
            rendered=0, render_reason=request.meta.get(render.META),
            render_error=request.meta.get("stemwatch_render_error"), raw_body=None,
            rendered_record_id=capture.get("rendered_record_id"),
        )
        item.update(fields)
        return item

    def parse(self, response):
        request = response.request
        ctype = (response.headers.get("Content-Type") or b"").decode("latin-1")
        headers = {
            k.decode("latin-1").lower(): b", ".join(v).decode("latin-1")
            for k, v in response.headers.items()
            if k.decode("latin-1").lower() in KEPT_HEADERS
        }
        item = self.base_item(
            request, final_url=response.url, status=response.status, content_type=ctype or None,
            headers=headers, size=len(response.body),
        )
        self.mark_seen(canonicalize(response.url))
        hops = response.meta.get(render.HOPS) if "playwright" in response.flags else None
        if hops:
            # the rendered DOM is the page read; what the server sent is kept beside it
            item.update(rendered=1, raw_body=hops[-1]["body"])
        if "download_stopped" in response.flags:
            # Not text: recorded from its headers, body never downloaded.
            length = response.headers.get("Content-Length")
            item["size"] = int(length) if length and length.isdigit() else None
            self.crawler.stats.inc_value("stemwatch/not_text")
            yield item
            return
        if response.status >= 400:
            item["error"] = f"HTTP {response.status}"
            item["body"] = response.body or None
            yield item
            return
        try:
            page, kind = read_body(response.body, ctype, response.url)
        except ContentError as e:
            item["error"] = str(e)
        except Exception as e:  # an extractor bug must cost one page, not the crawl
            self.logger.exception("cannot extract %s", response.url)
            item["error"] = f"extraction failed: {type(e).__name__}: {e}"[:300]
        if item["error"]:
            self.crawler.stats.inc_value("stemwatch/content_errors")
            yield item
            return
        if (kind == "html" and response.status == 200 and not item["rendered"] and not item["render_reason"]
                and self.auto_renders(item["site"]) and render.needs_rendering(page.text, response.body, self.auto_words)
                and self.can_render()):
            yield self.render_request(response, item)
            return
        item.update(
            title=page.title or None, text=page.text, detector_input=page_input(page, item["url"]),
            body=response.body,
        )
        links = []
        depth = response.meta.get("depth", 0)
        follow = kind == "html" and not response.meta.get("nofollow")
        for link in page.links:
            if not link.startswith(("http://", "https://")):
                continue
            canon = canonicalize(link)
            links.append(canon)
            if follow:
                req = self.page_request(canon, depth + 1, response.url, canonical=True)
                if req is not None:
                    yield req
        item["links"] = list(dict.fromkeys(links))
        if self.page_resources and kind == "html":
            item["resources"] = []
            for req in self.resource_requests(response, item["site"]):
                item["resources"].append(req.url)
                yield req
        yield item

    def mark_seen(self, canon: str):
        """A redirect's target is not requested again as a page of its own."""
        self.seen.add(canon)

    def resource_requests(self, response, site: str):
        """The page's own stylesheets and images, on its site (the dupe filter fetches each once)."""
        found = response.css('link[rel~="stylesheet"]::attr(href), img::attr(src)').getall()
        urls = []
        for ref in found:
            url = response.urljoin(ref.strip())
            if url.startswith(("http://", "https://")) and self.in_scope(url) == site and url not in urls:
                urls.append(url)
        for url in urls[: self.max_resources]:
            yield scrapy.Request(url, callback=self.parse_resource, errback=self.aux_failed,
                                 meta={"site": site, "stemwatch_kind": "resource", "download_slot": site,
                                       "dont_obey_robotstxt": False})

    def parse_resource(self, response):
        capture = response.meta.get(META_KEY)
        if not capture:
            return
        yield ResourceItem(
            crawl_id=self.crawl_id, site=response.meta.get("site"), url=response.request.url,
            status=response.status,
            content_type=(response.headers.get("Content-Type") or b"").decode("latin-1") or None,
            fetched_at=capture["date"][:19] + "Z", warc_file=capture["file"], warc_offset=capture["offset"],
            warc_length=capture["length"], warc_record_id=capture["record_id"])

    def failed(self, failure):
        request = failure.request
        if request.meta.get("playwright") and not failure.check(IgnoreRequest):
            yield from self.render_failed(failure)
            return
        error = describe_failure(failure)
        self.crawler.stats.inc_value("stemwatch/fetch_errors")
        response = getattr(failure.value, "response", None)
        fields = {"error": error}
        if response is not None:
            fields.update(status=response.status, final_url=response.url)
        yield self.base_item(request, **fields)

    def aux_failed(self, failure):
        """robots.txt and sitemaps are optional: a failure is only counted."""
        self.crawler.stats.inc_value("stemwatch/aux_errors")
