"""StoragePipeline: pages to SQLite in batches, claims from a detector process.

- One transaction per batch of STEMWATCH_BATCH_SIZE pages or every
  STEMWATCH_BATCH_SECONDS, whichever comes first.
- Each written batch goes to the detector pool (analysis.detect.pool) with
  one worker process, so spaCy never runs on the reactor's thread or core;
  finished batches are written on every flush.
- At close: what is still unanalysed in the crawl is analysed, then the
  crawl record gets its status and the Scrapy stats plus per-site counts.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import time
from collections import deque

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from analysis.store.database import Store
from crawler.capture import settings_record
from crawler.items import ResourceItem
from analysis.store.queries import per_site_counts, resume_state, set_crawl_status

logger = logging.getLogger(__name__)

PAGE_COLUMNS = (
    "site", "url", "final_url", "status", "content_type", "fetched_at", "size", "title",
    "text", "error", "depth", "referer", "headers", "body", "links",
    "warc_file", "warc_offset", "warc_length", "warc_record_id", "resources",
    "rendered", "render_reason", "render_error", "raw_body", "rendered_record_id",
)
DETECT_BATCH = 64
MAX_IN_FLIGHT = 2  # detection batches submitted at once
MAX_WAITING = 5000  # pages waiting for detection kept in memory; more wait in the DB


def crawl_status(reason: str | None) -> str:
    return {"finished": "finished", "shutdown": "interrupted"}.get(reason or "", reason or "finished")


class StoragePipeline:
    def __init__(self, crawler):
        settings = crawler.settings
        self.db_path = settings.get("STEMWATCH_DB")
        if not self.db_path:
            raise NotConfigured("STEMWATCH_DB is not set")
        self.crawler = crawler
        self.stats = crawler.stats
        self.batch_size = settings.getint("STEMWATCH_BATCH_SIZE", 50)
        self.batch_seconds = settings.getfloat("STEMWATCH_BATCH_SECONDS", 2.0)
        self.detect = settings.getbool("STEMWATCH_DETECT", True)
        self.crawl_id = settings.getint("STEMWATCH_CRAWL_ID") or None
        self.settings_record = settings_record(settings)
        self.buffer: list[dict] = []
        self.resources: list[dict] = []  # ResourceItems to store with the next batch
        self.first_buffered = None
        self.waiting: deque = deque()  # (page_id, PageInput or StoredPage) not yet submitted
        self.in_flight: list[tuple[list[int], concurrent.futures.Future]] = []
        self.pool = None
        self.detector_version = ""
        self.flusher = None
        self.store = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    # -- life cycle ------------------------------------------------------------
    def open_spider(self, spider=None):
        spider = spider or self.crawler.spider
        self.store = Store(self.db_path)
        seeds = getattr(spider, "seeds", [])
        if self.crawl_id:
            set_crawl_status(self.store, self.crawl_id, "running")
            # the crawl was recorded with what the user changed; add what the crawler ran with
            self.store.record_crawl_settings(self.crawl_id, self.settings_record)
            stored, frontier = resume_state(self.store, self.crawl_id, set(getattr(spider, "sites", {})))
            if hasattr(spider, "prime"):
                spider.prime(stored, frontier)
            logger.info("resuming crawl %s: %d pages stored, %d in the frontier",
                        self.crawl_id, len(stored), len(frontier))
            self.stats.set_value("stemwatch/resumed_with_pages", len(stored))
        else:
            self.crawl_id = self.store.start_crawl(seeds, self.settings_record)
        spider.crawl_id = self.crawl_id
        self.stats.set_value("stemwatch/crawl_id", self.crawl_id)
        if self.detect and importlib.util.find_spec("analysis.detect.detector") is None:
            logger.warning("analysis.detect.detector is not available: pages are stored without claims")
            self.detect = False
        if self.detect:
            from analysis.detect.pool import DetectorPool

            self.pool = DetectorPool(1)
        self.flusher = task.LoopingCall(self._tick)
        self.flusher.start(max(self.batch_seconds / 2, 0.1), now=False)

    def process_item(self, item, spider=None):
        if isinstance(item, ResourceItem):
            self.resources.append(dict(item))
            return item
        page = {k: item.get(k) for k in PAGE_COLUMNS}
        page["crawl_id"] = self.crawl_id
        self.buffer.append((page, item.get("detector_input")))
        if self.first_buffered is None:
            self.first_buffered = time.monotonic()
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def close_spider(self, spider=None):
        if self.flusher is not None and self.flusher.running:
            self.flusher.stop()
        self.flush()
        if self.pool is not None:
            self._drain()

    def spider_closed(self, spider=None, reason=None):
        if self.store is None:
            return
        stats = dict(self.stats.get_stats())
        stats["finish_reason"] = reason
        stats["per_site"] = {
            r["site"]: {"pages": r["pages"], "errors": r["errors"] or 0, "claims": r["claims"]}
            for r in per_site_counts(self.store, self.crawl_id)
        }
        self.store.finish_crawl(self.crawl_id, crawl_status(reason), stats, self.detector_version)
        self.store.close()
        self.store = None

    # -- writing -----------------------------------------------------------------
    def _tick(self):
        if self.buffer and time.monotonic() - (self.first_buffered or 0) >= self.batch_seconds:
            self.flush()
        elif self.pool is not None:
            self._collect()
            self._submit()

    def flush(self):
        if self.resources:
            rows, self.resources = self.resources, []
            self.store.add_resources(rows)
        if self.buffer:
            batch, self.buffer, self.first_buffered = self.buffer, [], None
            ids = self.store.add_pages([page for page, _ in batch])
            for pid, (page, detector_input) in zip(ids, batch):
                self.stats.inc_value("stemwatch/pages")
                self.stats.inc_value("stemwatch/errors" if page.get("error") else "stemwatch/ok")
                if self.pool is not None and detector_input is not None and page.get("text"):
                    if len(self.waiting) < MAX_WAITING:
                        self.waiting.append((pid, detector_input))
                    else:
                        self.stats.inc_value("stemwatch/detect_deferred")  # analysed at close
        if self.pool is not None:
            self._collect()
            self._submit()

    # -- detection -----------------------------------------------------------------
    def _submit(self):
        while self.waiting and len(self.in_flight) < MAX_IN_FLIGHT:
            batch = [self.waiting.popleft() for _ in range(min(DETECT_BATCH, len(self.waiting)))]
            try:
                self.in_flight.append(([pid for pid, _ in batch], self.pool.submit([p for _, p in batch])))
            except concurrent.futures.BrokenExecutor as e:
                logger.error("the detector process died (%s): the rest is stored without claims", e)
                self.stats.inc_value("stemwatch/detect_errors")
                self.waiting.clear()
                return

    def _collect(self, wait: bool = False):
        if wait and self.in_flight:
            concurrent.futures.wait([f for _, f in self.in_flight])
        done = [(ids, f) for ids, f in self.in_flight if f.done()]
        self.in_flight = [(ids, f) for ids, f in self.in_flight if not f.done()]
        for ids, future in done:
            try:
                results = list(zip(ids, future.result()))
            except Exception as e:  # a broken detector must not lose the crawl
                logger.error("detection failed for a batch: %s: %s", type(e).__name__, e)
                self.stats.inc_value("stemwatch/detect_errors")
                continue
            claims = self.store.add_analyses(results)
            for pid, analysis in results:
                if analysis.error:  # recorded with the page (pages.analysis_error); the others keep theirs
                    logger.warning("page %d could not be analysed: %s", pid, analysis.error)
                    self.stats.inc_value("stemwatch/not_analysed")
            self.stats.inc_value("stemwatch/claims", claims)
            self.stats.inc_value("stemwatch/analysed", len(results))
            for _, analysis in results[-1:]:
                self.detector_version = analysis.detector_version or self.detector_version

    def _drain(self):
        """At close: everything submitted, then every page of the crawl that
        is still unanalysed (deferred, or stored by an earlier run)."""
        while self.waiting or self.in_flight:
            self._submit()
            self._collect(wait=True)
        rest = [p["id"] for p in self.store.pages_to_analyze(self.crawl_id, columns="id")]
        if rest:
            logger.info("analysing %d more pages", len(rest))
        for start in range(0, len(rest), DETECT_BATCH):  # stored bodies are read a batch at a time
            self.waiting.extend(self.store.stored_pages(rest[start:start + DETECT_BATCH]))
            while self.waiting or self.in_flight:
                self._submit()
                self._collect(wait=True)
        self.pool.close()
        self.pool = None
