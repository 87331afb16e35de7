"""End to end: the demo sites on 127.0.0.1, the real crawl, the real detector, a real database.

`stemwatch demo --no-serve` runs in a subprocess (a Twisted reactor runs once
per process), exactly as `make demo` does apart from serving Datasette.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict

import pytest
import sqlite_utils

from analysis.demo import DEMO_DIR, load_site_list
from conftest import REPO, STEMWATCH

EXPECTED = json.loads((DEMO_DIR / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("demo") / "demo.db"
    result = subprocess.run(
        [*STEMWATCH, "demo", "--no-serve", "--db", str(db_path), "--sites-port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite_utils.Database(db_path)
    slugs = {row["name"]: row["slug"] for row in load_site_list()}
    # The demo's seed names tie each stored site back to its folder.
    site_slug = {row["domain"]: slugs[row["name"]] for row in db["sites"].rows}
    return result.stdout, db, site_slug


def test_crawl_record(demo_run):
    out, db, _ = demo_run
    [crawl] = list(db["crawls"].rows)
    assert crawl["status"] == "finished"
    assert crawl["pages"] == db["pages"].count > 30
    assert crawl["claims"] == db["claims"].count > 0
    assert crawl["finished_at"] >= crawl["started_at"]
    assert "pages fetched" in out and "Claims by category and stance" in out


def test_every_reachable_page_fetched_once(demo_run):
    _, db, site_slug = demo_run
    per_slug = defaultdict(set)
    for page in db.query("select site, url from pages where status = 200 and content_type like 'text/html%'"):
        per_slug[site_slug[page["site"]]].add(page["url"])
    for slug, expected in EXPECTED.items():
        assert len(per_slug[slug]) == expected["pages"], slug
    urls = [r["url"] for r in db.query("select url from pages")]
    assert len(urls) == len(set(urls))


def test_robots_disallowed_pages_are_not_fetched(demo_run):
    _, db, _ = demo_run
    disallowed = [p for e in EXPECTED.values() for p in e.get("robots_disallowed", [])]
    assert disallowed, "the demo must exercise robots.txt"
    for path in disallowed:
        rows = list(db.query("select status, text, sha256, error from pages where url like ?", [f"%{path}%"]))
        # Not fetched: no status, no body, no text; the skip itself is recorded with its reason.
        assert all(r["status"] is None and not r["text"] and r["sha256"] is None for r in rows), rows
        assert all("robots" in (r["error"] or "").lower() for r in rows), rows


def test_promoted_categories_per_site(demo_run):
    _, db, site_slug = demo_run
    found = defaultdict(set)
    for row in db.query("select site, category from claims where stance = 'promoted'"):
        found[site_slug[row["site"]]].add(row["category"])
    for slug, expected in EXPECTED.items():
        missing = set(expected["promoted"]) - found[slug]
        assert not missing, f"{slug}: expected promoted {sorted(missing)}"


def test_all_categories_and_stances_present(demo_run):
    _, db, _ = demo_run
    categories = {r["category"] for r in db.query("select distinct category from claims where stance = 'promoted'")}
    stances = {r["stance"] for r in db.query("select distinct stance from claims")}
    assert len(categories) == 8
    assert stances == {"promoted", "negated", "cautionary", "reported"}


def test_sample_claims_found_with_their_stance(demo_run):
    _, db, site_slug = demo_run
    for slug, expected in EXPECTED.items():
        for sample in expected.get("sample_claims", []):
            rows = list(db.query(
                "select stance, sentence from claims where category = ? and url like ?",
                [sample["category"], f"%{sample['path']}"],
            ))
            assert any(
                r["stance"] == sample["stance"] and sample["sentence"][:40] in r["sentence"] for r in rows
            ), f"{slug} {sample}: got {rows}"


def test_claim_offsets_point_at_page_text(demo_run):
    _, db, _ = demo_run
    rows = list(db.query(
        "select c.text, c.start, c.end, p.text as page_text from claims c join pages p on p.id = c.page_id"
    ))
    assert rows
    for r in rows:
        assert r["page_text"][r["start"]:r["end"]] == r["text"]


def test_disallowed_sentences_never_stored(demo_run):
    _, db, _ = demo_run
    for expected in EXPECTED.values():
        for sentence in expected.get("disallowed_sentences", []):
            assert db.execute("select count(*) from pages where text like ?", [f"%{sentence[:50]}%"]).fetchone()[0] == 0


def test_sitemap_only_pages_found(demo_run):
    _, db, _ = demo_run
    paths = [p for e in EXPECTED.values() for p in e.get("sitemap_only", [])]
    assert paths
    for path in paths:
        assert db.execute("select count(*) from pages where url like ? and status = 200", [f"%{path}"]).fetchone()[0] == 1


def test_broken_links_recorded_with_status(demo_run):
    _, db, _ = demo_run
    paths = [p for e in EXPECTED.values() for p in e.get("broken_links", [])]
    assert paths
    for path in paths:
        [row] = list(db.query("select status from pages where url like ?", [f"%{path}"]))
        assert row["status"] == 404


def test_near_miss_pages_promote_nothing(demo_run):
    _, db, site_slug = demo_run
    slug_site = {v: k for k, v in site_slug.items()}
    for slug, expected in EXPECTED.items():
        for path in expected.get("no_claim_pages", []):
            rows = list(db.query(
                "select category, sentence from claims where site = ? and url like ? and stance = 'promoted'",
                [slug_site[slug], f"%{path}"],
            ))
            assert rows == [], f"{slug}{path}: {rows}"


def test_the_largest_clinics_evidence_report_prints_under_ten_pages(demo_run, tmp_path):
    """The demo clinic with the most promoted claims, exported and printed as a regulator gets it."""
    import os
    import shutil
    import zipfile

    if not (shutil.which("chromium") and shutil.which("pdfinfo")):
        if os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium and pdfinfo are required (STEMWATCH_REQUIRE_BROWSER=1)")
        pytest.skip("no Chromium or pdfinfo")
    _, db, _ = demo_run
    [(site, claims)] = db.execute(
        "select s.name, count(*) n from claims c join sites s on s.domain = c.site "
        "where c.stance = 'promoted' group by c.site order by n desc limit 1").fetchall()
    assert claims > 50  # large enough to be a fair test of the layout
    bundle = tmp_path / "largest.zip"
    result = subprocess.run([*STEMWATCH, "export", "--db", str(db.conn.execute("pragma database_list").fetchone()[2]),
                             "--site", site, "--out", str(bundle), "--unsigned"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "report.pdf").write_bytes(zipfile.ZipFile(bundle).read("report.pdf"))
    info = subprocess.run(["pdfinfo", str(tmp_path / "report.pdf")], capture_output=True, text=True, check=True)
    pages = int(next(line.split()[-1] for line in info.stdout.splitlines() if line.startswith("Pages:")))
    assert 2 <= pages < 10
