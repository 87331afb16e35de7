"""What a journalist sees and does, in a real headless Chromium: the claims page, and a
reviewer signing in, recording a verdict and signing out."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cdp import Chromium
from conftest import REPO
from signin_helpers import PASSWORD
import test_serve

served = test_serve.served  # the fixture: Datasette on a seeded database, reviewer ana in it

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


def test_claims_page_in_chromium_shows_highlighted_claim_and_facets(served, tmp_path):
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


ARTIFACTS = REPO / ".artifacts"


def test_reviewer_signs_in_records_a_verdict_and_signs_out_in_chromium(served, tmp_path):
    """The whole review in a real browser: typed into the forms, clicked with the mouse."""
    if CHROMIUM is None:
        _chromium(tmp_path)  # skips, or fails where the browser is required
    base, name = served
    ARTIFACTS.mkdir(exist_ok=True)
    browser = Chromium(CHROMIUM, [*FLAGS, "--window-size=1280,900"], tmp_path / "cdp-profile")
    try:
        browser.goto(f"{base}/{name}/mark_claim?claim_id=1")
        assert "Sign in to record a verdict" in browser.text()
        browser.click(".stemwatch-signin a")
        assert browser.url().startswith(f"{base}/-/stemwatch-login?next=")
        browser.type_into('input[name="name"]', "ana")
        browser.type_into('input[name="password"]', PASSWORD)
        browser.screenshot(ARTIFACTS / "signin-1-login.png")
        browser.click('.stemwatch-login input[type="submit"]')

        assert browser.url() == f"{base}/{name}/mark_claim?claim_id=1"  # back to the claim
        assert "Signed in as ana" in browser.text() and "reverse autism" in browser.text()
        browser.evaluate("document.querySelector('select[name=verdict]').value = 'false-alarm'")
        browser.type_into('textarea[name="note"]', "a quote from a news story")
        browser.screenshot(ARTIFACTS / "signin-2-review.png")
        browser.click('.stemwatch-review input[type="submit"]')
        assert "Verdict recorded." in browser.text()

        browser.goto(f"{base}/{name}/reviews")
        assert "false-alarm" in browser.text() and "a quote from a news story" in browser.text()
        row = browser.evaluate("[...document.querySelectorAll('table.rows-and-columns tbody td')]"
                               ".map(td => td.innerText).join('|')")
        assert "|ana|" in f"|{row}|"
        shot = browser.screenshot(ARTIFACTS / "signin-3-reviews.png")
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000

        browser.goto(f"{base}/{name}/mark_claim?claim_id=1")
        browser.click('.stemwatch-signout input[type="submit"]')
        assert "You are now logged out" in browser.text()
        browser.goto(f"{base}/{name}/mark_claim?claim_id=1")
        assert "Sign in to record a verdict" in browser.text() and "Signed in as" not in browser.text()
        browser.screenshot(ARTIFACTS / "signin-4-signed-out.png")
    finally:
        browser.close()
