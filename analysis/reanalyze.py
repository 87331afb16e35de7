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

Both cores: with workers > 1, batches of pages go to the detector pool
(analysis.detect.pool), started once per run; cue extraction runs there too,
and this process only reads pages and writes results.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from analysis.detect.pool import DetectorPool, DetectorVersionError, batched
from analysis.store.database import Store
from analysis.store.queries import detected_verdicts, finish_reanalysis_run, start_reanalysis_run

class ReanalysisError(Exception):
    pass


def reanalyze(store: Store, detector, *, crawl_id: int | None = None, workers: int = 2,
              batch: int = 100, progress: Callable[[int, int], None] | None = None) -> dict:
    """Detect claims again in every page `detector.version` has not read.

    Results are stored one transaction per `batch` pages, as they arrive."""
    version = detector.version
    ids = [r["id"] for r in store.pages_to_analyze(crawl_id, version=version, columns="id")]
    workers = min(workers, max(1, len(ids) // batch))  # a pool only pays off with work for it
    started = time.monotonic()
    run_id = start_reanalysis_run(store, version, crawl_id, workers)
    done = claims = 0
    failed: list[int] = []  # pages the detector could not analyse (pages.analysis_error)
    status = "interrupted"
    reviewed = detected_verdicts(store)

    def write(results):
        nonlocal done, claims
        claims += store.add_analyses(results)
        done += len(results)
        failed.extend(pid for pid, analysis in results if analysis.error)
        if progress:
            progress(done, len(ids))

    processes = workers if workers > 1 and getattr(detector, "patterns_dir", None) else 0
    try:
        with DetectorPool(processes, detector=detector) as pool:
            in_flight: deque = deque()  # (stored pages, future of their analyses), in order

            def write_first():
                stored, future = in_flight.popleft()
                write([(pid, analysis) for (pid, _), analysis in zip(stored, future.result())])

            for part in batched(ids, batch):
                stored = store.stored_pages(part)
                in_flight.append((stored, pool.submit([page for _, page in stored])))
                while len(in_flight) > 2 * processes:
                    write_first()
            while in_flight:
                write_first()
        status = "finished"
    except DetectorVersionError as e:
        raise ReanalysisError(str(e)) from e
    finally:
        seconds = round(time.monotonic() - started, 3)
        finish_reanalysis_run(store, run_id, pages=done, claims=claims, workers=workers,
                              seconds=seconds, status=status)
    # reviewed claims this detector no longer finds anywhere: their verdicts stay in
    # `reviews`; a confirmed claim lost is worth a look at the pattern change
    still = detected_verdicts(store)
    lost = {key: verdict for key, verdict in reviewed.items() if key not in still}
    return {"run": run_id, "version": version, "pages": done, "claims": claims, "seconds": seconds,
            "workers": workers, "pages_per_second": round(done / seconds, 1) if seconds and done else None,
            "verdicts_no_longer_detected": lost, "not_analysed": failed}


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
    failed = result.get("not_analysed") or []
    if failed:
        note += (f"\n{len(failed)} page(s) could not be analysed (ids {', '.join(map(str, failed[:20]))}"
                 f"{', ...' if len(failed) > 20 else ''}): the reason is in pages.analysis_error")
    return (f"Re-analysed {result['pages']} pages with detector {result['version']} "
            f"({result['workers']} process{'es' if result['workers'] > 1 else ''}): "
            f"{result['claims']} claims in {result['seconds']}s ({result['pages_per_second']} pages/s)" + note)
