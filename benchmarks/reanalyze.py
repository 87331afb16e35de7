"""Re-analysis throughput with 1 and 2 detector processes, in the same run.

Stores the demo sites' pages N times over (as N crawls) in a temporary
database, then re-analyses all of them with --workers 1 and again with
--workers 2.

    .venv/bin/python benchmarks/reanalyze.py [--copies 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from analysis.detect.detector import Detector
from analysis.extract import extract_html
from analysis.reanalyze import reanalyze
from analysis.store.database import Store

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


def fill(store: Store, copies: int) -> int:
    files = sorted(DEMO.rglob("*.html"))
    pages = [(f, f.read_bytes()) for f in files]
    for n in range(copies):
        crawl = store.start_crawl([{"url": "https://demo.example/", "site": "demo.example"}])
        rows = []
        for f, body in pages:
            url = f"https://demo.example/{f.relative_to(DEMO)}"
            page = extract_html(body, url)
            rows.append({"crawl_id": crawl, "site": "demo.example", "url": url, "status": 200,
                         "content_type": "text/html", "title": page.title, "text": page.text, "body": body})
        store.add_pages(rows)
        store.finish_crawl(crawl, "finished")
    return copies * len(pages)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args()
    detector = Detector()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        total = fill(store, args.copies)
        chars = store.db.execute("select sum(length(text)) from pages").fetchone()[0]
        print(f"{total} pages, {chars / total:.0f} characters of text each on average")
        for workers in (1, 2):
            store.db.execute("update pages set detector_version = 'before'")
            result = reanalyze(store, detector, workers=workers)
            print(f"workers={workers}: {result['pages']} pages in {result['seconds']:.1f}s = "
                  f"{result['pages_per_second']} pages/s ({result['claims']} claims)")
        store.close()


if __name__ == "__main__":
    main()
