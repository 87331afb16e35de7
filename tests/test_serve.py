"""`stemwatch serve`: a real Datasette process, fetched over HTTP."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from analysis.web.plugin import highlight
from analysis.models import Claim, PageAnalysis
from analysis.store.reviewers import add_reviewer
from analysis.store.reviews import MAX_NOTE
from conftest import REPO, STEMWATCH, free_port, wait_for_http
from signin_helpers import PASSWORD, Browser


def _seed_db(store):
    crawl = store.start_crawl([{"url": "https://www.renewal-clinic.example.org/", "name": "Renewal Clinic"}])
    site = "example.org"
    [page] = store.add_pages([{
        "crawl_id": crawl, "site": site, "url": "https://www.renewal-clinic.example.org/autism/",
        "status": 200, "title": "Autism", "text": "Our stem cells reverse autism in weeks.",
    }])
    claim = Claim("disease-cure", "promoted", "reverse autism", "Our stem cells reverse autism in weeks.",
                  15, 29, "cure-verb-condition", "high", "No trial shows stem cells cure autism.")
    store.add_analyses([(page, PageAnalysis(page_kind="clinic", claims=[claim], detector_version="t"))])
    store.finish_crawl(crawl, "finished")
    add_reviewer(store.db, "ana", PASSWORD)


@pytest.fixture
def served(fresh_db, db_path):
    _seed_db(fresh_db)
    fresh_db.close()
    port = free_port()
    proc = subprocess.Popen(
        [*STEMWATCH, "serve", "--db", str(db_path), "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/-/versions.json", proc=proc)
        yield f"http://127.0.0.1:{port}", db_path.stem
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode("utf-8")


def test_serve_index_and_claims_json(served):
    base, name = served
    status, html = _get(base + "/")
    assert status == 200
    assert "stemwatch" in html
    status, page = _get(f"{base}/{name}")
    assert "_sqlite_migrations" not in page and "claims" in page  # bookkeeping hidden
    status, body = _get(f"{base}/{name}/claims.json?_shape=array")
    rows = json.loads(body)
    assert [(r["category"], r["stance"], r["text"]) for r in rows] == [("disease-cure", "promoted", "reverse autism")]


def test_serve_claims_page_has_facets_and_highlight(served):
    base, name = served
    status, html = _get(f"{base}/{name}/claims")
    assert status == 200
    for facet in ("category", "stance", "site"):
        assert f'data-column="{facet}"' in html
    assert "<mark>reverse autism</mark>" in html


def test_serve_refuses_a_file_that_is_not_a_database(tmp_path):
    from click.testing import CliRunner

    from analysis.cli import cli

    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n")
    before = bogus.read_bytes()
    result = CliRunner().invoke(cli, ["serve", "--db", str(bogus)])
    assert result.exit_code != 0
    assert "not an SQLite database" in result.output
    assert bogus.read_bytes() == before


@pytest.mark.parametrize(
    "sentence,text,expected",
    [
        ("We REVERSE autism.", "reverse autism", "We <mark>REVERSE autism</mark>."),
        ("No match here", "cure", "No match here"),
        ("<b>cure</b> all", "cure", "&lt;b&gt;<mark>cure</mark>&lt;/b&gt; all"),
    ],
)
def test_highlight(sentence, text, expected):
    assert str(highlight(sentence, text)) == expected


def test_journalist_marks_a_claim_through_datasette(served, db_path):
    base, name = served
    status, html = _get(f"{base}/{name}/claims")
    assert "mark_claim?claim_id=1" in html
    browser = Browser(base)
    status, form, url = browser.sign_in("ana", next_path=f"/{name}/mark_claim?claim_id=1")
    assert url == f"{base}/{name}/mark_claim?claim_id=1" and 'name="verdict"' in form
    assert 'name="reviewer"' not in form and "Signed in as <strong>ana</strong>" in form
    token = browser.token(f"/{name}/mark_claim?claim_id=1")
    data = {"claim_id": "1", "verdict": "confirmed", "note": "still on the site", "csrftoken": token}
    status, body, _ = browser.open(f"/{name}/mark_claim", data)
    assert status == 200 and "Verdict recorded." in body
    status, body = _get(f"{base}/{name}/claim_verdicts.json?_shape=array")
    [verdict] = json.loads(body)
    assert (verdict["verdict"], verdict["reviewer"], verdict["note"]) == ("confirmed", "ana", "still on the site")
    # A verdict outside the three allowed, on a claim that does not exist, or with a note
    # over the limit is refused.
    too_long = "x" * (MAX_NOTE + 1)
    for bad_claim, bad_verdict, note in (("1", "maybe", ""), ("999", "confirmed", ""), ("1", "unsure", too_long)):
        bad = {"claim_id": bad_claim, "verdict": bad_verdict, "note": note, "csrftoken": token}
        status, body, _ = browser.open(f"/{name}/mark_claim", bad)
        assert status == 400 and "Not recorded" in body
    # A POST without the form's cookies (curl, or a page on another site) writes nothing.
    status, body, _ = browser.open(f"/{name}/mark_claim", data, cookies=False)
    assert status == 403 and "no CSRF token" in body
    # A request naming another host (a DNS-rebinding page) is refused, reads included.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{base}/{name}/claims.json", headers={"Host": "evil.example"}),
                               timeout=10)
    assert refused.value.code == 403
    status, body = _get(f"{base}/{name}/reviews.json?_shape=array")
    assert [r["verdict"] for r in json.loads(body)] == ["confirmed"]


def test_claims_to_review_query_highlights_and_links_to_review(served):
    base, name = served
    status, html = _get(f"{base}/{name}/claims_to_review?category=&site=")
    assert status == 200
    assert "<mark>reverse autism</mark>" in html
    assert "mark_claim?claim_id=1" in html
    status, body = _get(f"{base}/{name}/claims_to_review.json?category=rejection-free&site=&_shape=array")
    assert json.loads(body) == []


def test_plain_datasette_shows_what_serve_shows(fresh_db, db_path):
    """The plugin owns its metadata and canned queries: plain `datasette FILE` has the
    review form the claim links point at, and the claims table's notes."""
    import sys
    from pathlib import Path

    _seed_db(fresh_db)
    fresh_db.close()
    port = free_port()
    datasette = str(Path(sys.executable).with_name("datasette"))
    proc = subprocess.Popen([datasette, str(db_path), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        name = db_path.stem
        status, html = _get(f"{base}/{name}/claims")
        assert status == 200 and 'href="/' + name + '/mark_claim?claim_id=1"' in html
        assert "One row per claim flagged on a page in a crawl." in html
        status, html = _get(f"{base}/{name}/mark_claim?claim_id=1")
        assert status == 200 and "Mark a claim" in html and "Sign in to record a verdict" in html
        assert "<mark>reverse autism</mark>" in html  # the claim itself, before the verdict
        status, body = _get(f"{base}/{name}/claims_to_review.json?_shape=array&category=&site=")
        assert [r["claim_id"] for r in json.loads(body)] == [1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_public_address_unless_read_only(db_path, fresh_db):
    from click.testing import CliRunner

    from analysis.cli import cli

    fresh_db.close()
    result = CliRunner().invoke(cli, ["serve", "--db", str(db_path), "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--public-read-only" in result.output
    assert "stemwatch users add NAME" in result.output


def test_a_read_only_serve_records_no_verdict(fresh_db, db_path):
    _seed_db(fresh_db)
    fresh_db.close()
    port = free_port()
    proc = subprocess.Popen([*STEMWATCH, "serve", "--db", str(db_path), "--port", str(port), "--public-read-only"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        browser = Browser(base)
        status, form, _ = browser.open(f"/{db_path.stem}/mark_claim?claim_id=1")
        assert status == 200 and "<mark>reverse autism</mark>" in form and "served read-only" in form
        assert 'name="verdict"' not in form
        # no one signs in, and a verdict is refused before any token or reviewer is looked at
        status, body, _ = browser.open("/-/stemwatch-login", {"name": "ana", "password": PASSWORD})
        assert status == 403 and "read-only" in body and browser.cookie("ds_actor") is None
        status, body, _ = browser.open(f"/{db_path.stem}/mark_claim", {"claim_id": "1", "verdict": "confirmed"})
        assert status == 403 and "read-only" in body
        status, body = _get(f"{base}/{db_path.stem}/reviews.json?_shape=array")
        assert json.loads(body) == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
