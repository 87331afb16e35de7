"""The private-address guard in real crawls: literals, names resolved to
loopback, redirects from an allowed site, and a seed that is not allowed."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from tests.servers import Site, html, ok, pages, redirect, run_crawl_cli


def loopback_name() -> str | None:
    """A name other than localhost that resolves to loopback (the machine's
    own name usually does, through /etc/hosts)."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return None
    return name if address.startswith("127.") and name != "localhost" else None


def test_redirects_and_links_to_internal_addresses_are_blocked(tmp_path):
    with Site({"/": ok(html("Internal admin"))}) as internal:
        routes = {
            "/": ok(html("Clinic", "<p>Welcome</p>", ["/r-literal", "/r-metadata", "/r-name", "/ok"])),
            "/r-literal": redirect(f"http://127.0.0.1:{internal.port}/"),
            "/r-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/ok": ok(html("Fine")),
        }
        name = loopback_name()
        if name:
            routes["/r-name"] = redirect(f"http://{name}:{internal.port}/")
        with Site(routes) as clinic:
            db = tmp_path / "guard.db"
            # Only the name "localhost" is allowed: 127.0.0.1 itself is not.
            r = run_crawl_cli([f"http://localhost:{clinic.port}/"], db, allow=("localhost",))
            assert r.returncode == 0, r.stderr
            stored = pages(db, f"http://localhost:{clinic.port}")
            assert stored["/ok"]["status"] == 200
            literal = stored["/r-literal"]
            assert literal["error"] == "blocked (after a redirect): 127.0.0.1 is a loopback address"
            assert literal["final_url"] == f"http://127.0.0.1:{internal.port}/"
            assert stored["/r-metadata"]["error"] == (
                "blocked (after a redirect): 169.254.169.254 is a link-local address")
            if name:
                # Refused by the resolver, then (on the retry) by the middleware.
                error = stored["/r-name"]["error"]
                assert error.startswith("blocked") and error.endswith(
                    f"{name.lower()} resolves to 127.0.0.1, a loopback address")
            assert sum(internal.hits.values()) == 0  # never connected
            assert clinic.hits["/ok"] == 1


def test_seed_on_internal_address_without_allow_host_is_recorded_not_fetched(tmp_path):
    with Site({"/": ok(html("Local"))}) as site:
        db = tmp_path / "noallow.db"
        r = run_crawl_cli([site.url("/")], db, allow=())
        assert r.returncode == 0, r.stderr
        [row] = pages(db).values()
        assert row["error"] == "blocked: 127.0.0.1 is a loopback address"
        assert sum(site.hits.values()) == 0
        # the summary says why, once for the site, with the flag that allows it
        assert "0 pages fetched, 1 failed" in r.stdout
        assert r.stdout.count("1 × blocked: 127.0.0.1 is a loopback address") == 1
        assert "--allow-host 127.0.0.1" in r.stdout


def test_resolver_refuses_names_of_internal_addresses():
    from crawler.dns import BlockedByResolver, GuardedResolver, blocked_reason

    resolver = GuardedResolver.__new__(GuardedResolver)
    resolver.allow = frozenset({"clinic.test"})
    assert resolver._check("127.0.0.1", "clinic.test") == "127.0.0.1"
    assert resolver._check("93.184.216.34", "www.example.org") == "93.184.216.34"
    with pytest.raises(BlockedByResolver):
        resolver._check("10.0.0.7", "intranet.example.org")
    assert blocked_reason("intranet.example.org") == "blocked: intranet.example.org resolves to 10.0.0.7, a private address"


def test_unresolvable_and_refusing_sites_are_error_rows(tmp_path):
    from tests.servers import free_port

    closed = free_port()  # nothing listens there
    db = tmp_path / "down.db"
    r = run_crawl_cli(["http://no-such-clinic.invalid/", f"http://127.0.0.1:{closed}/"], db,
                      settings={"DNS_TIMEOUT": "5"})
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(db)
    errors = dict(conn.execute("select url, error from pages"))
    assert errors["http://no-such-clinic.invalid/"].startswith("dns: cannot resolve no-such-clinic.invalid")
    assert errors[f"http://127.0.0.1:{closed}/"] == "connection refused"
    assert conn.execute("select status from crawls").fetchone()[0] == "finished"


def test_a_site_whose_name_does_not_resolve_gets_one_line_not_a_traceback(tmp_path):
    db = tmp_path / "dns.db"
    r = run_crawl_cli(["http://no-such-clinic.invalid/"], db, allow=())
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Gave up retrying" not in r.stderr
    assert "1 × dns: cannot resolve no-such-clinic.invalid" in r.stdout
    [row] = pages(db).values()
    assert row["error"] == "dns: cannot resolve no-such-clinic.invalid"
