"""The address classification behind the private-address guard."""

import pytest

from crawler.netguard import address_problem, allowed_hosts, check_host, check_resolved


@pytest.mark.parametrize("address, problem", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("fd00::1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("100.64.0.1", "not globally routable"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
])
def test_internal_addresses_are_named(address, problem):
    assert address_problem(address) == problem


def test_reserved_range_is_refused():
    # 240.0.0.0/4: Python lists it as private as well as reserved.
    assert address_problem("240.0.0.1") in ("private", "reserved")


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert address_problem(address) is None


def test_check_host_judges_literals_and_local_names():
    allow = allowed_hosts("127.0.0.1, clinic.test")
    assert check_host("127.0.0.1", allow) is None
    assert check_host("[::1]", allow) == "::1 is a loopback address"
    assert "private" in check_host("192.168.0.10", allow)
    assert "local machine" in check_host("localhost", allow)
    assert "local machine" in check_host("admin.localhost", allow)
    assert check_host("www.example.org", allow) is None  # judged after DNS


def test_check_resolved_only_lets_the_allowed_name_through():
    allow = allowed_hosts(["127.0.0.1", "clinic.test"])
    assert check_resolved("clinic.test", "127.0.0.1", allow) is None
    # Another name pointing at an allowed address is still refused (DNS rebinding).
    assert check_resolved("evil.example", "127.0.0.1", allow) == "evil.example resolves to 127.0.0.1, a loopback address"
    assert check_resolved("www.example.org", "93.184.216.34", allow) is None


def test_allowed_hosts_normalises():
    assert allowed_hosts(["WWW.Example.org.", " [::1] "]) == {"www.example.org", "::1"}
    assert allowed_hosts(None) == frozenset()
