"""Queries of archive imports (analysis/importer.py): the crawl records an
archive's captures are stored under, and what the store already holds.

An imported archive gets one crawl record per capture day (UTC), so the
history views see each day an archive looked at a site as one observation
round, as they see a crawl. A URL captured twice on one day goes to a second
record of that day (a crawl holds a URL once). The record's settings name the
archive (`imported_from`, its absolute path), the day and the round, so a
second import of the same file finds its records again; started_at and
finished_at are the first and last capture in it, and warc_dir the folder of
the archive (or the WACZ itself), for `verify --db` and `export`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from analysis import __version__
from analysis.store.database import Store, utcnow, write_transaction


@dataclass
class ImportCrawl:
    """A crawl record of an imported archive: one capture day (and round) of it."""

    id: int
    day: str  # YYYY-MM-DD, UTC
    round: int  # 1, or more when a URL was captured again that day
    urls: set[str] = field(default_factory=set)  # the URLs it holds (a crawl holds a URL once)


def import_crawls(store: Store, archive: str) -> list[ImportCrawl]:
    """The crawl records already holding captures of this archive, with their URLs."""
    crawls = {}
    for crawl_id, settings in store.db.execute(
            "select id, settings from crawls where json_extract(settings, '$.imported_from') = ? order by id",
            [archive]):
        info = json.loads(settings)
        crawls[crawl_id] = ImportCrawl(crawl_id, info["capture_day"], int(info.get("round") or 1))
    if crawls:
        marks = ",".join("?" * len(crawls))
        for crawl_id, url in store.db.execute(f"select crawl_id, url from pages where crawl_id in ({marks})",
                                              list(crawls)):
            crawls[crawl_id].urls.add(url)
    return list(crawls.values())


def start_import_crawl(store: Store, archive: str, warc_dir: Path, day: str, round_: int,
                       started_at: str) -> int:
    """A crawl record for one capture day of an archive (in the caller's transaction)."""
    settings = {"imported_from": archive, "capture_day": day, "round": round_,
                "software": f"stemwatch {__version__}", "imported_at": utcnow()}
    return store.db["crawls"].insert({
        "started_at": started_at, "finished_at": None, "seeds": "[]", "status": "running",
        "pages": 0, "errors": 0, "claims": 0, "settings": json.dumps(settings), "stats": None,
        "detector_version": None, "warc_dir": store.stored_path(warc_dir),
    }).last_pk


def add_archived_sites(store: Store, sites: dict[str, str]) -> None:
    """Site rows for sites first met in an archive (key -> its root URL). A site
    already known keeps its row: the seed list's name, URL and crawl dates."""
    store.db["sites"].insert_all(({"domain": key, "url": url} for key, url in sites.items()),
                                 pk="domain", ignore=True)


def already_imported(store: Store, url: str, fetched_at: str, sha256: str) -> bool:
    """Whether the store holds this capture: the same URL, capture time and body."""
    return store.db.execute("select 1 from pages where url = ? and fetched_at = ? and sha256 = ? limit 1",
                            [url, fetched_at, sha256]).fetchone() is not None


def finish_import_crawls(store: Store, crawl_ids: list[int], status: str, stats: dict) -> None:
    """Counts and status of an archive's crawl records, their span (the first and last
    capture in each) and the detector version that read their pages."""
    with write_transaction(store.db):
        for crawl_id in crawl_ids:
            store.finish_crawl(crawl_id, status, stats)
            store.db.execute(
                "update crawls set started_at = coalesce((select min(fetched_at) from pages where crawl_id = ?1), "
                "started_at), finished_at = (select max(fetched_at) from pages where crawl_id = ?1), "
                "detector_version = (select max(detector_version) from pages where crawl_id = ?1) where id = ?1",
                [crawl_id])


def unanalysed_pages(store: Store, crawl_ids: list[int]) -> list[int]:
    """Pages of these crawls no detector has read (a killed import, or --no-detect)."""
    return [row["id"] for crawl_id in crawl_ids for row in store.pages_to_analyze(crawl_id, columns="id")]
