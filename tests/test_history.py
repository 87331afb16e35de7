"""Claim lifecycle across crawls, written through Store as the crawler does."""

from __future__ import annotations

import json
import zlib

import pytest
from click.testing import CliRunner
from history_helpers import SITE, claim, crawl_with, day, status_by_sentence

from analysis.cli import cli
from analysis.store.history import Since, changes, format_changes, page_history, parse_since, verify_snapshots
from analysis.store.database import claim_key

FDA = claim("regulatory-misrepresentation", "Our stem cell therapy is FDA approved.")
CURE = claim("disease-cure", "Stem cells cure Parkinson's disease.")
AUTISM = claim("disease-cure", "We now treat autism with stem cells.")
GONE = claim("miracle-guarantee", "Results guaranteed or your money back.")
FLAKY = claim("rejection-free", "No risk of rejection with donor cells.")
CAPPED = claim("cartilage-regrowth", "Regrow cartilage in weeks.")


@pytest.fixture
def two_crawls(fresh_db):
    """Day 1 and day 8 of a clinic: a claim added, one removed, a page gone
    404, a page failing with 500, a page the second crawl never reached."""
    c1 = crawl_with(fresh_db, {"/": [FDA, CURE], "/offer": [GONE], "/faq": [FLAKY], "/knee": [CAPPED]}, on=1)
    c2 = crawl_with(fresh_db, {"/": [CURE, AUTISM], "/offer": 404, "/faq": 500}, on=8)
    return fresh_db, c1, c2


def test_lifecycle_after_two_crawls(two_crawls):
    store, c1, c2 = two_crawls
    st = status_by_sentence(store.db)
    assert set(st) == {FDA.sentence, CURE.sentence, AUTISM.sentence, GONE.sentence, FLAKY.sentence, CAPPED.sentence}
    fda = st[FDA.sentence]
    assert (fda["present"], fda["removed_in_crawl"], fda["removed_reason"]) == (0, c2, "no longer on the page")
    assert (fda["last_seen_at"], fda["removed_observed_at"]) == (day(1), day(8))
    cure = st[CURE.sentence]
    assert (cure["present"], cure["first_seen_crawl"], cure["last_seen_crawl"], cure["crawls_seen"]) == (1, c1, c2, 2)
    assert cure["removed_in_crawl"] is None
    autism = st[AUTISM.sentence]
    assert (autism["present"], autism["first_seen_crawl"], autism["first_seen_at"]) == (1, c2, day(8))
    gone = st[GONE.sentence]
    assert (gone["present"], gone["removed_in_crawl"], gone["removed_reason"]) == (0, c2, "page gone (HTTP 404)")
    # a failed fetch and a page the crawl never reached remove nothing
    for s in (FLAKY, CAPPED):
        assert (st[s.sentence]["present"], st[s.sentence]["last_checked_crawl"]) == (1, c1)


def test_changes_lists_new_and_removed_only(two_crawls):
    store, c1, c2 = two_crawls
    rows = changes(store.db, Since(crawl_id=c1))
    got = {(r["change"], r["sentence"], r["crawl_id"], r["prev_crawl_id"]) for r in rows}
    assert got == {
        ("new", AUTISM.sentence, c2, c1),
        ("removed", FDA.sentence, c2, c1),
        ("removed", GONE.sentence, c2, c1),
    }
    assert changes(store.db) == rows  # default: the latest crawl of each site
    assert changes(store.db, Since(date="2026-11-05")) == rows
    assert len(changes(store.db, Since(crawl_id=0))) == 5 + 3  # crawl 1 saw 5 claims first


def test_changes_report_two_observations_not_a_deletion_date(two_crawls):
    store, c1, c2 = two_crawls
    text = format_changes(changes(store.db, Since(crawl_id=c1)))
    assert text.startswith(f"{SITE}: 1 new, 2 removed")
    assert f"present on 2026-11-01 10:00 UTC (crawl {c1}), absent on 2026-11-08 10:00 UTC (crawl {c2}): page gone (HTTP 404)" in text
    assert "deleted" not in text


def test_failed_fetch_in_between_is_skipped(fresh_db):
    c1 = crawl_with(fresh_db, {"/faq": [FLAKY, CURE]}, on=1)
    crawl_with(fresh_db, {"/faq": 500}, on=8)
    c3 = crawl_with(fresh_db, {"/faq": [CURE]}, on=15)
    st = status_by_sentence(fresh_db.db)
    assert (st[FLAKY.sentence]["removed_in_crawl"], st[FLAKY.sentence]["last_seen_crawl"]) == (c3, c1)
    [row] = changes(fresh_db.db)
    assert (row["change"], row["prev_crawl_id"], row["crawl_id"]) == ("removed", c1, c3)


def test_a_claim_that_comes_back_is_returned_not_new(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]}, on=1)
    crawl_with(fresh_db, {"/": []}, on=8)
    c3 = crawl_with(fresh_db, {"/": [FDA]}, on=15)
    [row] = changes(fresh_db.db)
    assert (row["change"], row["crawl_id"]) == ("returned", c3)
    assert status_by_sentence(fresh_db.db)[FDA.sentence]["present"] == 1


def test_identity_ignores_case_and_punctuation_but_not_rewording(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]}, on=1)
    crawl_with(fresh_db, {"/": [claim(FDA.category, "OUR stem-cell therapy is FDA approved")]}, on=8)
    assert changes(fresh_db.db) == []
    crawl_with(fresh_db, {"/": [claim(FDA.category, "Our stem cell therapy is FDA cleared.")]}, on=15)
    assert sorted(r["change"] for r in changes(fresh_db.db)) == ["new", "removed"]
    url = f"https://{SITE}/"
    assert claim_key(SITE, url, FDA.category, FDA.sentence) != claim_key(SITE, url, FDA.category, "FDA cleared")


