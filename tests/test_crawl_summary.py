"""The end-of-crawl summary names each site the way `changes` and `changes --site` do."""

from __future__ import annotations

import pytest

from analysis.cli.crawl import _print_summary, site_label


@pytest.mark.parametrize("name,site,label", [
    ("Renewal Clinic", "renewal-clinic.example.org", "Renewal Clinic (renewal-clinic.example.org)"),
    (None, "renewal-clinic.example.org", "renewal-clinic.example.org"),
    ("", "[::1]:8080", "[::1]:8080"),
    ("example.org", "example.org", "example.org"),  # no name in the seed list: the key
])
def test_site_label(name, site, label):
    assert site_label(name, site) == label


def test_the_summary_gives_the_key_beside_the_name(capsys):
    summary = {
        "crawl": {"id": 1, "status": "finished", "pages": 3, "errors": 1, "claims": 0},
        "claims": [],
        "sites": [{"site": "renewal-clinic.example.org", "name": "Renewal Clinic", "pages": 3, "errors": 1,
                   "promoted": 0, "failures": [{"error": "HTTP 500", "pages": 1}]}],
    }
    _print_summary(summary)
    out = capsys.readouterr().out
    assert "  Renewal Clinic (renewal-clinic.example.org)    2 fetched   1 failed    0 promoted claims" in out
    assert "1 × HTTP 500" in out
