"""A hostile site crawled end to end: a page of over a million characters among ordinary
ones, a NUL byte in a comment, terminal escapes and a bidirectional override in a title
and a claim, a quote that a spreadsheet would run. Every ordinary page keeps its claims,
every odd page is recorded, and nothing hostile reaches a terminal or a CSV cell."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import zipfile
import sys

import pytest

from tests.servers import REPO, Site, html, ok, pages, run_crawl_cli

CLAIM = "<p>Our stem cell therapy can reverse autism in children. Book a consultation today.</p>"
FILLER = "<p>Opening hours are Monday to Friday, nine to five, at our downtown office.</p>\n"
BIG = html("Long page", FILLER * 16_000 + CLAIM)
ROUTES = {
    "/": ok(html("Clinic", CLAIM, [f"/p{i}" for i in range(8)] + ["/big", "/nul", "/escape", "/formula"])),
    **{f"/p{i}": ok(html(f"Treatment {i}", CLAIM)) for i in range(8)},
    "/big": ok(BIG),
    "/nul": ok(html("Comment", "<!--\x00-->" + CLAIM)),
    "/escape": ok(html("\x1b]0;pwned\x07Cartilage", "<p>Our injections regrow \x1b[8mknee\x1b[0m cartilage, "
                       "call us.</p><p>Our stem cell therapy is \u202eevorppa ADF\u202c and safe.</p>")),
    "/formula": ok(html("Prices", '<p>=HYPERLINK("https://evil.example","Stem cells cure autism") today.</p>')),
}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile") / "h.db"
    with Site(ROUTES) as site:
        r = run_crawl_cli([site.url("/")], db, settings={"STEMWATCH_DETECT": "1"}, timeout=180)
    assert r.returncode == 0, r.stderr
    return db, r, pages(db)


def _claims(db, url_end):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select category, stance, text, sentence from claims where url like ?",
                            ["%" + url_end]).fetchall()
    finally:
        conn.close()


def test_every_page_is_recorded_and_analysed(crawl):
    db, r, rows = crawl
    assert len(BIG) > 1_000_000
    assert set(rows) == {"/", *(f"/p{i}" for i in range(8)), "/big", "/nul", "/escape", "/formula"}
    assert all(row["error"] is None and row["analysis_error"] is None for row in rows.values())
    assert "could not be analysed" not in r.stdout


def test_ordinary_pages_keep_their_claims_beside_the_long_one(crawl):
    db, _, _ = crawl
    for path in ["/", *(f"/p{i}" for i in range(8)), "/big", "/nul"]:
        assert ("disease-cure", "promoted") in {(c, s) for c, s, _, _ in _claims(db, path)}, path


def test_the_nul_page_is_read_as_the_browser_shows_it(crawl):
    _, _, rows = crawl
    assert "reverse autism" in rows["/nul"]["text"] and "\x00" not in rows["/nul"]["text"]


def test_hostile_text_reaches_no_terminal_and_no_csv_formula(crawl, tmp_path):
    db, _, _ = crawl
    cli = [sys.executable, "-m", "analysis.cli"]
    out = subprocess.run([*cli, "changes", "--db", str(db)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\u202e" not in out.stdout
    bundle = tmp_path / "bundle.zip"
    out = subprocess.run([*cli, "export", "--out", str(bundle), "--db", str(db), "--stance", "", "--unsigned",
                          "--no-browser"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    claims_csv = zipfile.ZipFile(bundle).read("claims.csv").decode("utf-8")
    cells = [v for row in csv.DictReader(claims_csv.splitlines()) for v in row.values() if v]
    assert not any(v.startswith(("=", "+", "@")) for v in cells)
    assert "\u202e" not in zipfile.ZipFile(bundle).read("report.html").decode("utf-8")
