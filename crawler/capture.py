"""Evidence capture: every fetch written to a WARC as it happens.

WarcCapture is a downloader middleware placed next to the downloader
(STEMWATCH_WARC_ORDER, above HttpCompressionMiddleware's 590), so it sees
each response as it came off the wire, still compressed, before any other
middleware changes it, and each request as it was finally sent. For every
response (pages, redirects, errors, robots.txt, sitemaps, page resources)
it writes a `response` record and its `request` record, then flushes them
to the operating system: a page that reaches the database has its capture
on disk first, so a killed crawl loses no evidence it committed.

One WARC set per crawl (`<STEMWATCH_WARC_DIR>/crawl-<id>/`), files rotated
by size, each opening with a `warcinfo` record naming the tool, the
User-Agent and the crawl settings. A resumed crawl opens a new file in the
set rather than appending to one a kill may have cut short. Digests are
SHA-256 (the same algorithm as the snapshot store). Where the record is
stored goes into request.meta["stemwatch_warc"], for the page's row.

A page rendered in Chromium (crawler/render.py) comes back through here too,
its body the DOM after the scripts ran. What the server sent is recorded as the
`response` record (from what the browser received, kept by the render handler),
and the DOM as a `conversion` record with WARC-Refers-To naming that response.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured
from scrapy.resolver import dnscache
from warcio.statusandheaders import StatusAndHeaders

from analysis import __version__
from analysis.evidence.warc import Sha256WARCWriter, http_reason
from crawler.render import HOPS

logger = logging.getLogger(__name__)

META_KEY = "stemwatch_warc"
# crawl-<id>-<n>.warc.gz; a distributed crawl's worker W writes crawl-<id>-W-<n>.warc.gz
# (W is unique across machines, so the files of every worker share one folder).
WARC_NAME = re.compile(r"^crawl-(\d+)-(?:([A-Za-z0-9-]+)-)?(\d{5})\.warc\.gz$")
# What the crawl was told, recorded in every warcinfo record and in the crawls table.
SETTINGS_RECORDED = (
    "STEMWATCH_MAX_PAGES_PER_SITE", "STEMWATCH_ALLOW_HOSTS", "STEMWATCH_CONTACT",
    "STEMWATCH_PAGE_RESOURCES", "STEMWATCH_RENDER", "STEMWATCH_RENDER_AUTO_WORDS", "DEPTH_LIMIT", "DOWNLOAD_DELAY", "CONCURRENT_REQUESTS_PER_DOMAIN",
    "AUTOTHROTTLE_ENABLED", "ROBOTSTXT_OBEY", "DOWNLOAD_MAXSIZE", "DOWNLOAD_TIMEOUT",
    "RETRY_TIMES", "REDIRECT_MAX_TIMES", "USER_AGENT", "JOBDIR",
)


def settings_record(settings) -> dict:
    return {k: settings.get(k) for k in SETTINGS_RECORDED}


def crawl_warc_dir(base: str | Path, crawl_id: int) -> Path:
    return Path(base) / f"crawl-{crawl_id}"


@dataclass(frozen=True)
class CaptureRef:
    """Where one fetch's records are: a byte range of one WARC file of the crawl's set."""

    file: str  # file name within the crawl's WARC folder
    offset: int
    length: int  # the response record and its request record
    record_id: str  # WARC-Record-ID of the response record
    date: str  # WARC-Date, ISO 8601 UTC
    rendered_record_id: str | None = None  # the conversion record of a rendered page's DOM

    def as_meta(self) -> dict:
        return asdict(self)


def warc_date(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def http_response_headers(response) -> list[tuple[str, str]]:
    """The response's headers as received; Transfer-Encoding goes because the
    body was de-chunked before anything here saw it, and a stated length
    that no longer matches would mislead a replay tool."""
    headers = []
    for name, values in response.headers.items():
        key = name.decode("latin-1")
        if key.lower() in ("transfer-encoding", "content-length"):
            continue
        headers.extend((key, v.decode("latin-1")) for v in values)
    headers.append(("Content-Length", str(len(response.body))))
    return headers


def http_request_line(request) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, vs in request.headers.items() for v in vs]
    if not any(k.lower() == "host" for k, _ in headers):
        # the HTTP client adds Host when it sends the request
        headers.insert(0, ("Host", parts.netloc))
    return f"{request.method} {target} HTTP/1.1", headers


def remote_ip(response) -> str | None:
    """The address the response came from. A download stopped after its headers
    (not text, too big) has none set by Scrapy: its host's literal address, or the
    address the resolver's cache gave the connection, is the one it used."""
    if response.ip_address is not None:
        return str(response.ip_address)
    host = urlsplit(response.url).hostname or ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        cached = dnscache.get(host)
        return str(cached) if cached else None


