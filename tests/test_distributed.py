"""Distributed crawls on a real Redis server: `stemwatch crawl --redis URL --workers N`
against local sites, a worker and then the writer killed with SIGKILL, and every
limit measured at the sites themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.servers import REPO, Site, crawl_command, free_port, html, ok, run_crawl_cli

REDIS_SERVER = shutil.which("redis-server")
DELAY = 0.25  # DOWNLOAD_DELAY of these crawls
# Workers space their requests to a site by DELAY exactly, on the Redis server's
# clock; between that moment and the request reaching the site lie each process's
# own scheduling (a millisecond typically, tens of them on this busy 2-core machine).
JITTER = 0.06
WINDOW = 2.0
CONCURRENCY = 2  # CONCURRENT_REQUESTS_PER_DOMAIN
CAP = 30  # STEMWATCH_MAX_PAGES_PER_SITE
SETTINGS = {
    "DOWNLOAD_DELAY": str(DELAY), "CONCURRENT_REQUESTS_PER_DOMAIN": str(CONCURRENCY),
    "STEMWATCH_MAX_PAGES_PER_SITE": str(CAP), "DEPTH_LIMIT": "0", "STEMWATCH_MAX_PER_PATTERN": "0",
    "STEMWATCH_REDIS_LEASE_TIMEOUT": "3", "STEMWATCH_REDIS_POLL": "0.2",
}
ROBOTS = b"User-agent: *\nDisallow: /private\n"
CLAIM = "<p>Stem cell therapy cures Parkinson's disease and regrows cartilage, guaranteed.</p>"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if REDIS_SERVER is None:
        if os.environ.get("STEMWATCH_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (apt-get install redis-server), and STEMWATCH_REQUIRE_REDIS=1")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def redis_client(url):
    import redis

    return redis.Redis.from_url(url)


def clinic(pages: int, slow: float = 0.0) -> dict:
    """/, /p/0 ... /p/N-1 (all reachable), three links into /private (robots.txt
    disallows it) and a claim on every tenth page."""
    def page(handler, path, query):
        n = int(path.rsplit("/", 1)[1])
        if n >= pages:
            return 404, {"Content-Type": "text/html"}, html("Not found")
        if slow:
            time.sleep(slow)
        links = [f"/p/{(n * 3 + k + 1) % pages}" for k in range(3)] + [f"/private/{n % 3}"]
        return ok(html(f"Page {n}", "<p>Our clinic.</p>" + (CLAIM if n % 10 == 0 else ""), links))

    return {"/": ok(html("Home", "<p>Welcome</p>", ["/p/0"])), "/p/*": page,
            "/private/*": ok(html("Private")), "/robots.txt": ok(ROBOTS, "text/plain")}


def expected_paths(pages: int) -> set[str]:
    return {"/", *(f"/p/{n}" for n in range(pages)), *(f"/private/{n}" for n in range(3))}


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def worker_pids(pid: int) -> list[int]:
    """The writer's local workers: forked from it, so their command line is its own (the
    detector pool's processes are spawned, with a command line of their own)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        own = f.read()
    pids = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if f.read() == own:
                    pids.append(child)
        except OSError:
            pass
    return pids


def stored(db) -> list[tuple[str, str]]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("select site, url from pages").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []


