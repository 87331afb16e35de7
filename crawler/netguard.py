"""Which network addresses a crawl may connect to (pure functions, no I/O).

A crawler that follows links and redirects from the open web must never be
turned against the machine it runs on or its private network: a clinic page
(or a redirect from it) pointing at http://127.0.0.1:8080/admin,
http://169.254.169.254/ (cloud metadata) or http://192.168.1.1/ is refused
unless the operator allowed that host by name (``--allow-host``), as the
tests and the demo do for 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable


class BlockedAddress(Exception):
    """A request that would reach an internal address."""


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if `host` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address((host or "").strip().strip("[]"))
    except ValueError:
        return None


def address_problem(address: str) -> str | None:
    """Why `address` (an IP literal) is not a public one, or None if it is."""
    ip = parse_ip(address)
    if ip is None:
        return "not an IP address"
    # IPv4-mapped / 6to4 / Teredo IPv6 addresses wrap an IPv4 one: judge that.
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            problem = address_problem(str(inner))
            if problem:
                return problem
    for attr, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return reason
    if not ip.is_global:
        # Shared address space (100.64/10, carrier-grade NAT) and the like.
        return "not globally routable"
    return None


def normalise_host(host: str) -> str:
    return (host or "").strip().strip("[]").rstrip(".").lower()


def allowed_hosts(hosts: Iterable[str] | str | None) -> frozenset[str]:
    """Allow-list from a setting: a list, or one comma/space separated string."""
    if not hosts:
        return frozenset()
    if isinstance(hosts, str):
        hosts = hosts.replace(",", " ").split()
    return frozenset(normalise_host(h) for h in hosts if normalise_host(h))


def check_host(host: str, allow: frozenset[str]) -> str | None:
    """Before DNS: a reason to refuse `host`, or None.

    An allowed host always passes. An IP literal is judged now; a name is
    judged later, on the addresses it resolves to (see check_resolved).
    """
    h = normalise_host(host)
    if not h:
        return "no host"
    if h in allow:
        return None
    if parse_ip(h) is not None:
        problem = address_problem(h)
        return f"{h} is a {problem} address" if problem else None
    if h == "localhost" or h.endswith(".localhost"):
        return f"{h} names the local machine"
    return None


def check_resolved(host: str, address: str, allow: frozenset[str]) -> str | None:
    """After DNS: a reason to refuse connecting to `address` for `host`, or None."""
    # Only the name the operator allowed passes: another name that happens to
    # resolve to an allowed address (DNS rebinding) is still refused.
    if normalise_host(host) in allow:
        return None
    problem = address_problem(address)
    if problem:
        return f"{normalise_host(host)} resolves to {address}, a {problem} address"
    return None
