"""Crawl benchmark: a bare Scrapy spider vs the full stemwatch crawl.

Generates a local site of --pages interlinked pages (clinic-like text, a
claim on every tenth page), serves it from a threaded server on 127.0.0.1
(listen backlog raised: `python -m http.server`'s backlog of 5 drops
connections under a crawl), then crawls it twice in the same run, each in
its own process, with politeness delays lifted for both:

  (a) bare: a scrapy.Spider that only follows links (no storage, no detection)
  (b) full: `run_crawl` - the clinics spider, SQLite storage, snapshots,
      links, and the detector in its own process

and prints pages/s, the ratio full/bare and peak RSS (crawl process, and
detector process for the full crawl).

    .venv/bin/python benchmarks/crawl.py [--pages 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FAST = {
    "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False, "REMOTE_CONTROL_ENABLED": False,
}


def site_routes(pages: int):
    """Pre-rendered pages, so the server is not what is measured."""
    from tests.servers import html, ok

    para = ("Our regenerative medicine clinic offers consultations, imaging and follow-up care. "
            "Patients travel from many countries; our coordinators arrange transport and lodging. ") * 12
    claim = ("<h2>Conditions we treat</h2><ul><li>Parkinson's disease</li><li>Autism</li></ul>"
             "<p>Stem cell therapy cures arthritis and regrows cartilage, guaranteed results.</p>")
    bodies = {}
    for n in range(pages):
        links = [f"/p/{(n * 7 + k + 1) % pages}" for k in range(6)] + ["/", "https://www.fda.gov/"]
        bodies[f"/p/{n}"] = ok(html(f"Clinic page {n}", f"<p>{para}</p>{claim if n % 10 == 0 else ''}", links))
    bodies["/"] = ok(html("Clinic", "<p>Welcome</p>", ["/p/0", "/p/1", "/p/2"]))
    return bodies


def run_bare(url: str, concurrency: int) -> dict:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = [url]

        def parse(self, response):
            for href in response.css("a::attr(href)").getall():
                target = response.urljoin(href)
                if target.startswith(url.rstrip("/")):
                    yield scrapy.Request(target, callback=self.parse)

    stats = {}
    process = CrawlerProcess({**FAST, "CONCURRENT_REQUESTS": concurrency,
                              "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency, "ROBOTSTXT_OBEY": False})
    crawler = process.create_crawler(Bare)
    process.crawl(crawler)
    process.start()
    stats.update(crawler.stats.get_stats())
    return {"pages": stats.get("response_received_count", 0),
            "seconds": stats["elapsed_time_seconds"]}


def run_full(url: str, concurrency: int, db: str) -> dict:
    from crawler.run import run_crawl
    from analysis.store.database import Store

    crawl_id = run_crawl(
        [{"url": url}], db, max_pages_per_site=10 ** 6, allow_hosts=["127.0.0.1"],
        settings={**FAST, "CONCURRENT_REQUESTS": concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
                  "DEPTH_LIMIT": 0, "STEMWATCH_PROGRESS_INTERVAL": 0, "STEMWATCH_MAX_PER_PATTERN": 0},
    )
    store = Store(db)
    row = store.db["crawls"].get(crawl_id)
    stats = json.loads(row["stats"])
    store.close()
    return {"pages": row["pages"], "claims": row["claims"], "seconds": stats["elapsed_time_seconds"]}


def child(mode: str, url: str, concurrency: int, db: str):
    result = run_bare(url, concurrency) if mode == "bare" else run_full(url, concurrency, db)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def measure(mode: str, url: str, concurrency: int, db: str) -> dict:
    started = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--url", url, "--db", db,
                          "--concurrency", str(concurrency)], capture_output=True, text=True, cwd=REPO)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{mode} crawl failed:\n{out.stdout}\n{out.stderr}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_seconds"] = time.monotonic() - started
    result["rate"] = result["pages"] / result["seconds"]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--child", choices=("bare", "full"))
    ap.add_argument("--url")
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.url, args.concurrency, args.db)

    from tests.servers import Site

    with tempfile.TemporaryDirectory() as tmp, Site(site_routes(args.pages)) as site:
        url = site.url("/")
        bare = measure("bare", url, args.concurrency, "")
        full = measure("full", url, args.concurrency, str(Path(tmp) / "bench.db"))
    print(f"site: {args.pages + 1} pages on 127.0.0.1, concurrency {args.concurrency}, no delays")
    for name, r in (("bare scrapy spider", bare), ("full stemwatch crawl", full)):
        print(f"{name:<22} {r['pages']:>6} pages in {r['seconds']:6.1f} s = {r['rate']:6.1f} pages/s, "
              f"peak RSS {r['rss_mb']:.0f} MB" + (f" (+ detector process {r['children_rss_mb']:.0f} MB)"
                                                  if name.startswith("full") else ""))
    print(f"ratio full/bare: {full['rate'] / bare['rate']:.0%} (goal: >= 60%)")
    if "claims" in full:
        print(f"claims found: {full['claims']}")


if __name__ == "__main__":
    main()
