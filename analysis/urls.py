"""URL canonicalisation and site identity (pure functions, no I/O).

tldextract is used with its bundled Public Suffix List snapshot only: it
must never fetch the list from the network at run time.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

# Query parameters that identify a visit or a campaign, never a page.
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid",
    "mc_eid", "_ga", "_gl", "igshid", "ref_src", "hsa_acc", "hsa_cam", "hsa_grp",
    "hsa_ad", "hsa_src", "hsa_tgt", "hsa_kw", "hsa_mt", "hsa_net", "hsa_ver",
}
SESSION_PARAMS = {"phpsessid", "jsessionid", "sid", "sessionid", "session_id", "aspsessionid", "cfid", "cftoken"}


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
        return f"{host}:{parts.port}" if parts.port else host
    return registrable_domain(host)


def canonicalize(url: str) -> str:
    """One spelling per page: no fragment, no tracking or session parameters,
    lower-case scheme and host, default ports dropped, sorted query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
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


def same_site(url: str, site: str) -> bool:
    return site_key(url) == site
