"""Site identity: which site a URL belongs to (pure functions, no I/O).

The store keys pages, links and sites by it, and the crawler groups its
politeness and page caps by it. tldextract is used with its bundled Public
Suffix List snapshot only: it must never fetch the list from the network.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """example.org for www.example.org; the host itself for IPs and bare names."""
    host = (host or "").lower().rstrip(".")
    if not host or is_ip(host):
        return host
    ext = _EXTRACT(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    return host


def site_key(url: str) -> str:
    """The site a URL belongs to: its registrable domain.

    An IP address has no registrable domain, so there the site is the
    host and port (the demo and the tests run one site per port).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if is_ip(host) or host == "localhost":
        shown = f"[{host}]" if ":" in host else host  # "[::1]:8080", not "::1:8080"
        return f"{shown}:{parts.port}" if parts.port else shown
    return registrable_domain(host)
