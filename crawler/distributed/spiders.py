"""The two spiders of a distributed crawl: a worker's, and the writer's.

WorkerSpider is the clinics spider with three things moved to Redis: its
start entries (seeds, or a resumed crawl's frontier) come from the crawl's
start list, popped into a list of the worker's own and acknowledged once
every request made of them is queued, as scrapy-redis's RedisSpider reads
its `redis_key` but without losing an entry to a kill; the seen set and the
caps are Redis's (the scheduler admits each new request in one step); and a
redirect's target is marked seen for every worker.

WriterSpider fetches nothing: its `start()` takes the items the workers
pushed and hands them to the storage pipeline, until the whole crawl is done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import fields

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy_redis import connection

from analysis.detect.inputs import PageInput
from analysis.store.sites import site_key
from crawler.distributed import codec
from crawler.distributed.scheduler import ADMIT_KEY, REDIS_ERRORS
from crawler.distributed.state import RedisCrawl, StateLost
from crawler.items import PageItem, ResourceItem
from crawler.spiders.clinics import ClinicsSpider, fill_contact, url_pattern
from crawler.urls import canonicalize

logger = logging.getLogger(__name__)

TAKE = 100  # items taken from Redis at a time


def encode_item(item) -> bytes:
    if isinstance(item, ResourceItem):
        return codec.dumps({"resource": dict(item)})
    page = dict(item)
    detector_input = page.pop("detector_input", None)
    if detector_input is not None:  # shallow: its fields are JSON data already
        detector_input = {f.name: getattr(detector_input, f.name) for f in fields(detector_input)}
    page["detector_input"] = detector_input
    return codec.dumps({"page": page})


def decode_item(data: bytes):
    obj = codec.loads(data)
    if "resource" in obj:
        return ResourceItem(**obj["resource"])
    page = obj["page"]
    if page.get("detector_input"):
        page["detector_input"] = PageInput(**page["detector_input"])
    return PageItem(**page)


def _redis_crawl(settings) -> RedisCrawl:
    return RedisCrawl(connection.from_settings(settings), settings["STEMWATCH_REDIS_KEY"])


class WorkerSpider(ClinicsSpider):
    name = "clinics"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.crawl_id = settings.getint("STEMWATCH_CRAWL_ID")
        spider.worker = settings["STEMWATCH_WORKER_ID"]
        spider.poll = settings.getfloat("STEMWATCH_REDIS_POLL", 0.5)
        spider.redis_crawl = _redis_crawl(settings)
        spider.started = []  # start entries made into requests, for the scheduler to acknowledge
        return spider

    # -- what Redis counts -----------------------------------------------------------
    def admit(self, canon: str, site: str) -> bool:
        # Asked once per worker: whatever Redis answers (queued, seen, over a cap) it
        # would answer again, caps only ever filling up.
        self.seen.add(canon)
        return True

    def page_request(self, url, depth, referer=None, site=None, canonical=False):
        req = super().page_request(url, depth, referer, site, canonical)
        if req is not None:
            req.meta[ADMIT_KEY] = ["page", req.url, req.meta["site"], url_pattern(req.url)]
        return req

    def admit_sitemap(self, url: str, site: str) -> bool:
        key = "sitemap " + url
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def sitemap_request(self, url: str, site: str):
        req = super().sitemap_request(url, site)
        if req is not None:
            req.meta[ADMIT_KEY] = ["sitemap", "sitemap " + req.url, site, ""]
        return req

    def seed_requests(self, seed: dict):
        for req in super().seed_requests(seed):
            if req.meta.get("stemwatch_kind") == "robots":
                # a seed put back after a kill must not fetch robots.txt twice
                req.meta[ADMIT_KEY] = ["robots", "robots " + req.url, req.meta["site"], ""]
            yield req

    def parse(self, response):
        if response.meta.get("redirect_urls"):
            self.redis_crawl.mark_seen(canonicalize(response.url))
        yield from super().parse(response)

    # -- start entries -------------------------------------------------------------------
    def entry_requests(self, entry: dict):
        if "seed" in entry:
            yield from self.seed_requests(entry["seed"])
        else:
            f = entry["frontier"]
            req = self.page_request(f["url"], f.get("depth") or 0, f.get("referer"), f.get("site"))
            if req is not None:
                yield req

    async def start(self):
        """Start entries until the crawl is done. Kept open the whole crawl: entries a
        dead worker left are put back in the list, and the engine reads start() only."""
        crawl = self.redis_crawl
        while True:
            try:
                raw = crawl.pop_start(self.worker)
                state = crawl.state() if raw is None else "running"
            except REDIS_ERRORS as e:
                logger.error("cannot reach Redis (%s): waiting for it", e)
                await asyncio.sleep(1.0)
                continue
            if raw is None:
                if state != "running":
                    if state is None:
                        logger.warning("the crawl's state is gone from Redis: this worker stops")
                    return
                await asyncio.sleep(self.poll)
                continue
            for req in self.entry_requests(json.loads(raw)):
                yield req
            # reached once the engine asks for more, i.e. once the last request is with the
            # scheduler, which acknowledges the entry when it has put them in Redis
            self.started.append(raw)


class WriterSpider(scrapy.Spider):
    """Items from Redis to the storage pipeline (crawler.distributed.pipelines)."""

    name = "stemwatch-writer"

    def __init__(self, seed_list: list[dict] | None = None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seeds = seed_list or []
        self.sites = {s.get("site") or site_key(s["url"]): s for s in self.seeds}
        self.crawl_id = None

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        fill_contact(settings)  # the crawl record shows the User-Agent the workers send

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.redis_crawl = _redis_crawl(settings)
        spider.lease_timeout = settings.getfloat("STEMWATCH_REDIS_LEASE_TIMEOUT", 60)
        spider.poll = settings.getfloat("STEMWATCH_REDIS_POLL", 0.5)
        spider.token = settings["STEMWATCH_REDIS_WRITER"]  # the lock run_distributed took
        return spider

    def _recover(self):
        gone, put_back = self.redis_crawl.recover(self.lease_timeout)
        if gone:
            logger.warning("%d worker(s) stopped answering: %d requests put back in the frontier", gone, put_back)

    async def start(self):
        crawl, stats = self.redis_crawl, self.crawler.stats
        back = crawl.requeue_writing()
        if back:
            logger.info("%d items taken by an earlier writer and not stored are taken again", back)
        last = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - last >= 1.0:
                    last = now
                    if not crawl.lock_writer(self.token, self.lease_timeout):
                        logger.error("another writer took this crawl over: this one stops")
                        raise CloseSpider("shutdown")
                    self._recover()
                    counts = crawl.counts()
                    stats.set_value("stemwatch/queued", counts["queued"])
                    stats.set_value("stemwatch/in_flight", counts["in_flight"])
                taken = crawl.take_items(TAKE)
                done = not taken and crawl.finished()
                if done:
                    crawl.set_state("done")
            except REDIS_ERRORS as e:  # the crawl is in Redis: wait for it, never end the crawl for it
                logger.error("cannot reach Redis (%s): the writer waits", e)
                await asyncio.sleep(1.0)
                continue
            except StateLost as e:
                logger.error("%s (a Redis server restarted without its data?): the writer stops; "
                             "stemwatch crawl --resume rebuilds the crawl from the database", e)
                raise CloseSpider("shutdown")
            for item_id, raw in taken:
                item = decode_item(raw)
                item._redis_id = item_id
                yield item
            if done:
                break
            if not taken:
                await asyncio.sleep(min(self.poll, 0.2))
        # the workers see "done" and leave; their stats go with the crawl's
        deadline = time.monotonic() + max(10.0, self.lease_timeout)
        try:
            while crawl.live_workers() and time.monotonic() < deadline:
                self._recover()
                await asyncio.sleep(0.2)
            stats.set_value("stemwatch/workers", crawl.worker_stats())
        except REDIS_ERRORS as e:  # the crawl is stored: only the workers' own stats are missing
            logger.error("cannot reach Redis (%s): the crawl's record goes without its workers' stats", e)
        stats.set_value("stemwatch/queued", 0)
        stats.set_value("stemwatch/in_flight", 0)

