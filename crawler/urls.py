"""URL canonicalisation for the crawler (pure functions, no I/O). Page and site
identity live in analysis.store.sites, which an archive import shares."""

from __future__ import annotations

from analysis.store.sites import SESSION_PARAMS, TRACKING_PARAMS, canonicalize, site_key

__all__ = ["SESSION_PARAMS", "TRACKING_PARAMS", "canonicalize", "same_site"]


def same_site(url: str, site: str) -> bool:
    return site_key(url) == site
