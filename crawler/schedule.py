"""Periodic crawls: one run now (for cron or a systemd timer), or a loop.

Each run is `stemwatch crawl` in a fresh Python process, so Scrapy's
reactor starts clean every time. Overlapping runs are refused with an
exclusive `flock` on a lock file next to the database: a second run that
finds the lock held skips, says so and exits with EX_TEMPFAIL (75). The
kernel drops the lock when its holder dies, so a killed run never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

LOCKED = 75  # EX_TEMPFAIL: try again later
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_interval(text: str) -> float:
    """Seconds in `90s`, `30m`, `12h`, `7d`, `2w` (or a plain number of seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"an interval looks like 30m, 12h, 7d or 2w, not {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def next_start(last_start: float, every: float, now: float) -> float:
    """Runs start on a fixed grid; after an overrun the next one starts at once."""
    return max(last_start + every, now)


def crawl_argv(seeds: list[str], db: str, *, max_pages_per_site: int | None = None,
               allow_hosts: tuple[str, ...] = (), extra: tuple[str, ...] = (),
               python: str = sys.executable) -> list[str]:
    argv = [python, "-m", "analysis.cli", "crawl", *seeds, "--db", str(db)]
    if max_pages_per_site:
        argv += ["--max-pages-per-site", str(max_pages_per_site)]
    for host in allow_hosts:
        argv += ["--allow-host", host]
    return argv + list(extra)


def default_lock_path(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(db.name + ".schedule.lock")


class LockHeld(Exception):
    pass


class RunLock:
    """An exclusive, non-blocking flock held for the life of the `with` block."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd: int | None = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip()
            os.close(self.fd)
            self.fd = None
            raise LockHeld(f"another scheduled run holds {self.path} ({holder or 'unknown holder'})") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def run_once(argv: list[str], lock_path: str | Path, log: Callable[[str], None] = print) -> int:
    """One crawl under the lock; its exit code, or LOCKED if a run is going on."""
    try:
        with RunLock(lock_path):
            log(f"starting: {' '.join(argv[2:])}")
            code = subprocess.call(argv)
            log(f"finished with exit code {code}")
            return code
    except LockHeld as e:
        log(f"skipped: {e}")
        return LOCKED


def run_every(argv: list[str], lock_path: str | Path, every: float, *, max_runs: int | None = None,
              log: Callable[[str], None] = print, clock: Callable[[], float] = time.time,
              sleep: Callable[[float], None] = time.sleep) -> list[int]:
    """Run now, then every `every` seconds, `max_runs` times (None: forever)."""
    codes: list[int] = []
    start = clock()
    while True:
        codes.append(run_once(argv, lock_path, log))
        if max_runs is not None and len(codes) >= max_runs:
            return codes
        start = next_start(start, every, clock())
        wait = start - clock()
        if wait > 0:
            log(f"next run at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))}")
            sleep(wait)
