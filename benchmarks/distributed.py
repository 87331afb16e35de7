"""Distributed crawl benchmark: the single-process crawl vs 1, 2 and 4 Redis workers.

Serves --sites local sites of --pages pre-rendered pages each (clinic-like
text, a claim on every tenth page; the sites of benchmarks/crawl.py) from
threaded servers on 127.0.0.1, starts a redis-server on a free loopback port,
and crawls the same sites, each run in its own processes and database, with
politeness lifted (these servers are ours):

  single      `stemwatch crawl` as it is by default, no Redis
  N workers   `stemwatch crawl --redis URL --workers N`: N workers + the writer

For each: pages stored, wall seconds of the whole command (process start-up,
detector start-up and the final analysis included), pages per second, and CPU
seconds per 1,000 pages summed over every process of the crawl (the command,
its workers, the writer's detector process: getrusage(RUSAGE_CHILDREN) of
this script, whose child waits for all of them) plus the Redis server's
(/proc/PID/stat). The sites' own servers run in this script and are not
counted. Goal: a distributed crawl's CPU per page at most 1.25 x the
single-process crawl's. Each configuration is also run on two-page sites, to
tell what starting and stopping its processes costs from what each page does.

Then the politeness-bound case: one site, DOWNLOAD_DELAY 0.1 s and
CONCURRENT_REQUESTS_PER_DOMAIN 2, crawled by --polite-workers workers: as the
site saw it, requests per second, the most in any one second, the most at once
and the shortest gap between two.

    .venv/bin/python benchmarks/distributed.py [--sites 4] [--pages 600] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FAST = {
    "DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "CONCURRENT_REQUESTS": "16", "DEPTH_LIMIT": "0", "STEMWATCH_MAX_PER_PATTERN": "0",
    "STEMWATCH_MAX_PAGES_PER_SITE": "1000000", "STEMWATCH_PROGRESS_INTERVAL": "0", "LOG_LEVEL": "ERROR",
}


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """utime + stime of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def crawl(urls: list[str], db: Path, settings: dict, redis: tuple[subprocess.Popen, str] | None,
          workers: int = 0) -> dict:
    argv = [sys.executable, "-m", "analysis.cli", "crawl", *urls, "--db", str(db), "--allow-host", "127.0.0.1"]
    for k, v in settings.items():
        argv += ["-s", f"{k}={v}"]
    if redis is not None:
        argv += ["--redis", redis[1], "--workers", str(workers)]
    cpu_before = children_cpu()
    redis_before = process_cpu(redis[0].pid) if redis else 0.0
    started = time.monotonic()
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"crawl failed:\n{out.stdout}\n{out.stderr}")
    cpu = children_cpu() - cpu_before
    redis_cpu = (process_cpu(redis[0].pid) - redis_before) if redis else 0.0
    conn = sqlite3.connect(db)
    pages, claims = conn.execute("select count(*), (select count(*) from claims) from pages").fetchone()
    conn.close()
    return {"pages": pages, "claims": claims, "wall": wall, "rate": pages / wall, "cpu": cpu + redis_cpu,
            "redis_cpu": redis_cpu, "cpu_per_1000": 1000 * (cpu + redis_cpu) / max(pages, 1)}


def politeness(site) -> dict:
    times = sorted(t for t, _ in site.log)
    span = times[-1] - times[0]
    return {"requests": len(times), "per_second": (len(times) - 1) / span if span else 0.0,
            "busiest_second": max(sum(1 for u in times[i:] if u - t < 1.0) for i, t in enumerate(times)),
            "most_at_once": site.max_active, "least_gap": min(b - a for a, b in zip(times, times[1:]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--pages", type=int, default=600, help="pages per site")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--no-detect", action="store_true", help="crawl without the claim detector")
    ap.add_argument("--polite-workers", type=int, default=6)
    ap.add_argument("--polite-pages", type=int, default=80)
    args = ap.parse_args()

    from crawl import site_routes  # benchmarks/crawl.py: the same pre-rendered pages
    from tests.servers import Site

    settings = {**FAST, "STEMWATCH_DETECT": "0" if args.no_detect else "1"}
    results, startup = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        redis = start_redis(tmp)
        try:
            configs = [("single process", 0)] + [(f"{n} worker{'s' if n > 1 else ''} + writer", n)
                                                  for n in (int(w) for w in args.workers.split(","))]
            for size, runs in ((args.pages, results), (1, startup)):
                # then the same crawls of two-page sites: what starting and stopping costs
                sites = [Site(site_routes(size)).start() for _ in range(args.sites)]
                urls = [s.url("/") for s in sites]
                try:
                    for name, n in configs:
                        runs.append((name, crawl(urls, tmp / f"w{n}-{size}.db", settings, redis if n else None, n)))
                finally:
                    for s in sites:
                        s.stop()

            polite = {**FAST, "DOWNLOAD_DELAY": "0.1", "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
                      "STEMWATCH_DETECT": "0"}
            bound = {}
            for label, n in (("single process", 0), (f"{args.polite_workers} workers", args.polite_workers)):
                with Site(site_routes(args.polite_pages)) as site:
                    crawl([site.url("/")], tmp / f"polite{n}.db", polite, redis if n else None, n)
                    bound[label] = politeness(site)
        finally:
            redis[0].terminate()
            redis[0].wait()

    base = results[0][1]
    print(f"{args.sites} sites x {args.pages + 1} pages on 127.0.0.1, no delays, "
          f"detector {'off' if args.no_detect else 'on'}; {os.cpu_count()} CPUs")
    print(f"{'crawl':<22} {'pages':>6} {'wall s':>7} {'pages/s':>8} {'CPU s':>7} {'CPU s/1000 pages':>17} "
          f"{'x single':>9}   {'start-up CPU s':>14} {'after start-up':>15}")
    marginal = {name: (r["cpu"] - fixed["cpu"]) * 1000 / (r["pages"] - fixed["pages"])
                for (name, r), (_, fixed) in zip(results, startup)}
    for (name, r), (_, fixed) in zip(results, startup):
        print(f"{name:<22} {r['pages']:>6} {r['wall']:>7.1f} {r['rate']:>8.1f} {r['cpu']:>7.1f} "
              f"{r['cpu_per_1000']:>17.1f} {r['cpu_per_1000'] / base['cpu_per_1000']:>8.2f}x   "
              f"{fixed['cpu']:>14.1f} {marginal[name]:>9.1f} {marginal[name] / marginal['single process']:>4.2f}x"
              + (f"  (Redis {r['redis_cpu']:.1f} s)" if r["redis_cpu"] else ""))
    print("goal: CPU per page <= 1.25 x the single-process crawl's. Start-up: the same crawls of "
          f"{args.sites} two-page sites; after start-up: CPU s per 1000 pages beyond it, and x single")
    print(f"\npoliteness-bound: one site of {args.polite_pages + 1} pages, DOWNLOAD_DELAY 0.1 s "
          "(<= 10 requests/s), CONCURRENT_REQUESTS_PER_DOMAIN 2, as the site saw it")
    for label, p in bound.items():
        print(f"{label:<22} {p['requests']:>4} requests, {p['per_second']:5.2f}/s, at most {p['busiest_second']} "
              f"in one second, {p['most_at_once']} at once, shortest gap {p['least_gap'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
