"""Extensions: progress on the terminal, and the content-type gate."""

from __future__ import annotations

import logging
import sys
import time

from scrapy import signals
from scrapy.exceptions import NotConfigured, StopDownload
from twisted.internet import task

from analysis.extract.content import media_type

logger = logging.getLogger("stemwatch.progress")


class ContentGate:
    """Stops a download once its headers show it is not text (an image, a
    video, an archive): the page is recorded from its headers only."""

    def __init__(self, crawler):
        self.types = {t.lower() for t in crawler.settings.getlist("STEMWATCH_TEXT_TYPES")}
        self.stats = crawler.stats
        crawler.signals.connect(self.headers_received, signal=signals.headers_received)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def headers_received(self, headers, body_length, request, spider=None):
        if request.meta.get("stemwatch_kind") in ("sitemap", "robots", "resource"):
            return
        mtype = media_type(headers.get(b"Content-Type"))
        if not mtype or mtype in self.types or mtype.startswith("text/"):
            return
        self.stats.inc_value("stemwatch/stopped_downloads")
        raise StopDownload(fail=False)


class _StopNotice(logging.Handler):
    """Says on stderr, the moment Scrapy takes a Ctrl-C, what happens next."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "shutting down gracefully" in message:
            print("stemwatch: stopping; finishing the pages in flight and analysing what is stored "
                  "(Ctrl-C again stops at once; nothing stored is lost)", file=sys.stderr, flush=True)
        elif "forcing unclean shutdown" in message:
            print("stemwatch: stopping now; what is stored is kept, resume with --resume",
                  file=sys.stderr, flush=True)


class Progress:
    """Every STEMWATCH_PROGRESS_INTERVAL seconds, one line on stderr: pages stored in
    the whole crawl (a resumed one counts the pages of its earlier runs), errors, queue,
    claims, rate; on a terminal a live progress display (tqdm) instead, and the line at
    the end. The pipeline keeps the stemwatch/* counters in the crawl stats."""

    def __init__(self, crawler, interval: float):
        self.crawler = crawler
        self.interval = interval
        self.loop = None
        self.started = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        # Ctrl-C is acknowledged at once: Scrapy logs it (at INFO, below a quiet run's level)
        # and then finishes the pages in flight, which can take a while.
        shutdown_log = logging.getLogger("scrapy.crawler")
        if not shutdown_log.isEnabledFor(logging.INFO):
            shutdown_log.setLevel(logging.INFO)
        if not any(isinstance(h, _StopNotice) for h in shutdown_log.handlers):
            shutdown_log.addHandler(_StopNotice())

    @classmethod
    def from_crawler(cls, crawler):
        interval = crawler.settings.getfloat("STEMWATCH_PROGRESS_INTERVAL", 10.0)
        if not interval:
            raise NotConfigured
        return cls(crawler, interval)

    def spider_opened(self, spider=None):
        self.started = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():  # a live display on a terminal; plain lines in a log file
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit=" pages", file=sys.stderr, dynamic_ncols=True, desc="stemwatch")
        self.loop = task.LoopingCall(self.report)
        self.loop.start(min(self.interval, 1.0) if self.bar is not None else self.interval, now=False)

    def spider_closed(self, spider=None, reason=None):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if getattr(self, "bar", None) is not None:
            self.bar.close()
            self.bar = None
        self.report(final=" - done" if reason in (None, "finished") else f" - stopped ({reason})")

    def snapshot(self) -> dict:
        stats = self.crawler.stats
        get = lambda k: stats.get_value(k, 0) or 0  # noqa: E731
        elapsed = max(time.monotonic() - (self.started or time.monotonic()), 1e-6)
        pages = get("stemwatch/pages")  # this run's; a resumed crawl had stored some before
        return {
            "pages": pages + get("stemwatch/resumed_with_pages"),
            "before": get("stemwatch/resumed_with_pages"),
            "errors": get("stemwatch/errors"),
            # a distributed crawl's writer counts the workers' queue and downloads in Redis
            "queued": stats.get_value("stemwatch/queued",
                                      max(0, get("scheduler/enqueued") - get("scheduler/dequeued"))),
            "in_flight": stats.get_value("stemwatch/in_flight",
                                         len(getattr(self.crawler.engine.downloader, "active", ()) or ())),
            "claims": get("stemwatch/claims"),
            "rate": pages / elapsed,
            "elapsed": elapsed,
        }

    def report(self, final: str = ""):
        s = self.snapshot()
        before = f", {s['before']} of them before the resume" if s["before"] else ""
        detail = (f"{s['errors']} errors{before}, {s['queued']} queued, {s['in_flight']} downloading, "
                  f"{s['claims']} claims this run")
        bar = getattr(self, "bar", None)
        if bar is not None and not final:
            bar.n = s["pages"]
            bar.set_postfix_str(detail, refresh=False)
            bar.refresh()
            return
        print(f"stemwatch: {s['pages']} pages ({detail}), {s['rate']:.1f} pages/s{final}", file=sys.stderr, flush=True)
