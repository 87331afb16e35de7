"""Scheduled crawls: intervals, the run grid, and the lock against overlapping runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from analysis.cli import cli
from crawler.schedule import (LOCKED, RunLock, LockHeld, crawl_argv, default_lock_path, next_start,
                               parse_interval, run_every)


def test_parse_interval():
    assert parse_interval("90s") == 90
    assert parse_interval("30m") == 1800
    assert parse_interval("12h") == 43200
    assert parse_interval("7d") == 7 * 86400
    assert parse_interval("2w") == 14 * 86400
    assert parse_interval("1.5h") == 5400
    assert parse_interval("600") == 600
    for bad in ("", "weekly", "7x", "0d", "-1h"):
        with pytest.raises(ValueError, match="30m, 12h, 7d"):
            parse_interval(bad)


def test_next_start_keeps_the_grid_and_catches_up_after_an_overrun():
    assert next_start(1000, 60, now=1010) == 1060
    assert next_start(1000, 60, now=1075) == 1075  # the run took longer than the interval


def test_crawl_argv():
    argv = crawl_argv(["seeds.csv"], "data/x.db", max_pages_per_site=50, allow_hosts=("127.0.0.1",), python="py")
    assert argv == ["py", "-m", "analysis.cli", "crawl", "seeds.csv", "--db", "data/x.db",
                    "--max-pages-per-site", "50", "--allow-host", "127.0.0.1"]
    assert default_lock_path("data/x.db").name == "x.db.schedule.lock"


def test_run_every_runs_on_a_fixed_grid(tmp_path):
    now = [1000.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    logs = []
    codes = run_every([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "l", 3600,
                      max_runs=3, log=logs.append, clock=lambda: now[0], sleep=sleep)
    assert codes == [3, 3, 3]
    assert slept == [3600, 3600]
    assert sum("next run at" in line for line in logs) == 2


RUN_ONCE = """
import sys
from crawler.schedule import run_once
sys.exit(run_once([sys.executable, "-c", "import time; time.sleep(float(__import__('sys').argv[1]))", sys.argv[2]],
                  sys.argv[1]))
"""


def _wait_for_holder(lock, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and f"pid {proc.pid}" in lock.read_text():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_overlapping_run_is_skipped_in_another_process(tmp_path):
    lock = tmp_path / "crawl.lock"
    first = subprocess.Popen([sys.executable, "-c", RUN_ONCE, str(lock), "3"], stdout=subprocess.PIPE, text=True)
    _wait_for_holder(lock, first)
    second = subprocess.run([sys.executable, "-c", RUN_ONCE, str(lock), "0"], capture_output=True, text=True,
                            timeout=30)
    assert second.returncode == LOCKED
    assert "skipped: another scheduled run holds" in second.stdout and f"pid {first.pid}" in second.stdout
    assert first.wait(timeout=30) == 0
    third = subprocess.run([sys.executable, "-c", RUN_ONCE, str(lock), "0"], capture_output=True, text=True,
                           timeout=30)
    assert third.returncode == 0 and "finished with exit code 0" in third.stdout


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / "crawl.lock"
    first = subprocess.Popen([sys.executable, "-c", RUN_ONCE, str(lock), "30"], stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    _wait_for_holder(lock, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    with RunLock(lock):  # free again
        with pytest.raises(LockHeld):
            with RunLock(lock):
                pass


def test_schedule_command_skips_while_locked(tmp_path):
    db = tmp_path / "clinics.db"
    with RunLock(default_lock_path(db)):
        result = CliRunner().invoke(cli, ["schedule", "https://clinic.example/", "--db", str(db)])
    assert result.exit_code == LOCKED, result.output
    assert "skipped" in result.output


def test_schedule_command_rejects_a_bad_interval(tmp_path):
    result = CliRunner().invoke(cli, ["schedule", "seeds.csv", "--db", str(tmp_path / "x.db"), "--every", "weekly"])
    assert result.exit_code == 2 and "30m, 12h, 7d" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["changes", "review", "reanalyze", "backup", "verify", "schedule"])
def test_help_ends_with_an_unwrapped_example(command):
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=80)
    assert result.exit_code == 0
    description = result.output.split("Options:")[0].strip().splitlines()
    assert description[-1].strip().startswith(f"Example: stemwatch {command} ")
    assert "--db" in description[-1]
