"""Downloader middlewares: the private-address guard, robots.txt and Retry-After.

PrivateAddressGuard runs first for every request, including each request a
redirect produces (RedirectMiddleware hands the new request back to the
scheduler, so it passes all downloader middlewares again). It refuses IP
literals that are loopback/private/link-local/multicast/reserved/unspecified
and names known to resolve to one; names are judged after resolution by
crawler.resolver.GuardedResolver.
"""

from __future__ import annotations

import email.utils
import time
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_to_future, maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from crawler.netguard import allowed_hosts, check_host
from crawler.dns import blocked_reason

# Sent (request=, seconds=) when a site asked, with Retry-After, to be left alone
# for a while: a distributed crawl's workers hold the site back together.
SITE_SLOWED = object()


class BlockedRequest(IgnoreRequest):
    """A request to an internal address; the spider records it as an error."""


class PrivateAddressGuard:
    def __init__(self, allow: frozenset[str], stats=None):
        self.allow = allow
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(allowed_hosts(crawler.settings.get("STEMWATCH_ALLOW_HOSTS")), crawler.stats)

    def process_request(self, request, spider=None):
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise BlockedRequest(f"blocked: scheme {parts.scheme!r} is not fetched")
        host = parts.hostname or ""
        problem = check_host(host, self.allow)
        if problem is None and host.lower() not in self.allow:
            problem = (blocked_reason(host) or "")[len("blocked: "):] or None
        if problem:
            if self.stats is not None:
                self.stats.inc_value("stemwatch/blocked")
            via = " (after a redirect)" if request.meta.get("redirect_urls") else ""
            raise BlockedRequest(f"blocked{via}: {problem}")
        return None


class RobotsTxt(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware, every request waiting for a robots.txt given its rules.

    Scrapy 2.19's waits for a robots.txt being fetched with `await
    maybe_deferred_to_future(deferred)` on one shared Deferred: under the asyncio
    reactor the first waiter's callback takes the result and returns None, so every
    later waiter gets no rules and is let through (seen fetching disallowed seeds and
    sitemaps, and, in a distributed crawl, whatever a late worker had waiting). Each
    waiter here gets a Deferred of its own, as Scrapy did before 2.14.
    """

    async def robot_parser(self, request):
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(pending, Deferred):
            mine: Deferred = Deferred()

            def hand_on(parser):
                mine.callback(parser)
                return parser  # for the next waiter

            pending.addCallback(hand_on)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class RetryAfterMiddleware:
    """429 and 503 answers with Retry-After: wait that long (up to
    STEMWATCH_RETRY_AFTER_MAX) before the retry, and slow the whole site
    down as much. Without the header, RetryMiddleware handles them."""

    codes = (429, 503)

    def __init__(self, crawler):
        if not crawler.settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat("STEMWATCH_RETRY_AFTER_MAX", 120)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_response(self, request, response, spider=None):
        if response.status not in self.codes or request.meta.get("dont_retry"):
            return response
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            return response
        stats = self.crawler.stats
        if wait > self.max_wait:
            stats.inc_value("stemwatch/retry_after/too_long")
            request.meta["dont_retry"] = True  # nor by RetryMiddleware, right after us
            return response  # recorded with its status
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=f"{response.status} Retry-After {wait:g}s",
        )
        if retry is None:
            return response
        from twisted.internet import reactor  # here: importing it installs one

        stats.inc_value("stemwatch/retry_after/honoured")
        self._slow_site(request, wait)
        self.crawler.signals.send_catch_log(SITE_SLOWED, request=request, seconds=wait)
        if wait > 0:
            await deferred_to_future(deferLater(reactor, wait, lambda: None))
        return retry

    def _slow_site(self, request, wait: float):
        downloader = getattr(self.crawler.engine, "downloader", None)
        try:
            key = downloader.get_slot_key(request)
            slot = downloader.slots.get(key)
        except AttributeError:
            return
        if slot is None or slot.delay >= wait:
            return
        # The site's next request waits `wait` seconds; then the delay is
        # what it was (unless something else changed it meanwhile).
        before, slot.delay = slot.delay, wait
        from twisted.internet import reactor

        def restore():
            if slot.delay == wait:
                slot.delay = before

        deferLater(reactor, wait, restore)
