"""Items through Redis: pushed by the workers, stored by the one writer.

RedisItemPipeline (a worker's) is scrapy-redis's RedisPipeline made
reliable: each item gets an id, the item and its id go in together (in one
round trip with its page's links, at the worker scheduler's next flush,
before the request that made it is acknowledged), and a worker slows down
when more than STEMWATCH_REDIS_MAX_ITEMS wait for the writer (a writer that
is down or behind must not fill Redis's memory).

RedisStoragePipeline (the writer's) is StoragePipeline itself: the same
batches, the same detector pool, the same crawl record. An item leaves Redis
only after the transaction holding it is committed, so a writer killed at any
moment loses nothing it acknowledged; items a killed worker's request had
already pushed are pushed again by its retry, and a page already stored is
not stored twice.
"""

from __future__ import annotations

import asyncio
import logging

from scrapy.exceptions import NotConfigured
from scrapy_redis import connection

from analysis.store.queries import stored_urls
from crawler.distributed.scheduler import REDIS_ERRORS
from crawler.distributed.spiders import encode_item
from crawler.distributed.state import RedisCrawl
from crawler.items import PageItem
from crawler.pipelines import StoragePipeline

logger = logging.getLogger(__name__)


class RedisItemPipeline:
    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.get("STEMWATCH_REDIS_KEY"):
            raise NotConfigured("not a distributed crawl")
        self.redis_crawl = RedisCrawl(connection.from_settings(settings), settings["STEMWATCH_REDIS_KEY"])
        self.worker = settings["STEMWATCH_WORKER_ID"]
        self.max_waiting = settings.getint("STEMWATCH_REDIS_MAX_ITEMS", 10_000)
        self.stats = crawler.stats
        self.crawler = crawler
        self.scheduler = None
        self.sent = 0

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self, spider=None):
        # the worker's scheduler sends the item with the links of its page (one round trip)
        self.scheduler = self.crawler.engine._slot.scheduler
        if not hasattr(self.scheduler, "push_item"):
            raise RuntimeError("RedisItemPipeline needs crawler.distributed.scheduler.LeasedScheduler")

    async def process_item(self, item, spider=None):
        self.sent += 1
        self.scheduler.push_item(f"{self.worker}:{self.sent}", encode_item(item))
        if isinstance(item, PageItem):
            self.stats.inc_value("stemwatch/pages")
            self.stats.inc_value("stemwatch/errors" if item.get("error") else "stemwatch/ok")
        waiting = self.scheduler.items_waiting
        while waiting > self.max_waiting:
            self.stats.inc_value("stemwatch/waited_for_writer")
            await asyncio.sleep(1.0)
            try:
                waiting = self.scheduler.items_waiting = self.redis_crawl.waiting_items()
            except REDIS_ERRORS:
                pass
        return item


class RedisStoragePipeline(StoragePipeline):
    def __init__(self, crawler):
        super().__init__(crawler)
        self.redis_crawl = None
        self.unacked: list[bytes] = []  # ids of items processed and not yet committed
        self.stored: set[str] = set()

    def open_spider(self, spider=None):
        super().open_spider(spider)
        spider = spider or self.crawler.spider
        self.redis_crawl = spider.redis_crawl
        self.stored = stored_urls(self.store, self.crawl_id)

    def process_item(self, item, spider=None):
        item_id = getattr(item, "_redis_id", None)
        if item_id is not None:
            self.unacked.append(item_id)
        if isinstance(item, PageItem):
            if item["url"] in self.stored:
                # fetched again after a worker died between pushing it and finishing
                self.stats.inc_value("stemwatch/duplicates")
                return item
            self.stored.add(item["url"])
        return super().process_item(item, spider)

    def flush(self):
        super().flush()
        if self.unacked and self.redis_crawl is not None:
            try:
                self.redis_crawl.ack_items(self.unacked)
                self.unacked = []
            except REDIS_ERRORS as e:  # stored: acknowledged at the next flush (or stored once again later)
                logger.error("cannot reach Redis (%s): stored items are acknowledged later", e)
