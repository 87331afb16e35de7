"""Re-run the detector over stored pages without re-crawling.

Only pages whose `detector_version` differs from the current detector's are
redone, so an interrupted run resumes where it stopped and a second run with
the same detector does nothing. Claims are written by `Store.add_analyses`,
the one writer of claims: each row carries the detector version that made
it, and an unchanged claim keeps its row id. Verdicts live in `reviews`,
keyed by claim identity, and are never touched here.

Detection runs over the page text stored at crawl time (the offsets of
claims refer to it); the page cues the detector uses to tell a clinic from a
news story are re-extracted from the stored HTML snapshot.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

from .storage import Store, utcnow

PAGE_COLUMNS = "id, url, title, text, lang, sha256, content_type"


def chunked(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def page_cues(store: Store, row: dict) -> dict:
    """The structural cues of an HTML page, from its stored snapshot."""
    if not row.get("sha256") or "html" not in (row.get("content_type") or "html"):
        return {}
    from .extract import extract_html

    try:
        return extract_html(store.snapshot_body(row["sha256"]), row["url"]).cues
    except Exception:  # a missing or unreadable snapshot: analyse the text alone
        return {}


def detector_input(row: dict, cues: dict) -> dict:
    return {"text": row["text"], "url": row["url"], "title": row.get("title") or "",
            "lang": row.get("lang") or "", "cues": cues}


def _load(store: Store, ids: list[int], with_cues: bool) -> list[tuple[int, dict]]:
    marks = ",".join("?" * len(ids))
    rows = [dict(r) for r in store.db.query(f"select {PAGE_COLUMNS} from pages where id in ({marks}) order by id", ids)]
    return [(r["id"], detector_input(r, page_cues(store, r) if with_cues else {})) for r in rows]


def _inputs(store: Store, ids: list[int], chunk: int, with_cues: bool) -> Iterator[tuple[int, dict]]:
    for part in chunked(ids, chunk):
        yield from _load(store, part, with_cues)


def reanalyze(store: Store, detector, *, crawl_id: int | None = None, workers: int = 2,
              batch: int = 100, with_cues: bool = True,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Detect claims again in every page `detector.version` has not read.

    One `analyze_many` call streams all pages through `workers` processes;
    results are stored one transaction per `batch` pages."""
    version = detector.version
    ids = [r["id"] for r in store.pages_to_analyze(crawl_id, version=version, columns="id")]
    started = time.monotonic()
    run_id = store.db["reanalysis_runs"].insert(
        {"started_at": utcnow(), "detector_version": version, "crawl_id": crawl_id,
         "workers": workers, "pages": 0, "claims": 0, "status": "running"}).last_pk
    done = claims = 0
    status = "interrupted"
    try:
        if ids:
            pages = _inputs(store, ids, max(batch, 1) * 4, with_cues)
            page_ids: list[int] = []

            def docs() -> Iterator[dict]:
                for pid, doc in pages:
                    page_ids.append(pid)
                    yield doc

            results = detector.analyze_many(docs(), n_process=workers)
            for part in _batches(_paired(page_ids, results), batch):
                claims += store.add_analyses(part)
                done += len(part)
                if progress:
                    progress(done, len(ids))
        status = "finished"
    finally:
        seconds = round(time.monotonic() - started, 3)
        store.db["reanalysis_runs"].update(run_id, {
            "finished_at": utcnow(), "pages": done, "claims": claims,
            "seconds": seconds, "status": status})
    return {"run": run_id, "version": version, "pages": done, "claims": claims, "seconds": seconds,
            "pages_per_second": round(done / seconds, 2) if seconds and done else None}


def _paired(page_ids: list[int], results: Iterable) -> Iterator[tuple[int, object]]:
    """(page id, analysis): the detector consumes its input ahead of its
    results, so the n-th result's page id is known when it arrives."""
    for n, analysis in enumerate(results):
        yield page_ids[n], analysis


def _batches(pairs: Iterable, size: int) -> Iterator[list]:
    part = []
    for pair in pairs:
        part.append(pair)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def describe(result: dict) -> str:
    if not result["pages"]:
        return f"Every page was already analysed by detector {result['version']}; nothing to do."
    return (f"Re-analysed {result['pages']} pages with detector {result['version']}: "
            f"{result['claims']} claims in {result['seconds']}s ({result['pages_per_second']} pages/s)")

