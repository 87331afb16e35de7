"""Re-analysis of stored pages: only what the detector version change
affects, both cores, verdicts kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from history_helpers import SITE, day

from analysis.cli import cli
from analysis.store.history import Since, changes
from analysis.models import Claim, PageAnalysis
from analysis.reanalyze import describe, reanalyze
from analysis.store.reviews import add_review

PATTERNS = Path(__file__).resolve().parent.parent / "patterns"
FDA = "Our stem cell therapy is FDA approved."
AUTISM = "We cure autism with stem cells."
GUARANTEE = "Stem cell results guaranteed or your money back!"
HOME = f"<html><head><title>Clinic</title></head><body><h1>Clinic</h1><p>{FDA}</p><p>{AUTISM}</p></body></html>"
OFFER = f"<html><head><title>Offer</title></head><body><p>{GUARANTEE}</p></body></html>"


class KeywordDetector:
    """A stand-in with the detector's interface: one claim per keyword found."""

    def __init__(self, version: str, words: dict[str, str]):
        self.version, self.words, self.seen = version, words, []

    def analyze_many(self, pages, n_process=1):
        for page in pages:
            self.seen.append(page.url)
            claims = [Claim(cat, "promoted", w, page.text, page.text.find(w), page.text.find(w) + len(w), w)
                      for w, cat in self.words.items() if w in page.text]
            yield PageAnalysis(claims=claims, detector_version=self.version)


def store_crawl(store, pages: dict[str, str], on: int = 1) -> int:
    """A crawl whose pages are stored (HTML snapshot + text) but not yet analysed."""
    from analysis.extract import extract_html

    crawl = store.start_crawl([{"url": f"https://{SITE}/", "site": SITE}])
    for path, html in pages.items():
        url = f"https://{SITE}{path}"
        page = extract_html(html, url)
        store.add_pages([{"crawl_id": crawl, "site": SITE, "url": url, "status": 200, "fetched_at": day(on),
                          "content_type": "text/html", "title": page.title, "text": page.text,
                          "body": html.encode()}])
    store.add_pages([{"crawl_id": crawl, "site": SITE, "url": f"https://{SITE}/down", "status": 500,
                      "error": "HTTP 500", "fetched_at": day(on)}])
    store.finish_crawl(crawl, "finished")
    return crawl


def test_only_pages_of_another_version_are_redone(fresh_db):
    c1 = store_crawl(fresh_db, {"/": HOME, "/offer": OFFER}, on=1)
    c2 = store_crawl(fresh_db, {"/": HOME, "/offer": OFFER}, on=8)
    v1 = KeywordDetector("v1", {"FDA": "regulatory-misrepresentation", "guaranteed": "miracle-guarantee"})
    assert reanalyze(fresh_db, v1, workers=1)["pages"] == 4  # the 500 page is not text to read
    assert reanalyze(fresh_db, v1)["pages"] == 0 and len(v1.seen) == 4
    v2 = KeywordDetector("v2", {"autism": "disease-cure", "guaranteed": "miracle-guarantee"})
    result = reanalyze(fresh_db, v2, crawl_id=c2)
    assert (result["pages"], result["claims"]) == (2, 2)
    versions = dict(fresh_db.db.execute("select crawl_id, group_concat(distinct detector_version) from claims "
                                        "group by crawl_id").fetchall())
    assert versions == {c1: "v1", c2: "v2"}
    runs = list(fresh_db.db.query("select detector_version, crawl_id, pages, status from reanalysis_runs"))
    assert [(r["detector_version"], r["crawl_id"], r["pages"], r["status"]) for r in runs] == [
        ("v1", None, 4, "finished"), ("v1", None, 0, "finished"), ("v2", c2, 2, "finished")]


def test_cues_come_from_the_stored_snapshot(fresh_db):
    store_crawl(fresh_db, {"/": HOME})
    seen = []

    class CueDetector(KeywordDetector):
        def analyze_many(self, pages, n_process=1):
            for page in pages:
                seen.append(page.cues)
                yield PageAnalysis(detector_version=self.version)

    reanalyze(fresh_db, CueDetector("v1", {}))
    assert seen and seen[0]["headings"] == ["Clinic"]


def _copy_patterns(tmp_path, drop_ids=(), add=()) -> Path:
    dest = tmp_path / "patterns"
    shutil.copytree(PATTERNS, dest)
    path = dest / "claims_en.jsonl"
    lines = [ln for ln in path.read_text().splitlines() if not any(f'"id": "{i}"' in ln for i in drop_ids)]
    path.write_text("\n".join([*lines, *add]) + "\n")
    return dest


