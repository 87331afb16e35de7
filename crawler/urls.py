"""URL canonicalisation for the crawler (pure functions, no I/O); site identity is
analysis.store.sites."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from analysis.store.sites import site_key

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


def same_site(url: str, site: str) -> bool:
    return site_key(url) == site