class WarcSet:
    """The rotating WARC files of one crawl."""

    def __init__(self, folder: Path, crawl_id: int, max_bytes: int, info: dict, worker: str = ""):
        self.folder = folder
        self.crawl_id = crawl_id
        self.worker = worker
        self.max_bytes = max_bytes
        self.info = info
        self.out = None
        self.name = ""
        self.writer = None
        self.records = 0

    def _next_name(self) -> str:
        matches = (WARC_NAME.match(p.name) for p in self.folder.glob("*.warc.gz"))
        taken = [int(m.group(3)) for m in matches if m and (m.group(2) or "") == self.worker]
        worker = f"{self.worker}-" if self.worker else ""
        return f"crawl-{self.crawl_id}-{worker}{max(taken, default=0) + 1:05d}.warc.gz"

    def _open(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = self._next_name()
        self.out = open(self.folder / self.name, "xb")
        self.writer = Sha256WARCWriter(self.out, gzip=True, warc_version="1.1")
        self.writer.write_record(self.writer.create_warcinfo_record(self.name, self.info))
        self.out.flush()

    def write(self, request, response, moment: datetime) -> CaptureRef:
        if self.out is None or self.out.tell() >= self.max_bytes:
            self.close()
            self._open()
        date = warc_date(moment)
        warc_headers = {"WARC-Date": date}
        hops = request.meta.get(HOPS) if "playwright" in response.flags else None
        if hops:
            return self._write_rendered(request, response, hops[-1], date)
        ip = remote_ip(response)
        if ip:
            warc_headers["WARC-IP-Address"] = ip
        if "download_stopped" in response.flags:
            warc_headers["WARC-Truncated"] = "length"  # a body not read (not text, or too big)
        status = f"{response.status} {http_reason(response.status)}".strip()
        protocol = response.protocol or "HTTP/1.1"
        resp = self.writer.create_warc_record(
            response.url, "response", payload=BytesIO(response.body), length=len(response.body),
            http_headers=StatusAndHeaders(status, http_response_headers(response), protocol=protocol),
            warc_headers_dict=warc_headers,
        )
        line, req_headers = http_request_line(request)
        req = self.writer.create_warc_record(
            response.url, "request", payload=BytesIO(b""), length=0,
            http_headers=StatusAndHeaders(line, req_headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": date},
        )
        offset = self.out.tell()
        self.writer.write_request_response_pair(req, resp)
        self.out.flush()
        self.records += 2
        return CaptureRef(self.name, offset, self.out.tell() - offset,
                          resp.rec_headers.get_header("WARC-Record-ID"), date)

    def _write_rendered(self, request, response, hop: dict, date: str) -> CaptureRef:
        """A rendered page: what the server sent the browser (a response record, its
        body decoded as Playwright hands it over, so Content-Encoding goes; no
        WARC-IP-Address, which Playwright does not report), the browser's request,
        then the DOM after its scripts ran as a `conversion` record referring to the
        response. One byte range holds the three."""
        status = f"{hop['status']} {http_reason(hop['status'])}".strip()
        headers = [(k, v) for k, v in hop["headers"]
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        headers.append(("Content-Length", str(len(hop["body"]))))
        resp = self.writer.create_warc_record(
            hop["url"], "response", payload=BytesIO(hop["body"]), length=len(hop["body"]),
            http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": date},
        )
        parts = urlsplit(hop["url"])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        req_headers = [(k, v) for k, v in hop["request_headers"] if not k.startswith(":")]
        if not any(k.lower() == "host" for k, _ in req_headers):
            req_headers.insert(0, ("Host", parts.netloc))
        req = self.writer.create_warc_record(
            hop["url"], "request", payload=BytesIO(b""), length=0,
            http_headers=StatusAndHeaders(f"{hop['method']} {target} HTTP/1.1", req_headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": date},
        )
        resp_id = resp.rec_headers.get_header("WARC-Record-ID")
        conversion = self.writer.create_warc_record(
            response.url, "conversion", payload=BytesIO(response.body), length=len(response.body),
            warc_content_type=f"text/html; charset={response.encoding or 'utf-8'}",
            warc_headers_dict={"WARC-Date": date, "WARC-Refers-To": resp_id},
        )
        offset = self.out.tell()
        self.writer.write_request_response_pair(req, resp)
        self.writer.write_record(conversion)
        self.out.flush()
        self.records += 3
        return CaptureRef(self.name, offset, self.out.tell() - offset, resp_id, date,
                          rendered_record_id=conversion.rec_headers.get_header("WARC-Record-ID"))

    def close(self):
        if self.out is not None:
            self.out.flush()
            os.fsync(self.out.fileno())
            self.out.close()
            self.out = None


class WarcCapture:
    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.getbool("STEMWATCH_WARC") or not settings.get("STEMWATCH_WARC_DIR"):
            raise NotConfigured("evidence capture is off (STEMWATCH_WARC / STEMWATCH_WARC_DIR)")
        self.crawler = crawler
        self.base = Path(settings.get("STEMWATCH_WARC_DIR"))
        self.max_bytes = settings.getint("STEMWATCH_WARC_MAX_BYTES")
        self.set = None
        from scrapy import signals

        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _warc_set(self) -> WarcSet:
        if self.set is None:
            settings = self.crawler.settings
            crawl_id = getattr(self.crawler.spider, "crawl_id", None) or settings.getint("STEMWATCH_CRAWL_ID") or 0
            info = {
                "software": f"stemwatch {__version__}",
                "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                "http-header-user-agent": settings.get("USER_AGENT"),
                "operator": settings.get("STEMWATCH_CONTACT"),
                "robots": "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore",
                "crawl-id": str(crawl_id),
                "crawl-settings": json.dumps(settings_record(settings), default=str, sort_keys=True),
                "description": "Public web pages fetched by stemwatch, a monitor of stem-cell marketing claims.",
            }
            if settings.get("STEMWATCH_WORKER_ID"):
                info["worker"] = settings["STEMWATCH_WORKER_ID"]
            self.set = WarcSet(crawl_warc_dir(self.base, crawl_id), crawl_id, self.max_bytes, info,
                               worker=settings.get("STEMWATCH_WORKER_ID") or "")
        return self.set

    def process_request(self, request, spider=None):
        request.meta.pop(META_KEY, None)  # a redirect's new request starts without its parent's record
        return None

    def process_response(self, request, response, spider=None):
        try:
            ref = self._warc_set().write(request, response, datetime.now(timezone.utc))
        except OSError as e:
            # evidence that cannot be written must not pass unnoticed, nor stop the crawl
            self.crawler.stats.inc_value("stemwatch/warc_errors")
            logger.error("cannot write the WARC capture of %s: %s", response.url, e)
            return response
        self.crawler.stats.inc_value("stemwatch/warc_records", 3 if ref.rendered_record_id else 2)
        request.meta[META_KEY] = ref.as_meta()
        return response

    def spider_closed(self, spider=None, reason=None):
        if self.set is not None:
            self.set.close()
