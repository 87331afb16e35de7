"""Reviewers' verdicts: keyed by claim identity, append-only, surviving re-crawls and re-analysis."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from history_helpers import claim, crawl_with, status_by_sentence

from analysis.cli import cli
from analysis.models import PageAnalysis
from analysis.store.reviews import add_review, current_verdict, resolve_claim, review_history
from analysis.store.database import StoreError

FDA = claim("regulatory-misrepresentation", "Our stem cell therapy is FDA approved.")
CURE = claim("disease-cure", "Stem cells cure Parkinson's disease.")


def _claim_row(db, sentence):
    return dict(next(db.query("select * from claims where sentence = ? order by id desc", [sentence])))


def test_history_is_kept_and_latest_verdict_wins(fresh_db):
    crawl_with(fresh_db, {"/": [FDA, CURE]})
    row = _claim_row(fresh_db.db, FDA.sentence)
    add_review(fresh_db.db, str(row["id"]), "unsure", "check the FDA database", reviewer="ana")
    add_review(fresh_db.db, row["claim_key"], "confirmed", "no approval on record", reviewer="ben")
    assert [r["verdict"] for r in review_history(fresh_db.db, row["claim_key"])] == ["unsure", "confirmed"]
    v = dict(next(fresh_db.db.query("select * from claim_verdicts where claim_key = ?", [row["claim_key"]])))
    assert (v["verdict"], v["reviewer"], v["reviews"], v["note"]) == ("confirmed", "ben", 2, "no approval on record")
    assert current_verdict(fresh_db.db, _claim_row(fresh_db.db, CURE.sentence)["claim_key"]) is None


def test_reviews_table_is_append_only_and_checked(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]})
    add_review(fresh_db.db, "1", "confirmed")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        fresh_db.db.execute("update reviews set verdict = 'false-alarm'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        fresh_db.db.execute("delete from reviews")
    with pytest.raises(sqlite3.IntegrityError):
        fresh_db.db.execute("insert into reviews (claim_key, verdict, reviewed_at) values ('k', 'maybe', 'now')")
    with pytest.raises(StoreError, match="verdict must be"):
        add_review(fresh_db.db, "1", "maybe")
    assert fresh_db.db["reviews"].count == 1


def test_unknown_claim_is_refused(fresh_db):
    crawl_with(fresh_db, {"/": [FDA]})
    with pytest.raises(StoreError, match="no claim with id 99"):
        resolve_claim(fresh_db.db, "99")
    with pytest.raises(StoreError, match="no claim with id or key"):
        resolve_claim(fresh_db.db, "0123456789abcdef0123")


def test_verdict_survives_recrawl_and_reanalysis(fresh_db):
    crawl_with(fresh_db, {"/": [FDA, CURE]}, on=1)
    key = _claim_row(fresh_db.db, FDA.sentence)["claim_key"]
    add_review(fresh_db.db, key, "false-alarm", "it says FDA-registered lab", reviewer="ana")
    crawl_with(fresh_db, {"/": [FDA, CURE]}, on=8)
    st = status_by_sentence(fresh_db.db)
    assert (st[FDA.sentence]["verdict"], st[FDA.sentence]["crawls_seen"]) == ("false-alarm", 2)
    # re-analysis by a new detector rewrites the claim rows of every page...
    before = {r["id"] for r in fresh_db.db.query("select id from claims where sentence = ?", [CURE.sentence])}
    for page_id in [r["id"] for r in fresh_db.db.query("select id from pages")]:
        reread = [FDA, claim("unsupported-efficacy", CURE.sentence)]  # CURE re-categorised
        fresh_db.add_analyses([(page_id, PageAnalysis(claims=reread, detector_version="v2"))])
    # ...the verdict stays with its claim, whose unchanged rows keep their ids
    st = status_by_sentence(fresh_db.db)
    assert st[FDA.sentence]["verdict"] == "false-alarm"
    assert st[FDA.sentence]["detector_version"] == "v2"
    assert fresh_db.db.execute("select count(*) from claims where claim_key = ?", [key]).fetchone()[0] == 2
    assert fresh_db.db["reviews"].count == 1
    after = {r["id"] for r in fresh_db.db.query("select id from claims where sentence = ?", [CURE.sentence])}
    assert before.isdisjoint(after)  # the re-categorised claim is a new claim, in new rows


def test_unchanged_claims_keep_their_row_ids(fresh_db):
    crawl_with(fresh_db, {"/": [FDA, CURE]})
    ids = {r["sentence"]: r["id"] for r in fresh_db.db.query("select id, sentence from claims")}
    fresh_db.add_analyses([(1, PageAnalysis(claims=[CURE, FDA], detector_version="v2"))])
    assert {r["sentence"]: r["id"] for r in fresh_db.db.query("select id, sentence from claims")} == ids
    # a new claim listed before the kept ones takes a fresh id, not theirs
    new = claim("rejection-free", "No risk of rejection with donor cells.")
    fresh_db.add_analyses([(1, PageAnalysis(claims=[new, CURE, FDA], detector_version="v3"))])
    now = {r["sentence"]: r["id"] for r in fresh_db.db.query("select id, sentence from claims")}
    assert {s: now[s] for s in ids} == ids and now[new.sentence] not in ids.values()


def test_review_command_by_id_and_key(fresh_db, db_path):
    crawl_with(fresh_db, {"/": [FDA]})
    row = _claim_row(fresh_db.db, FDA.sentence)
    fresh_db.close()
    runner = CliRunner()
    first = runner.invoke(cli, ["review", str(row["id"]), "--verdict", "unsure", "--by", "ana", "--db", str(db_path)])
    assert first.exit_code == 0, first.output
    assert "unsure by ana" in first.output and "(1 review in its history)" in first.output
    assert f'regulatory-misrepresentation/promoted on https://clinic.example/: "{FDA.sentence}"' in first.output
    second = runner.invoke(cli, ["review", row["claim_key"], "--verdict", "confirmed", "--note", "seen",
                                 "--db", str(db_path)], env={"STEMWATCH_REVIEWER": "ben"})
    assert second.exit_code == 0, second.output
    assert "confirmed by ben" in second.output and "(2 reviews" in second.output
    bad = runner.invoke(cli, ["review", "777", "--verdict", "confirmed", "--db", str(db_path)])
    assert bad.exit_code == 1 and "no claim with id 777" in bad.output
    wrong = runner.invoke(cli, ["review", "1", "--verdict", "maybe", "--db", str(db_path)])
    assert wrong.exit_code == 2 and "maybe" in wrong.output


def test_a_batch_of_pages_keeps_ids_and_takes_each_pages_last_analysis(fresh_db):
    crawl_with(fresh_db, {"/": [FDA], "/b": [CURE]})
    before = {r["url"]: r["id"] for r in fresh_db.db.query("select id, url from claims")}
    new = claim("rejection-free", "No risk of rejection with donor cells.")
    written = fresh_db.add_analyses([
        (1, PageAnalysis(claims=[new, FDA], detector_version="v2")),
        (2, PageAnalysis(claims=[CURE, new], detector_version="v2")),
        (1, PageAnalysis(claims=[new, FDA], detector_version="v3")),  # the page again: this one wins
    ])
    assert written == 4
    rows = list(fresh_db.db.query("select id, url, sentence, detector_version from claims order by id"))
    assert len(rows) == 4 and len({r["id"] for r in rows}) == 4
    kept = {r["url"]: r["id"] for r in rows if r["sentence"] != new.sentence}
    assert kept == before
    assert {r["url"]: r["detector_version"] for r in rows} == {
        "https://clinic.example/": "v3", "https://clinic.example/b": "v2"}
