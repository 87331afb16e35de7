"""The detection worker process: builds the detector once, analyses batches.

Runs in a `spawn`ed process of the pipeline's ProcessPoolExecutor, so
spaCy never runs on the crawl's reactor thread (nor its core).
"""

from __future__ import annotations

_detector = None


def init():
    global _detector
    from analysis.detect import get_detector

    _detector = get_detector()


def analyze(batch: list[tuple[int, dict]]):
    """[(page_id, page dict)] -> [(page_id, PageAnalysis)]."""
    if _detector is None:
        init()
    pages = [page for _, page in batch]
    results = list(_detector.analyze_many(pages, n_process=1))
    return [(pid, analysis) for (pid, _), analysis in zip(batch, results)]
