"""What a journalist sees: the claims page rendered by a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from test_serve import served  # noqa: F401  (the fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium and sets this, so a missing browser fails there.
REQUIRED = os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium(tmp_path, *args):
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_claims_page_in_chromium_shows_highlighted_claim_and_facets(served, tmp_path):  # noqa: F811
    base, name = served
    url = f"{base}/{name}/claims"
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert "<mark>reverse autism</mark>" in dom
    assert "disease-cure" in dom and "promoted" in dom
    assert 'class="facet-info' in dom or "facet-results" in dom
    shot = tmp_path / "claims.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
