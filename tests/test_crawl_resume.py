"""Kill a real crawl process with SIGKILL (twice, at different moments),
resume it, and check nothing stored is fetched again, nothing is stored
twice, the crawl keeps its id and the database is intact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

from tests.servers import REPO, Site, crawl_command, generated_site, run_crawl_cli

TOTAL = 240  # pages on the site: /, /p/0 ... /p/238 (all reachable)
SETTINGS = {"STEMWATCH_DETECT": "1", "STEMWATCH_BATCH_SIZE": "10", "STEMWATCH_MAX_PAGES_PER_SITE": "1000",
            "DEPTH_LIMIT": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "4", "STEMWATCH_MAX_PER_PATTERN": "0"}


def stored_count(db) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("select count(*) from pages").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def stored_urls(db) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("select url from pages")}
    finally:
        conn.close()


def detector_workers(pid: int) -> list[int]:
    """Detection worker processes of the crawl process `pid`."""
    import os

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


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_when(proc, db, at_least: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while stored_count(db) < at_least:
        assert proc.poll() is None, "the crawl ended before it could be killed"
        assert time.monotonic() < deadline, "the crawl made no progress"
        time.sleep(0.05)
    workers = detector_workers(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # The detection worker notices its crawl is gone and exits by itself.
    deadline = time.monotonic() + 10
    while not all(gone(w) for w in workers):
        assert time.monotonic() < deadline, f"detection workers {workers} outlived the killed crawl"
        time.sleep(0.1)
    return workers


def slow_pages(routes):
    page = routes["/p/*"]

    def handle(handler, path, query):
        time.sleep(0.01)
        return page(handler, path, query)
    return {**routes, "/p/*": handle}


def test_sigkill_and_resume(tmp_path):
    db = tmp_path / "resume.db"
    with Site(slow_pages(generated_site(TOTAL - 1, links_per_page=3))) as site:
        first = subprocess.Popen(crawl_command([site.url("/")], db, settings=SETTINGS), cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert kill_when(first, db, 30), "no detection worker was running"
        before_second = stored_urls(db)
        hits_at_first_kill = dict(site.hits)

        second = subprocess.Popen(crawl_command([], db, "--resume", settings=SETTINGS), cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_when(second, db, len(before_second) + 60)
        before_third = stored_urls(db)
        # Pages stored before the first kill were not fetched by the second run.
        for url in before_second:
            path = url.split(str(site.port), 1)[1]
            assert site.hits[path] == hits_at_first_kill[path], path

        hits_at_second_kill = dict(site.hits)
        r = run_crawl_cli([], db, "--resume", settings=SETTINGS, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Crawl 1 finished" in r.stdout
        for url in before_third:
            path = url.split(str(site.port), 1)[1]
            assert site.hits[path] == hits_at_second_kill.get(path, 0), path

    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert conn.execute("select count(*) from crawls").fetchone()[0] == 1
    status, pages, stats = conn.execute("select status, pages, stats from crawls").fetchone()
    assert status == "finished"
    assert pages == TOTAL
    assert conn.execute("select count(distinct url) from pages").fetchone()[0] == TOTAL
    assert json.loads(stats)["stemwatch/resumed_with_pages"] == len(before_third)
    # Pages fetched in flight at a kill may be fetched again, nothing more.
    page_hits = sum(n for path, n in site.hits.items() if path.startswith("/p/") or path == "/")
    assert page_hits <= TOTAL + 2 * 25
    # Every page with text was analysed, including those stored by killed runs.
    assert conn.execute("select count(*) from pages where text != '' and detector_version is null"
                        ).fetchone()[0] == 0
    assert conn.execute("select count(*) from claims").fetchone()[0] >= (TOTAL - 1) // 10


def test_resume_refuses_a_finished_crawl(tmp_path):
    db = tmp_path / "done.db"
    with Site(generated_site(3)) as site:
        assert run_crawl_cli([site.url("/")], db).returncode == 0
        r = run_crawl_cli([], db, "--resume")
    assert r.returncode != 0 and "has finished" in r.stderr


def test_sigkill_before_the_first_page_is_stored(tmp_path):
    db = tmp_path / "early.db"
    with Site(generated_site(19)) as site:
        proc = subprocess.Popen(crawl_command([site.url("/")], db, settings=SETTINGS), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        job = tmp_path / "early.db.jobs" / "current.json"
        deadline = time.monotonic() + 30
        while not job.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert stored_count(db) < 20
        r = run_crawl_cli([], db, "--resume", settings=SETTINGS)
        assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert conn.execute("select id, status, pages from crawls").fetchall() == [(1, "finished", 20)]


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    db = tmp_path / "sigint.db"
    with Site(slow_pages(generated_site(TOTAL - 1, links_per_page=3))) as site:
        # in a session of its own, so that Ctrl-C goes to the whole process group, detector
        # workers included, as a terminal sends it
        proc = subprocess.Popen(crawl_command([site.url("/")], db, settings=SETTINGS), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 60
        while stored_count(db) < 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Crawl 1 interrupted" in out
        assert "stemwatch crawl --resume --db" in out
        assert "stemwatch: stopping; finishing the pages in flight" in err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err and "detector process died" not in err
        assert err.rstrip().endswith("- stopped (shutdown)")
        interrupted = stored_count(db)
        assert interrupted < TOTAL
        conn = sqlite3.connect(db)
        # A clean stop analysed what it stored before leaving.
        assert conn.execute("select count(*) from pages where text != '' and detector_version is null"
                            ).fetchone()[0] == 0
        conn.close()
        r = run_crawl_cli([], db, "--resume", settings=SETTINGS, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Crawl 1 finished" in r.stdout
        # progress counts the whole crawl, the pages of the first run included
        assert f"stemwatch: {TOTAL} pages (0 errors, {interrupted} of them before the resume" in r.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("select status, pages from crawls").fetchall() == [("finished", TOTAL)]
    assert conn.execute("select count(distinct url) = count(*) from pages").fetchone()[0] == 1


def test_new_crawl_marks_an_unresumed_one_abandoned(tmp_path):
    db = tmp_path / "two.db"
    with Site(generated_site(19)) as site:
        proc = subprocess.Popen(crawl_command([site.url("/")], db, settings=SETTINGS), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while stored_count(db) < 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kept = stored_count(db)
        r = run_crawl_cli([site.url("/")], db, settings=SETTINGS)
        assert r.returncode == 0, r.stderr
        assert "abandoned" in r.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("select id, status from crawls order by id").fetchall() == [(1, "abandoned"), (2, "finished")]
    assert conn.execute("select count(*) from pages where crawl_id = 1").fetchone()[0] == kept