def test_page_fetched_but_not_yet_analysed_removes_nothing(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]}, on=1)
    c2 = fresh_db.start_crawl([{"url": f"https://{SITE}/", "site": SITE}])
    fresh_db.add_pages([{"crawl_id": c2, "site": SITE, "url": f"https://{SITE}/", "status": 200, "text": "new text"}])
    assert status_by_sentence(fresh_db.db)[FDA.sentence]["present"] == 1


def test_default_since_is_per_site(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]}, on=1, site="a.example")
    crawl_with(fresh_db, {"/": [CURE]}, on=2, site="b.example")
    crawl_with(fresh_db, {"/": []}, on=8, site="a.example")
    got = {(r["site"], r["change"]) for r in changes(fresh_db.db)}
    assert got == {("a.example", "removed"), ("b.example", "new")}
    assert {r["site"] for r in changes(fresh_db.db, site="b.example")} == {"b.example"}
    assert [r["change"] for r in changes(fresh_db.db, Since(crawl_id=0), site="a.example")] == ["new", "removed"]


def test_detector_only_change_is_flagged(fresh_db):
    # same bytes on both days: only the detector's reading differs
    crawl_with(fresh_db, {"/": [CURE]}, on=1, version="v1", text=CURE.sentence)
    other = claim("unsupported-efficacy", CURE.sentence)
    crawl_with(fresh_db, {"/": [CURE, other]}, on=8, version="v2", text=CURE.sentence)
    [row] = changes(fresh_db.db)
    assert (row["change"], row["page_changed"], row["detector_changed"]) == ("new", 0, 1)
    assert "the detector, not the site, changed" in format_changes([row])


def test_parse_since():
    assert parse_since("12") == Since(crawl_id=12)
    assert parse_since("2026-11-01") == Since(date="2026-11-01")
    assert parse_since("2026-11-01 08:30") == Since(date="2026-11-01T08:30")
    assert parse_since(None) == Since()
    with pytest.raises(ValueError, match="crawl id"):
        parse_since("last week")


def test_page_history_keeps_every_fetch(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]}, on=1)
    first = [dict(r) for r in fresh_db.db.query("select * from pages")]
    crawl_with(fresh_db, {"/": [FDA]}, on=8)
    crawl_with(fresh_db, {"/": [CURE]}, on=15)
    hist = page_history(fresh_db.db, f"https://{SITE}/")
    assert [h["fetched_at"] for h in hist] == [day(1), day(8), day(15)]
    assert [h["body_changed"] for h in hist] == [None, 0, 1]
    assert all(h["snapshot_stored"] for h in hist)
    assert fresh_db.db["snapshots"].count == 2  # identical bytes stored once
    still = {r["id"]: dict(r) for r in fresh_db.db.query("select * from pages")}
    for row in first:  # nothing overwritten
        assert still[row["id"]]["sha256"] == row["sha256"] and still[row["id"]]["text"] == row["text"]
    for h in hist:
        assert fresh_db.snapshot_body(h["sha256"])


def test_verify_snapshots_finds_tampering_and_missing(fresh_db, db_path):
    crawl_with(fresh_db, {"/": [FDA], "/b": [CURE]}, on=1)
    assert verify_snapshots(fresh_db.db) == {"checked": 2, "bad": [], "missing": []}
    digest = fresh_db.db.execute("select sha256 from pages where url like '%/b'").fetchone()[0]
    fresh_db.db.execute("update snapshots set body = ? where sha256 = ?", [zlib.compress(b"altered"), digest])
    fresh_db.db.execute("update pages set sha256 = 'feed' where url like '%/'")
    report = verify_snapshots(fresh_db.db)
    assert report["bad"] == [{"sha256": digest, "problem": "content does not match its sha256"}]
    assert [m["sha256"] for m in report["missing"]] == ["feed"]
    fresh_db.close()
    result = CliRunner().invoke(cli, ["verify", "--db", str(db_path)])
    assert result.exit_code == 1 and digest in result.output


def test_changes_command_table_and_json(two_crawls, db_path):
    store, c1, c2 = two_crawls
    store.close()
    table = CliRunner().invoke(cli, ["changes", "--db", str(db_path), "--since", str(c1)])
    assert table.exit_code == 0, table.output
    assert "1 new, 2 removed" in table.output and AUTISM.sentence in table.output
    js = CliRunner().invoke(cli, ["changes", "--db", str(db_path), "--since", "2026-11-02", "--format", "json"])
    assert js.exit_code == 0, js.output
    rows = json.loads(js.output)
    assert sorted(r["change"] for r in rows) == ["new", "removed", "removed"]
    bad = CliRunner().invoke(cli, ["changes", "--db", str(db_path), "--since", "yesterday"])
    assert bad.exit_code != 0 and "crawl id" in bad.output


@pytest.mark.parametrize("site, found", [(SITE, True), (f"https://{SITE}/offer", True), ("nosuch.example.org", False)])
def test_changes_site_by_domain_or_url_and_unknown_named(two_crawls, db_path, site, found):
    store, c1, _ = two_crawls
    store.db["sites"].update(SITE, {"name": "Regen Clinic"})
    store.close()
    result = CliRunner().invoke(cli, ["changes", "--db", str(db_path), "--since", str(c1), "--site", site])
    if found:
        assert result.exit_code == 0 and "1 new, 2 removed" in result.output, result.output
    else:
        assert result.exit_code == 1 and "no site 'nosuch.example.org'" in result.output
    by_name = CliRunner().invoke(cli, ["changes", "--db", str(db_path), "--since", str(c1), "--site", "regen clinic"])
    assert "1 new, 2 removed" in by_name.output
