"""Per-site politeness held by every worker together.

Each worker's Scrapy keeps its own per-site delay and concurrency, which
would let N workers send N times as much to one site. So a worker's HTTP(S)
download handler asks Redis for its site's turn right before the transfer
starts, after every middleware and after Scrapy's own slot, and gives it back
once the response is in:

- at most CONCURRENT_REQUESTS_PER_DOMAIN transfers to a site at once, across
  workers: a sorted set of leases per site, freed when the transfer ends, when
  its worker is found gone, or at the latest DOWNLOAD_TIMEOUT + 10 s after it
  began;
- at least DOWNLOAD_DELAY between the starts of two transfers to a site: a
  per-site "next start" time on the Redis server's clock (one clock for
  every machine); with AUTOTHROTTLE_ENABLED the delay adapts by AutoThrottle's
  own rule, once for the site rather than once per worker;
- a Retry-After answer holds the whole site back, not one worker's slot.

A site is its registrable domain (analysis.store.sites.site_key), so robots.txt
fetched by RobotsTxtMiddleware counts towards its site too. Within a worker
only one request per site asks Redis at a time; the others wait their turn
locally, so a busy site costs a Redis call per delay, not per waiting request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict

from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy_redis import connection

from analysis.store.sites import site_key
from crawler import render
from crawler.distributed.scheduler import REDIS_ERRORS
from crawler.distributed.state import Politeness, RedisCrawl
from crawler.middlewares import SITE_SLOWED

logger = logging.getLogger(__name__)

CONCURRENCY_POLL = 0.05  # seconds between two asks while a site has all its transfers running


class GatedDownloadHandler:
    """The crawl's own HTTP(S) handler (Scrapy's, or crawler.render's when pages may be
    rendered: a rendered page is one turn), each download waiting for its site's turn."""

    lazy = False

    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.get("STEMWATCH_REDIS_KEY"):
            raise NotConfigured("not a distributed crawl")
        inner = settings.get("STEMWATCH_GATED_HANDLER") or (
            render.HANDLER if render.render_mode(settings) != "off" and render.unavailable(settings) is None
            else settings.get("STEMWATCH_PLAIN_HANDLER") or render.PLAIN_HANDLER)
        self.inner = build_from_crawler(load_object(inner), crawler)
        self.redis_crawl = RedisCrawl(connection.from_settings(settings), settings["STEMWATCH_REDIS_KEY"])
        self.politeness = Politeness(**settings.getdict("STEMWATCH_REDIS_POLITENESS"))
        self.worker = settings["STEMWATCH_WORKER_ID"]
        self.tokens = itertools.count(1)
        self.turns: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.stats = crawler.stats
        crawler.signals.connect(self.site_slowed, signal=SITE_SLOWED)
        self._sites: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def close(self) -> None:
        await self.inner.close()

    def site_of(self, url: str) -> str:
        origin = url[: url.find("/", url.find("//") + 2) % (len(url) + 1)]
        site = self._sites.get(origin)
        if site is None:
            site = self._sites[origin] = site_key(url)
        return site

    async def acquire(self, site: str) -> str:
        token = f"{self.worker}:{next(self.tokens)}"
        waited = False
        async with self.turns[site]:
            while True:
                try:
                    wait = self.redis_crawl.acquire_site(site, self.worker, token, self.politeness)
                except REDIS_ERRORS as e:  # no turn without Redis: wait for it rather than fail the page
                    logger.error("cannot reach Redis (%s): %s waits", e, site)
                    await asyncio.sleep(1.0)
                    continue
                if wait == 0:
                    break
                waited = True
                await asyncio.sleep(CONCURRENCY_POLL if wait < 0 else wait / 1000)
        if waited:
            self.stats.inc_value("stemwatch/politeness/waits")
        return token

    async def download_request(self, request):
        site = self.site_of(request.url)
        token = await self.acquire(site)
        started = time.monotonic()
        try:
            response = await self.inner.download_request(request)
        except BaseException:
            self.release(site, token, None, None)
            raise
        self.release(site, token, time.monotonic() - started, response.status)
        return response

    def release(self, site: str, token: str, latency: float | None, status: int | None):
        try:
            self.redis_crawl.release_site(site, self.worker, token, self.politeness, latency, status)
        except REDIS_ERRORS as e:  # the turn runs out by itself (DOWNLOAD_TIMEOUT + 10 s)
            logger.error("cannot reach Redis (%s): %s's turn runs out by itself", e, site)

    def site_slowed(self, request, seconds: float):
        self.redis_crawl.hold_site(self.site_of(request.url), seconds)
