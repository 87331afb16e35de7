"""A DNS resolver that refuses names resolving to internal addresses.

Installed with TWISTED_DNS_RESOLVER. The check runs on the address the
connection will actually use (after resolution, cached or not), so a public
looking name that points at 127.0.0.1 or 10.0.0.5 is refused like the
literal address would be. Allowed hosts (STEMWATCH_ALLOW_HOSTS) pass.
"""

from __future__ import annotations

from twisted.internet.error import DNSLookupError

from crawler.netguard import allowed_hosts, check_resolved
from scrapy.resolver import CachingThreadedResolver


# Names refused so far, with the reason: Twisted reports a refused lookup as
# a plain DNSLookupError, so the spider looks the reason up here, and the
# guard middleware refuses further requests to the name without a lookup.
_BLOCKED: dict[str, str] = {}


def blocked_reason(host: str) -> str | None:
    return _BLOCKED.get((host or "").lower().rstrip("."))


class BlockedByResolver(DNSLookupError):
    """Raised instead of returning an internal address."""


class GuardedResolver(CachingThreadedResolver):
    allow: frozenset[str] = frozenset()

    @classmethod
    def from_crawler(cls, crawler, reactor):
        resolver = super().from_crawler(crawler, reactor)
        resolver.allow = allowed_hosts(crawler.settings.get("STEMWATCH_ALLOW_HOSTS"))
        return resolver

    def getHostByName(self, name, timeout=()):
        d = super().getHostByName(name, timeout)
        d.addCallback(self._check, name)
        return d

    def _check(self, address, name):
        host = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
        problem = check_resolved(host, str(address), self.allow)
        if problem:
            _BLOCKED[host.lower().rstrip(".")] = f"blocked: {problem}"
            raise BlockedByResolver(f"blocked: {problem}")
        return address
