"""Build crawl histories through Store, the way the crawler and detector do,
without a network or a detector: for the lifecycle, review and migration tests."""

from __future__ import annotations

from analysis.models import Claim, PageAnalysis

SITE = "clinic.example"


def day(n: int) -> str:
    return f"2026-11-{n:02d}T10:00:00Z"


def claim(category: str, sentence: str, stance: str = "promoted", pattern: str = "p1") -> Claim:
    return Claim(category, stance, sentence.split()[0], sentence, 0, len(sentence.split()[0]), pattern)


def crawl_with(store, pages: dict, *, on: int = 1, site: str = SITE, version: str = "v1",
               text: str | None = None) -> int:
    """One crawl of `site` on day `on`. `pages` maps a path to a list of
    claims (a page fetched with HTTP 200 and read by detector `version`), or
    to an int: the HTTP status of a fetch that failed (500) or found the
    page gone (404). Paths left out were not fetched by this crawl."""
    crawl_id = store.start_crawl([{"url": f"https://{site}/", "site": site}])
    for path, spec in pages.items():
        url = f"https://{site}{path}"
        row = {"crawl_id": crawl_id, "site": site, "url": url, "fetched_at": day(on)}
        if isinstance(spec, int):
            store.add_pages([{**row, "status": spec, "error": f"HTTP {spec}", "body": b"error page"}])
            continue
        body = text or " ".join(c.sentence for c in spec) or "Welcome to our clinic."
        [page_id] = store.add_pages([{**row, "status": 200, "text": body, "body": body.encode()}])
        store.add_analyses([(page_id, PageAnalysis(claims=list(spec), detector_version=version))])
    store.finish_crawl(crawl_id, "finished", detector_version=version)
    return crawl_id


def status_by_sentence(db) -> dict[str, dict]:
    return {r["sentence"]: dict(r) for r in db.query("select * from claim_status")}
