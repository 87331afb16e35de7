"""Site and page identity: which site a URL belongs to, and the one spelling of a
page's URL (pure functions, no I/O).

The store keys pages, links and sites by them, and the crawler groups its
politeness and page caps by site. A crawl and an archive import spell a
page's URL the same way (`canonicalize`), so their pages share a history. tldextract is used with its bundled Public
Suffix List snapshot only: it must never fetch the list from the network.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


# Query parameters that identify a visit or a campaign, never a page.
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid",
    "mc_eid", "_ga", "_gl", "igshid", "ref_src", "hsa_acc", "hsa_cam", "hsa_grp",
    "hsa_ad", "hsa_src", "hsa_tgt", "hsa_kw", "hsa_mt", "hsa_net", "hsa_ver",
}
SESSION_PARAMS = {"phpsessid", "jsessionid", "sid", "sessionid", "session_id", "aspsessionid", "cfid", "cftoken"}


def canonicalize(url: str) -> str:
    """One spelling per page: no fragment, no tracking or session parameters, no user
    name or password, lower-case scheme and host, default ports dropped, sorted query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{netloc}:{port}"
    # no user name or password: a page's address never carries credentials
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_")
        and k.lower() not in TRACKING_PARAMS
        and k.lower() not in SESSION_PARAMS
    ]
    path = parts.path or "/"
    # ;jsessionid=... path parameters are session ids too.
    if ";" in path:
        path = path.split(";", 1)[0]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))
