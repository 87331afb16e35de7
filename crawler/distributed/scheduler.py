"""A worker's scheduler: scrapy-redis's, made safe to kill.

scrapy_redis.scheduler.Scheduler keeps the frontier in a Redis sorted set
(its PriorityQueue: member = serialised request, score = -priority) shared by
every worker, with its RFPDupeFilter shared too (page resources go through
it). Two things it does not do, done here:

- Leases. Its pop removes the request from Redis, so a worker killed with
  requests in flight loses them. Here a pop moves the request into the
  worker's lease set in the same step, and the lease is dropped only once
  Scrapy is done with the request: when the engine takes it out of its
  in-progress set, after the response went through the callback and every
  request and item that came of it was enqueued in Redis (a redirect or a
  retry is a new request, queued before the old one leaves). A worker whose
  heartbeat stops has its leases put back by any other process of the crawl.
- Admission. The clinics spider's seen set, page caps and trap limits live in
  this process's memory; with many workers they would be counted once per
  worker. A new page, sitemap or robots.txt request carries what to count
  (meta["stemwatch_admit"]) and is checked, counted and queued in one Lua
  script, so a kill between counting and queueing cannot lose a page.

Two workarounds for scrapy-redis 0.9.1 under Scrapy 2.13+: the spider's
`start()` reads the start entries (scrapy-redis's RedisMixin only has the
deprecated `start_requests()` and calls `engine.crawl(request, spider=...)`),
stats are counted without the deprecated `spider` argument, and `open()`
does not call the deprecated `Spider.log()`. Scrapy's
engine asks a scheduler for work on every finished request and otherwise
every 5 s; a worker waiting for others to fill the shared frontier asks every
STEMWATCH_REDIS_POLL seconds instead (the engine's slot heartbeat interval).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque

from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from crawler.distributed.state import Caps, RedisCrawl

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
TAKE = 4  # requests leased at a time: a round trip for four downloads, not one each
ADMIT_KEY = "stemwatch_admit"  # [kind, seen-set member, site, url pattern]
STATS_KEPT = ("downloader/", "stemwatch/", "robotstxt/", "retry/", "scheduler/", "item_scraped_count",
              "response_received_count", "elapsed_time_seconds", "finish_reason", "log_count/ERROR")


class _Callbacks:
    """The spider's callbacks met so far, as attributes. Request.to_dict() finds a
    callback's name with inspect.getmembers(), which lists dir(): only these."""

    def __dir__(self):
        return list(vars(self))


