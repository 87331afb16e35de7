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

Both cores: with workers > 1, batches of pages go to a pool of processes
started once per run, each holding its own detector built from the same
pattern directory and running it with n_process=1; cue extraction runs
there too, and the main process only reads pages and writes results.
(spaCy's own n_process starts fresh workers for every chunk analyze_many
hands it and pickles each Doc back; with the detector of 2026-11-25 04:25
it was three times slower than one process.)
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from collections import deque
from typing import Callable, Iterator

from analysis.store.history import decode_snapshot
from analysis.models import PageAnalysis
from analysis.store.database import Store, utcnow

PAGE_COLUMNS = ("p.id, p.url, p.title, p.text, p.lang, p.content_type, p.sha256, "
                "s.compression, s.body AS snapshot")


def chunked(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load_pages(store: Store, ids: list[int]) -> list[dict]:
    """The stored text and (compressed) snapshot of these pages."""
    marks = ",".join("?" * len(ids))
    sql = (f"select {PAGE_COLUMNS} from pages p left join snapshots s on s.sha256 = p.sha256 "
           f"where p.id in ({marks}) order by p.id")
    return [dict(r) for r in store.db.query(sql, ids)]


def page_cues(row: dict) -> dict:
    """The structural cues of an HTML page, from its stored snapshot ({} without one)."""
    if not row.get("snapshot") or "html" not in (row.get("content_type") or "html"):
        return {}
    body = decode_snapshot(row["sha256"], row.get("compression"), row["snapshot"])
    if body is None:  # altered or undecodable: analyse the text alone
        return {}
    from analysis.extract import extract_html

    return extract_html(body, row["url"]).cues


def detector_input(row: dict) -> dict:
    return {"text": row["text"], "url": row["url"], "title": row.get("title") or "",
            "lang": row.get("lang") or "", "cues": page_cues(row)}


def analyse_pages(detector, rows: list[dict]) -> list[tuple[int, PageAnalysis]]:
    results = detector.analyze_many([detector_input(r) for r in rows], n_process=1)
    return [(r["id"], analysis) for r, analysis in zip(rows, results)]


# -- the worker processes ----------------------------------------------------------
class ReanalysisError(Exception):
    pass


_worker_detector = None
_expected_version = None


def _init_worker(patterns_dir: str, version: str):
    global _worker_detector, _expected_version
    from analysis.detect.detector import Detector

    _worker_detector, _expected_version = Detector(patterns_dir=patterns_dir), version


def _analyse_in_worker(rows: list[dict]) -> list[tuple[int, PageAnalysis]]:
    if _worker_detector.version != _expected_version:
        raise ReanalysisError(
            f"the patterns in {_worker_detector.patterns_dir} changed while re-analysing "
            f"({_expected_version} became {_worker_detector.version}); pages done so far are "
            "stored, run reanalyze again to finish")
    return analyse_pages(_worker_detector, rows)


def _pool(detector, workers: int):
    """A pool of detector processes, or None to run in this process."""
    patterns_dir = getattr(detector, "patterns_dir", None)
    if workers <= 1 or patterns_dir is None:
        return None
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(str(patterns_dir), detector.version))


def detected_verdicts(store: Store) -> dict[str, str]:
    """claim_key -> current verdict, for reviewed claims some stored page still has."""
    return dict(store.db.execute(
        "select v.claim_key, v.verdict from claim_verdicts v "
        "where exists (select 1 from claims c where c.claim_key = v.claim_key)").fetchall())


def reanalyze(store: Store, detector, *, crawl_id: int | None = None, workers: int = 2,
              batch: int = 100, progress: Callable[[int, int], None] | None = None) -> dict:
    """Detect claims again in every page `detector.version` has not read.

    Results are stored one transaction per `batch` pages, as they arrive."""
    version = detector.version
    ids = [r["id"] for r in store.pages_to_analyze(crawl_id, version=version, columns="id")]
    workers = min(workers, max(1, len(ids) // batch))  # a pool only pays off with work for it
    started = time.monotonic()
    run_id = store.db["reanalysis_runs"].insert(
        {"started_at": utcnow(), "detector_version": version, "crawl_id": crawl_id,
         "workers": workers, "pages": 0, "claims": 0, "status": "running"}).last_pk
    done = claims = 0
    status = "interrupted"
    reviewed = detected_verdicts(store)

    def write(results):
        nonlocal done, claims
        claims += store.add_analyses(results)
        done += len(results)
        if progress:
            progress(done, len(ids))

    pool = _pool(detector, workers)
    try:
        if pool is None:
            for part in chunked(ids, batch):
                write(analyse_pages(detector, load_pages(store, part)))
        else:
            in_flight: deque = deque()
            for part in chunked(ids, batch):
                in_flight.append(pool.submit(_analyse_in_worker, load_pages(store, part)))
                while len(in_flight) > 2 * workers:
                    write(in_flight.popleft().result())
            while in_flight:
                write(in_flight.popleft().result())
        status = "finished"
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        seconds = round(time.monotonic() - started, 3)
        store.db["reanalysis_runs"].update(run_id, {
            "finished_at": utcnow(), "pages": done, "claims": claims, "workers": workers,
            "seconds": seconds, "status": status})
    # reviewed claims this detector no longer finds anywhere: their verdicts stay in
    # `reviews`; a confirmed claim lost is worth a look at the pattern change
    still = detected_verdicts(store)
    lost = {key: verdict for key, verdict in reviewed.items() if key not in still}
    return {"run": run_id, "version": version, "pages": done, "claims": claims, "seconds": seconds,
            "workers": workers, "pages_per_second": round(done / seconds, 1) if seconds and done else None,
            "verdicts_no_longer_detected": lost}


def describe(result: dict) -> str:
    if not result["pages"]:
        return f"Every page was already analysed by detector {result['version']}; nothing to do."
    lost = result.get("verdicts_no_longer_detected") or {}
    if lost:
        counts: dict[str, int] = {}
        for verdict in lost.values():
            counts[verdict] = counts.get(verdict, 0) + 1
        summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        note = (f"\n{len(lost)} reviewed claim{'s are' if len(lost) > 1 else ' is'} no longer detected "
                f"({summary}); the verdicts are kept: {', '.join(sorted(lost))}")
    else:
        note = ""
    return (f"Re-analysed {result['pages']} pages with detector {result['version']} "
            f"({result['workers']} process{'es' if result['workers'] > 1 else ''}): "
            f"{result['claims']} claims in {result['seconds']}s ({result['pages_per_second']} pages/s)" + note)
