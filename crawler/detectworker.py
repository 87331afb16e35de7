"""The detection worker process: builds the detector once, analyses batches.

Runs in a `spawn`ed process of the pipeline's ProcessPoolExecutor, so
spaCy never runs on the crawl's reactor thread (nor its core).
"""

from __future__ import annotations

import os
import threading
import time

_detector = None


def _exit_with(parent_pid: int):
    """A crawl killed with SIGKILL cannot stop its pool, and the worker (which
    holds both ends of its queue's pipe) would wait forever: leave as soon as
    the crawl process is gone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def init(parent_pid: int | None = None):
    global _detector
    if parent_pid:
        threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True, name="orphan-watch").start()
    from analysis.detect.detector import get_detector

    _detector = get_detector()


def analyze(batch: list[tuple[int, dict]]):
    """[(page_id, page dict)] -> [(page_id, PageAnalysis)]."""
    if _detector is None:
        init()
    pages = [page for _, page in batch]
    results = list(_detector.analyze_many(pages, n_process=1))
    return [(pid, analysis) for (pid, _), analysis in zip(batch, results)]