def test_changed_pattern_file_keeps_verdicts(fresh_db, db_path, tmp_path):
    from analysis.detect.detector import Detector

    c1 = store_crawl(fresh_db, {"/": HOME, "/offer": OFFER}, on=1)
    c2 = store_crawl(fresh_db, {"/": HOME, "/offer": OFFER}, on=8)
    before = Detector(patterns_dir=_copy_patterns(tmp_path / "a"))
    reanalyze(fresh_db, before)
    rows = {r["category"]: dict(r) for r in fresh_db.db.query("select * from claims where crawl_id = ?", [c2])}
    for category, sentence in (("regulatory-misrepresentation", FDA), ("disease-cure", AUTISM),
                               ("miracle-guarantee", GUARANTEE)):
        assert sentence in rows[category]["sentence"]
    keys = {FDA: rows["regulatory-misrepresentation"]["claim_key"], GUARANTEE: rows["miracle-guarantee"]["claim_key"]}
    add_review(fresh_db.db, keys[FDA], "confirmed", "no FDA approval on record", reviewer="ana")
    add_review(fresh_db.db, keys[GUARANTEE], "false-alarm", reviewer="ben")
    # the FDA pattern is dropped; the guarantee is found by a new pattern instead
    after = Detector(patterns_dir=_copy_patterns(
        tmp_path / "b", drop_ids=("rm-approved", "mg-miracle"),
        add=['{"label": "miracle-guarantee", "pattern": "money back", "id": "mg-money-back"}']))
    assert after.version != before.version
    result = reanalyze(fresh_db, after, crawl_id=c2, workers=2)
    assert result["pages"] == 2
    assert result["verdicts_no_longer_detected"] == {}  # crawl 1 still has the FDA claim
    # crawl 1 still holds the old reading: the change is flagged as the detector's
    [removed] = [r for r in changes(fresh_db.db, Since(crawl_id=c1)) if r["change"] == "removed"]
    assert (removed["claim_key"], removed["page_changed"], removed["detector_changed"]) == (keys[FDA], 0, 1)
    assert removed["verdict"] == "confirmed"
    result = reanalyze(fresh_db, after)
    assert result["verdicts_no_longer_detected"] == {keys[FDA]: "confirmed"}
    assert "1 reviewed claim is no longer detected (1 confirmed)" in describe(result)
    assert changes(fresh_db.db, Since(crawl_id=c1)) == []
    status = {r["claim_key"]: dict(r) for r in fresh_db.db.query("select * from claim_status")}
    guarantee = status[keys[GUARANTEE]]  # same category and sentence: the same claim, verdict kept
    assert (guarantee["verdict"], guarantee["detector_version"]) == ("false-alarm", after.version)
    assert keys[FDA] not in status
    verdicts = {r["claim_key"]: r["verdict"] for r in fresh_db.db.query("select * from claim_verdicts")}
    assert verdicts == {keys[FDA]: "confirmed", keys[GUARANTEE]: "false-alarm"}  # nothing destroyed


def test_one_and_two_workers_find_the_same_claims(fresh_db, tmp_path):
    from analysis.detect.detector import Detector

    pages = {f"/p{i}": HOME if i % 2 else OFFER for i in range(140)}
    store_crawl(fresh_db, pages)
    detector = Detector(patterns_dir=_copy_patterns(tmp_path))
    one = reanalyze(fresh_db, detector, workers=1, batch=20)
    claims_one = fresh_db.db.execute("select url, category, stance, start, end from claims order by 1, 2, 4").fetchall()
    fresh_db.db.execute("update pages set detector_version = 'old'")
    two = reanalyze(fresh_db, detector, workers=2, batch=20)
    claims_two = fresh_db.db.execute("select url, category, stance, start, end from claims order by 1, 2, 4").fetchall()
    assert one["pages"] == two["pages"] == 140 and (one["workers"], two["workers"]) == (1, 2)
    assert claims_one == claims_two and len(claims_one) >= 140


def test_reanalyze_command(fresh_db, db_path):
    store_crawl(fresh_db, {"/": HOME, "/offer": OFFER})
    fresh_db.close()
    runner = CliRunner()
    first = runner.invoke(cli, ["reanalyze", "--db", str(db_path), "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert "Re-analysed 2 pages" in first.output
    again = runner.invoke(cli, ["reanalyze", "--db", str(db_path)])
    assert again.exit_code == 0 and "nothing to do" in again.output
