"""The foundation schema: batched writes, no duplicates on a resumed crawl, snapshots."""

from __future__ import annotations

import sqlite3

import pytest

from analysis.models import Claim, PageAnalysis
from analysis.store.database import Store, StoreError, claim_key


def _page(crawl, url, **kw):
    return {"crawl_id": crawl, "site": "example.org", "url": url, "status": 200, "text": "t", **kw}


def test_schema_tables_and_wal(fresh_db):
    tables = set(fresh_db.db.table_names())
    assert {"crawls", "sites", "pages", "claims", "snapshots", "links"} <= tables
    assert fresh_db.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_page_in_same_crawl_is_not_duplicated(fresh_db):
    crawl = fresh_db.start_crawl([{"url": "https://example.org/"}])
    first = fresh_db.add_pages([_page(crawl, "https://example.org/a")])
    again = fresh_db.add_pages([_page(crawl, "https://example.org/a"), _page(crawl, "https://example.org/b")])
    assert again[0] == first[0]
    assert fresh_db.db["pages"].count == 2


def test_snapshot_stored_once_and_verified(fresh_db):
    c1 = fresh_db.start_crawl([{"url": "https://example.org/"}])
    c2 = fresh_db.start_crawl([{"url": "https://example.org/"}])
    body = b"<html><body>We cure everything</body></html>"
    fresh_db.add_pages([_page(c1, "https://example.org/", body=body)])
    fresh_db.add_pages([_page(c2, "https://example.org/", body=body)])
    assert fresh_db.db["snapshots"].count == 1
    digest = fresh_db.db["pages"].get(1)["sha256"]
    assert fresh_db.snapshot_body(digest) == body
    fresh_db.db.execute("update snapshots set body = ? where sha256 = ?", [__import__("zlib").compress(b"x"), digest])
    with pytest.raises(StoreError, match="altered"):
        fresh_db.snapshot_body(digest)


def test_reanalysis_replaces_claims_of_a_page(fresh_db):
    crawl = fresh_db.start_crawl([{"url": "https://example.org/"}])
    [pid] = fresh_db.add_pages([_page(crawl, "https://example.org/")])
    claim = Claim("miracle-guarantee", "promoted", "miracle", "A miracle cure.", 2, 9, "p")
    fresh_db.add_analyses([(pid, PageAnalysis(claims=[claim, claim], detector_version="1"))])
    fresh_db.add_analyses([(pid, PageAnalysis(claims=[claim], detector_version="2"))])
    rows = list(fresh_db.db["claims"].rows)
    assert len(rows) == 1 and rows[0]["detector_version"] == "2"
    assert rows[0]["claim_key"] == claim_key("example.org", "https://example.org/", "miracle-guarantee", "a MIRACLE cure")
    assert fresh_db.pages_to_analyze(crawl) == []
    assert [p["id"] for p in fresh_db.pages_to_analyze(crawl, version="3")] == [pid]


def test_not_a_database_is_refused_untouched(tmp_path):
    path = tmp_path / "x.db"
    path.write_bytes(b"PK\x03\x04 a zip file, not sqlite")
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store(path)
    assert path.read_bytes() == b"PK\x03\x04 a zip file, not sqlite"


def test_damaged_database_is_refused_untouched(tmp_path):
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("create table t (a)")
    conn.executemany("insert into t values (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # wreck the second page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        Store(path)
    assert path.read_bytes() == bytes(data)