def wait_for(condition, proc, timeout=60, what="the crawl"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"{what} ended first"
        assert time.monotonic() < deadline, f"{what} made no progress"
        time.sleep(0.05)


def politeness(site: Site) -> tuple[int, float, int]:
    """As the site saw it: the most requests answered at once, the least time between two
    arrivals, and the most arrivals within WINDOW seconds."""
    times = sorted(t for t, _ in site.log)
    busiest = max(sum(1 for u in times[i:] if u - t < WINDOW) for i, t in enumerate(times))
    return site.max_active, min(b - a for a, b in zip(times, times[1:])), busiest


def paths_of(rows, site: Site) -> list[str]:
    return [url.split(str(site.port), 1)[1] for _, url in rows if url.startswith(site.base + "/")]


def test_three_workers_one_killed(redis_url, tmp_path):
    db = tmp_path / "d.db"
    sizes = {"slow": 18, "fast": 22, "capped": 60}
    # slow: each page takes longer than DELAY, so two are answered at once at times
    sites = {"slow": Site(clinic(18, slow=0.4)), "fast": Site(clinic(22)), "capped": Site(clinic(60))}
    for site in sites.values():
        site.start()
    try:
        argv = crawl_command([s.url("/") for s in sites.values()], db, "--redis", redis_url, "--workers", "3",
                             settings={**SETTINGS, "STEMWATCH_DETECT": "1"})
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        warc = tmp_path / "d.db.warc" / "crawl-1"
        wait_for(lambda: len(worker_pids(proc.pid)) == 3, proc, what="the workers' start")
        victim = worker_pids(proc.pid)[0]

        def victim_fetched():
            files = list(warc.glob(f"crawl-1-*-{victim}-*.warc.gz")) if warc.exists() else []
            return len(stored(db)) >= 15 and files and files[0].stat().st_size > 5000

        wait_for(victim_fetched, proc)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=90)
    finally:
        for site in sites.values():
            site.stop()
    assert proc.returncode == 0, err
    assert "Crawl 1 finished" in out, out + err
    assert "1 worker(s) stopped answering" in err  # its unfinished requests went back

    rows = stored(db)
    for name, site in sites.items():
        paths = paths_of(rows, site)
        assert len(paths) == len(set(paths)), f"{name}: a page stored twice"
        if name == "capped":
            assert len(paths) == CAP and set(paths) <= expected_paths(sizes[name])
        else:
            assert set(paths) == expected_paths(sizes[name]), name
        # robots.txt held in every worker, the killed one's successors included
        assert not [p for p in site.hits if p.startswith("/private")], name
        assert site.hits["/robots.txt"] >= 1
        # one site's limits held for all workers together, as the site saw them
        most, gap, busiest = politeness(site)
        assert most <= CONCURRENCY, f"{name}: {most} requests at once"
        assert gap >= DELAY - JITTER, f"{name}: two requests {gap:.3f} s apart"
        assert busiest <= WINDOW / DELAY + 1, f"{name}: {busiest} requests within {WINDOW} s"
    assert sites["slow"].max_active == CONCURRENCY  # the limit was reached, not merely unneeded

    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    status, pages, claims, stats = conn.execute("select status, pages, claims, stats from crawls").fetchone()
    assert status == "finished" and pages == len(rows)
    assert claims > 0
    assert conn.execute("select count(*) from pages where text != '' and detector_version is null"
                        ).fetchone()[0] == 0
    assert conn.execute("select count(*) from pages where error like '%robots.txt%'").fetchone()[0] == 9
    # each worker wrote WARC files of its own, and every fetched page points at its record
    names = {p.name.rsplit("-", 1)[0] for p in warc.glob("*.warc.gz")}
    assert len(names) == 3  # one name a worker
    from analysis.evidence.warc import verify_captures
    from analysis.store.database import Store

    with Store(db) as store:
        check = verify_captures(store)
    assert check["problems"] == [] and check["checked"] >= len(rows) - 9
    workers = json.loads(stats)["stemwatch/workers"]
    assert len(workers) == 2 and all(w["finish_reason"] == "finished" for w in workers.values())
    # nothing of the crawl is left in Redis but its "done"
    key = json.loads((tmp_path / "d.db.jobs" / "current.json").read_text())["redis"]["key"]
    assert redis_client(redis_url).keys(f"stemwatch:{{{key}}}:*") == [f"stemwatch:{{{key}}}:state".encode()]


