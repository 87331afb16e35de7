"""Rendering benchmark: the same local pages crawled plainly and rendered in Chromium.

Serves --pages site-builder pages from 127.0.0.1 (each an empty root and a script
that fetches its text as JSON, plus a sitemap listing them all), then crawls them
three times in the same run, each crawl in its own process, delays lifted,
detection off (fetching is what is measured):

  (a) off:   STEMWATCH_RENDER=off, the crawl as it was before rendering existed
  (b) auto:  the default mode with the auto rule switched off: the rendering
             handler is installed and hands every request to Scrapy's own
             (what a crawl that renders nothing pays)
  (c) js:    every page rendered, one browser, STEMWATCH_RENDER_PAGES at once

While each crawl runs, its process tree is sampled from /proc: the crawl process,
Playwright's driver and Chromium's processes, by proportional set size (PSS,
shared pages split among the processes sharing them, so the sum means something)
and by RSS. Prints time per page, the ratio rendered/plain, and peak memory.

    .venv/bin/python benchmarks/render.py [--pages 60] [--render-pages 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FAST = {
    "DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
    "STEMWATCH_DETECT": "0", "STEMWATCH_PROGRESS_INTERVAL": "0", "DEPTH_LIMIT": "0",
    "STEMWATCH_MAX_PER_PATTERN": "0", "LOG_LEVEL": "WARNING",
}


def site_routes(pages: int) -> dict:
    from servers import ok

    shell = ('<!doctype html><html><head><meta charset="utf-8"><title>Clinic page {n}</title></head>'
             '<body><div id="root">Loading</div><script src="/app.js"></script>'
             '<a href="/p/{next}">next</a></body></html>')
    app = (b'const n = location.pathname.split("/").pop();'
           b'fetch("/api/" + n + ".json").then(r => r.json()).then(d => {'
           b'document.getElementById("root").innerHTML = d.html; });')
    text = ("<h2>Conditions we treat</h2><p>Our regenerative medicine clinic offers consultations, imaging and "
            "follow-up care. Patients travel from many countries.</p>") * 4
    routes = {"/app.js": ok(app, "application/javascript")}
    for n in range(pages):
        routes[f"/p/{n}"] = ok(shell.format(n=n, next=(n + 1) % pages).encode())
        routes[f"/api/{n}.json"] = ok(json.dumps({"html": text}).encode(), "application/json")
    urls = "".join(f"<url><loc>/p/{n}</loc></url>" for n in range(pages))
    routes["/sitemap.xml"] = ok(f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
                                .encode(), "application/xml")
    routes["/"] = ok(shell.format(n="home", next=0).encode())
    return routes


# -- /proc ------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, ()))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB, or (0, 0) for a process gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "crawl"
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    if "chrom" in exe:
        return "chromium"
    if exe.endswith("/node") or "playwright" in exe:
        return "driver"
    return "other"


class Sampler(threading.Thread):
    """Peak memory by kind (crawl, driver, chromium) of a process tree, sampled every 0.1 s."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.peak: dict[str, tuple[int, int]] = {}
        self.browser_processes = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            sums: dict[str, list[int]] = {}
            browsers = 0
            for pid in _descendants(self.root):
                kind = _kind(pid, self.root)
                pss, rss = _memory_kb(pid)
                acc = sums.setdefault(kind, [0, 0])
                acc[0] += pss
                acc[1] += rss
                browsers += kind == "chromium"
            for kind, (pss, rss) in sums.items():
                old = self.peak.get(kind, (0, 0))
                self.peak[kind] = (max(old[0], pss), max(old[1], rss))
            self.browser_processes = max(self.browser_processes, browsers)
            self.done.wait(0.1)


def crawl(mode: str, url: str, db: Path, render_pages: int) -> dict:
    from servers import crawl_command

    settings = {**FAST, "STEMWATCH_RENDER": "js" if mode == "js" else mode,
                "STEMWATCH_RENDER_PAGES": str(render_pages)}
    if mode == "auto":
        settings["STEMWATCH_RENDER_AUTO_WORDS"] = "0"
    argv = crawl_command([url], db, "--max-pages-per-site", "100000", settings=settings)
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    out, err = proc.communicate(timeout=1800)
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{mode} crawl failed:\n{out}\n{err[-3000:]}")
    import sqlite3

    conn = sqlite3.connect(str(db))
    pages, rendered = conn.execute("select count(*), sum(rendered) from pages where error is null").fetchone()
    stats = json.loads(conn.execute("select stats from crawls").fetchone()[0])
    conn.close()
    seconds = stats["elapsed_time_seconds"]
    start = stats.get("stemwatch/render/browser_start_seconds", 0.0)
    return {"mode": mode, "pages": pages, "rendered": rendered or 0, "seconds": seconds,
            "wall": time.monotonic() - started, "browser_start": start,
            "per_page_ms": 1000 * seconds / max(pages, 1),
            "per_page_after_start_ms": 1000 * (seconds - start) / max(pages, 1),
            "peak": sampler.peak, "browser_processes": sampler.browser_processes,
            "blocked": stats.get("stemwatch/render/blocked", 0)}


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=60)
    ap.add_argument("--render-pages", type=int, default=2, help="STEMWATCH_RENDER_PAGES: pages rendered at once")
    args = ap.parse_args()

    from servers import Site

    results = []
    with tempfile.TemporaryDirectory() as tmp, Site(site_routes(args.pages)) as site:
        for mode in ("off", "auto", "js"):
            results.append(crawl(mode, site.url("/"), Path(tmp) / f"{mode}.db", args.render_pages))
    print(f"site: {args.pages + 1} pages on 127.0.0.1 (a script writes each page's text), no delays, "
          f"detection off, {args.render_pages} pages rendered at once")
    for r in results:
        peak = r["peak"]
        crawl_pss, crawl_rss = peak.get("crawl", (0, 0))
        line = (f"{r['mode']:<5} {r['pages']:>4} pages ({r['rendered']} rendered) in {r['seconds']:6.2f} s: "
                f"{r['per_page_ms']:7.1f} ms/page; crawl process peak {mb(crawl_pss)} PSS / {mb(crawl_rss)} RSS")
        if "chromium" in peak:
            line += (f"; Chromium ({r['browser_processes']} processes at most) peak {mb(peak['chromium'][0])} PSS"
                     f" / {mb(peak['chromium'][1])} RSS; Playwright driver {mb(peak.get('driver', (0, 0))[0])} PSS")
        print(line)
    off, auto, js = results
    print(f"installed but unused (auto, nothing judged) / off: {auto['per_page_ms'] / off['per_page_ms']:.2f}x time "
          f"per page")
    print(f"rendered / plain: {js['per_page_ms'] / off['per_page_ms']:.1f}x time per page "
          f"({js['per_page_after_start_ms'] / off['per_page_ms']:.1f}x after the browser's "
          f"{js['browser_start']:.1f} s start)")
    total_js = sum(v[0] for v in js["peak"].values())
    total_off = sum(v[0] for v in off["peak"].values())
    print(f"memory, all processes of the crawl (peak PSS): rendered {mb(total_js)} vs plain {mb(total_off)} "
          f"= {total_js / max(total_off, 1):.1f}x")


if __name__ == "__main__":
    main()