class LeasedScheduler(Scheduler):
    @classmethod
    def from_crawler(cls, crawler):
        scheduler = super().from_crawler(crawler)
        settings = crawler.settings
        scheduler.crawler = crawler
        scheduler.redis_crawl = RedisCrawl(scheduler.server, settings["STEMWATCH_REDIS_KEY"])
        scheduler.worker = settings["STEMWATCH_WORKER_ID"]
        scheduler.caps = Caps(**settings.getdict("STEMWATCH_REDIS_CAPS"))
        scheduler.lease_timeout = settings.getfloat("STEMWATCH_REDIS_LEASE_TIMEOUT", 60)
        scheduler.poll = settings.getfloat("STEMWATCH_REDIS_POLL", 0.5)
        scheduler.parent = settings.getint("STEMWATCH_REDIS_PARENT") or None
        scheduler.held = {}  # Request -> its member in the lease set
        scheduler.pending = []  # (admit, score, data) of requests not yet in Redis
        scheduler.pending_items = []  # (id, data) of items not yet in Redis
        scheduler.items_waiting = 0  # for the writer, at the last flush
        scheduler.taken = deque()  # leased to this worker, not yet handed to the engine
        scheduler.callbacks = _Callbacks()
        scheduler.loop = None
        scheduler.stopping = False
        scheduler._last_beat = scheduler._last_recovery = scheduler._last_complaint = 0.0
        return scheduler

    def open(self, spider):
        # scrapy-redis's open() without its deprecated spider.log() call and its flush
        # options (SCHEDULER_PERSIST: the frontier belongs to the crawl, not to a worker)
        self.spider = spider
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider, key=self.queue_key,
                                                 serializer=self.serializer)
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        self.redis_crawl.heartbeat(self.worker)  # counted before it holds anything
        engine = self.crawler.engine
        # how often an idle worker looks at the shared frontier (Scrapy's default: 5 s)
        engine._SLOT_HEARTBEAT_INTERVAL = min(engine._SLOT_HEARTBEAT_INTERVAL, self.poll)
        from twisted.internet import task

        self.loop = task.LoopingCall(self.sync)
        self.loop.start(min(0.25, self.poll), now=False)

    def close(self, reason):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.flush()
        self._ack_finished()
        # before leaving the workers' set: the writer reads the stats of those that left
        stats = {k: v for k, v in self.crawler.stats.get_stats().items() if k.startswith(STATS_KEPT)}
        stats["finish_reason"] = reason
        self.redis_crawl.save_worker_stats(self.worker, stats)
        back = self.redis_crawl.release_worker(self.worker)
        if back:
            logger.info("worker %s put %d unfinished requests back in the frontier", self.worker, back)
        return super().close(reason)  # SCHEDULER_PERSIST: the frontier stays for the other workers

    # -- the frontier ------------------------------------------------------------
    def enqueue_request(self, request):
        # Kept here until the next flush, which comes before this worker asks for work,
        # acknowledges a request or a start entry, or leaves: the links of a page cost
        # one round trip, and whatever made a request stays leased until it is queued.
        admit = request.meta.pop(ADMIT_KEY, None)
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.pending.append((admit, -request.priority, self.encode(request)))
        return True

    def encode(self, request) -> bytes:
        """scrapy-redis's request encoding, with callbacks named from a small object holding
        only the spider's callbacks: Request.to_dict(spider=) looks a callback's name up with
        inspect.getmembers(), which on the whole spider costs a quarter millisecond."""
        try:
            d = request.to_dict(spider=self.callbacks)
        except ValueError:
            for f in (request.callback, request.errback):
                if hasattr(f, "__func__"):
                    setattr(self.callbacks, f.__name__, getattr(self.spider, f.__name__))
            d = request.to_dict(spider=self.callbacks)  # not a spider method: refused as by scrapy-redis
        return self.queue.serializer.dumps(d)

    def push_item(self, item_id: str, data: bytes) -> None:
        """An item for the writer, pushed with the next flush: the request that made it
        stays leased until then, and a page's item and links cost one round trip."""
        self.pending_items.append((item_id, data))

    def flush(self):
        if self.pending or self.pending_items:
            batch, self.pending = self.pending, []
            items, self.pending_items = self.pending_items, []
            try:
                verdicts, waiting = self.redis_crawl.enqueue(batch, self.caps, items)
            except Exception:
                # kept, and nothing acknowledged, until Redis is back
                self.pending, self.pending_items = batch + self.pending, items + self.pending_items
                raise
            if waiting is not None:
                self.items_waiting = waiting
            for verdict in verdicts:
                self.stats.inc_value("scheduler/enqueued/redis" if verdict == "ok" else f"stemwatch/skipped/{verdict}")
        starts = getattr(self.spider, "started", None)
        if starts:  # start entries whose requests are all queued now
            done, self.spider.started = starts, []
            for raw in done:
                self.redis_crawl.ack_start(self.worker, raw)

    def has_pending_requests(self):
        try:
            self.flush()
            return bool(self.taken) or super().has_pending_requests()
        except REDIS_ERRORS as e:
            self._redis_away(e)
            return True  # not idle: Redis may still hold work

    def next_request(self):
        try:
            self.flush()
            if not self.taken and not self.stopping:
                self.taken.extend(self.redis_crawl.pop_requests(self.worker, TAKE))
        except REDIS_ERRORS as e:
            self._redis_away(e)
            return None
        if not self.taken or self.stopping:
            return None  # what was taken stays leased: it goes back when this worker leaves
        data = self.taken.popleft()
        request = self.queue._decode_request(data)
        self.held[request] = data
        self.stats.inc_value("scheduler/dequeued/redis")
        return request

    # -- leases ----------------------------------------------------------------------
    def _ack_finished(self):
        slot = getattr(self.crawler.engine, "_slot", None)
        in_progress = slot.inprogress if slot is not None else set()
        done = [r for r in self.held if r not in in_progress]
        if done:
            self.redis_crawl.ack_requests(self.worker, [self.held.pop(r) for r in done])

    def sync(self):
        """Every quarter second: finished requests leave their lease; every second a
        heartbeat; every few seconds, any silent worker's work goes back."""
        try:
            self.flush()
            self._ack_finished()
            now = time.monotonic()
            if now - self._last_beat >= 1.0:
                self._last_beat = now
                self.redis_crawl.heartbeat(self.worker)
                if self.parent and os.getppid() != self.parent:
                    self.stop("the crawl's writer is gone")
            if now - self._last_recovery >= max(1.0, self.lease_timeout / 3):
                self._last_recovery = now
                gone, back = self.redis_crawl.recover(self.lease_timeout)
                if gone:
                    logger.warning("%d worker(s) stopped answering: %d requests put back in the frontier", gone, back)
        except REDIS_ERRORS as e:  # Redis away for a moment must not end the loop; the next tick retries
            self._redis_away(e)
        except Exception:
            logger.exception("worker %s: the lease loop failed once", self.worker)

    def _redis_away(self, e: Exception):
        now = time.monotonic()
        if now - self._last_complaint >= 10:
            self._last_complaint = now
            logger.error("cannot reach Redis (%s): waiting for it; nothing is acknowledged meanwhile", e)

    def stop(self, why: str):
        if self.stopping:
            return
        self.stopping = True
        logger.warning("worker %s stops: %s", self.worker, why)
        stop = getattr(self.crawler, "stop_async", None)
        if stop is not None:
            asyncio.ensure_future(stop())
        else:  # Scrapy 2.13
            self.crawler.stop()