def test_writer_killed_then_resumed_loses_nothing(redis_url, tmp_path):
    PAGES = 120
    db = tmp_path / "w.db"
    settings = {**SETTINGS, "DOWNLOAD_DELAY": "0.1", "STEMWATCH_MAX_PAGES_PER_SITE": "1000",
                "STEMWATCH_BATCH_SIZE": "1000", "STEMWATCH_BATCH_SECONDS": "3"}
    with Site(clinic(PAGES, slow=0.02)) as site:
        argv = crawl_command([site.url("/")], db, "--redis", redis_url, "--workers", "2", settings=settings)
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(stored(db)) >= 10, proc)
        time.sleep(0.5)  # the writer has taken items since its last commit
        workers = worker_pids(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        committed = {url for _, url in stored(db)}
        # the workers see their writer gone and stop, handing back what they hold
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{w}") and open(f"/proc/{w}/stat").read().split()[2] != "Z"
                  for w in workers):
            assert time.monotonic() < deadline, "the workers outlived their writer"
            time.sleep(0.1)
        key = json.loads((tmp_path / "w.db.jobs" / "current.json").read_text())["redis"]["key"]
        r = redis_client(redis_url)
        assert r.llen(f"stemwatch:{{{key}}}:writing") > 0, "the writer held nothing uncommitted: this proves nothing"
        assert r.zcard(f"stemwatch:{{{key}}}:workers") == 0

        hits_before = {p: n for p, n in site.hits.items() if p.startswith("/p/")}
        # resumed with the Redis server and key it recorded, plus a worker "on another machine"
        remote = subprocess.Popen([sys.executable, "-m", "analysis.cli", "worker", "--redis", redis_url,
                                   "--crawl", key, "--warc-dir", str(tmp_path / "elsewhere")],
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        result = run_crawl_cli([], db, "--resume", "--workers", "1", settings=settings, timeout=90)
        assert remote.wait(timeout=30) == 0, remote.stderr.read()
    assert result.returncode == 0, result.stderr
    assert "Crawl 1 finished" in result.stdout

    paths = paths_of(stored(db), site)
    assert sorted(paths) == sorted(expected_paths(PAGES))  # every page, each once
    assert committed <= {url for _, url in stored(db)}
    # what was fetched before the kill was stored from Redis, not fetched again
    for path, n in hits_before.items():
        assert site.hits[path] == n, path
    assert all(n == 1 for p, n in site.hits.items() if p.startswith("/p/"))
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert conn.execute("select id, status from crawls").fetchall() == [(1, "finished")]
    # the remote worker's WARC files are its own; copied next to the database, they check out
    theirs = list((tmp_path / "elsewhere" / "crawl-1").glob("*.warc.gz"))
    pointed = {r[0] for r in conn.execute("select distinct warc_file from pages where warc_file is not null")}
    for f in theirs:
        shutil.copy(f, tmp_path / "w.db.warc" / "crawl-1" / f.name)
    from analysis.evidence.warc import verify_captures
    from analysis.store.database import Store

    with Store(db) as store:
        assert verify_captures(store)["problems"] == []
    assert pointed & {f.name for f in theirs}, "the remote worker stored nothing"


def test_worker_refuses_unknown_crawl_and_the_crawl_settings(redis_url):
    base = [sys.executable, "-m", "analysis.cli", "worker", "--redis", redis_url]
    r = subprocess.run(base + ["--crawl", "9-nosuch"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no crawl 9-nosuch in Redis" in r.stderr
    r = subprocess.run(base[:4] + ["--redis", "redis://127.0.0.1:1/0", "--crawl", "1-x"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot reach Redis at redis://127.0.0.1:1/0" in r.stderr
    # a worker cannot loosen what the crawl was told (politeness, robots.txt, allowed hosts...)
    from crawler.distributed.run import connect, new_config
    from crawler.distributed.state import RedisCrawl

    RedisCrawl(connect(redis_url), "7-test").create(new_config(7, [{"url": "http://127.0.0.1:9/"}], {}), [])
    r = subprocess.run(base + ["--crawl", "7-test", "-s", "DOWNLOAD_DELAY=0", "-s", "ROBOTSTXT_OBEY=0"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DOWNLOAD_DELAY, ROBOTSTXT_OBEY: the crawl's own settings" in r.stderr


def test_without_redis_nothing_of_it_is_imported(tmp_path):
    code = (
        "import sys\n"
        "from analysis.cli import cli\n"
        "sys.argv = ['stemwatch', 'crawl', sys.argv[1], '--db', sys.argv[2], '--allow-host', '127.0.0.1',\n"
        "            '-s', 'STEMWATCH_DETECT=0', '-s', 'DOWNLOAD_DELAY=0']\n"
        "try:\n"
        "    cli.main(standalone_mode=False)\n"
        "finally:\n"
        "    print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'scrapy_redis')))\n"
    )
    with Site({"/": ok(html("Home", "<p>Welcome</p>"))}) as site:
        r = subprocess.run([sys.executable, "-c", code, site.url("/"), str(tmp_path / "x.db")], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Crawl 1 finished" in r.stdout
    assert "LOADED []" in r.stdout
