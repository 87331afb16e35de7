"""Safety of the database: bad files refused untouched by every command,
online backup, concurrent writer and readers in separate processes, and a
writer killed mid-batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from history_helpers import claim, crawl_with

from analysis.cli import cli
from analysis.store.database import Store

FDA = claim("regulatory-misrepresentation", "Our stem cell therapy is FDA approved.")

# Every command of the history layer that takes --db, with its other arguments.
DB_COMMANDS = {
    "changes": lambda db, tmp: ["changes", "--db", db],
    "review": lambda db, tmp: ["review", "1", "--verdict", "confirmed", "--db", db],
    "reanalyze": lambda db, tmp: ["reanalyze", "--db", db],
    "backup": lambda db, tmp: ["backup", "--db", db, str(tmp / "copy.db")],
    "verify": lambda db, tmp: ["verify", "--db", db],
    "schedule": lambda db, tmp: ["schedule", "https://clinic.example/", "--db", db],
}


def not_sqlite(path):
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 50)


def damaged(path):
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("create table filler (a)")
    conn.executemany("insert into filler values (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[8192:16384] = b"\xee" * 8192  # wreck two pages of the b-trees
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", sorted(DB_COMMANDS))
@pytest.mark.parametrize("spoil,message", [(not_sqlite, "not an SQLite database"), (damaged, "damaged")])
def test_bad_database_refused_byte_for_byte_unmodified(tmp_path, command, spoil, message):
    path = tmp_path / "bad.db"
    spoil(path)
    data = path.read_bytes()
    files = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, DB_COMMANDS[command](str(path), tmp_path))
    assert result.exit_code == 1, result.output
    assert message in result.output and "left untouched" in result.output
    assert "Traceback" not in result.output
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no -wal, -shm, copy or lock


@pytest.mark.parametrize("command", sorted(set(DB_COMMANDS) - {"schedule"}))
def test_missing_database_is_not_created(tmp_path, command):
    path = tmp_path / "nothing-here.db"
    result = CliRunner().invoke(cli, DB_COMMANDS[command](str(path), tmp_path))
    assert result.exit_code == 1 and "no database at" in result.output
    assert list(tmp_path.iterdir()) == []


def test_backup_command(fresh_db, db_path, tmp_path):
    crawl_with(fresh_db, {"/": [FDA], "/b": [FDA]})
    fresh_db.close()
    out = tmp_path / "copy.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["backup", "--db", str(db_path), str(out)])
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("select count(*) from claims").fetchone()[0] == 2
    conn.close()
    again = runner.invoke(cli, ["backup", "--db", str(db_path), str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(cli, ["backup", "--db", str(db_path), str(out), "--force"]).exit_code == 0
    itself = runner.invoke(cli, ["backup", "--db", str(db_path), str(db_path), "--force"])
    assert itself.exit_code == 1 and "itself" in itself.output
    nowhere = runner.invoke(cli, ["backup", "--db", str(db_path), str(tmp_path / "backups" / "copy.db")])
    assert nowhere.exit_code == 1 and f"no folder {tmp_path / 'backups'}" in nowhere.output
    assert "Traceback" not in nowhere.output and not (tmp_path / "backups").exists()


WRITER = """
import sys, time
from analysis.store.database import Store
from analysis.models import Claim, PageAnalysis
store = Store(sys.argv[1])
batches, size = int(sys.argv[2]), int(sys.argv[3])
crawl = store.start_crawl([{"url": "https://clinic.example/", "site": "clinic.example"}])
n = 0
for b in range(batches):
    pages = []
    for i in range(size):
        n += 1
        text = f"Page {n}. Stem cells cure everything, guaranteed. " * 40
        pages.append({"crawl_id": crawl, "site": "clinic.example", "url": f"https://clinic.example/p{n}",
                      "status": 200, "text": text, "body": (text * 3).encode()})
    ids = store.add_pages(pages)
    c = Claim("disease-cure", "promoted", "cure", "Stem cells cure everything.", 0, 4, "p")
    store.add_analyses([(pid, PageAnalysis(claims=[c], detector_version="v1")) for pid in ids])
    print(b + 1, flush=True)
store.finish_crawl(crawl, "finished")
"""

READER = """
import sqlite3, sys, time
# as Datasette reads a mutable database: a read-only connection, default timeout
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, check_same_thread=False)
deadline = time.monotonic() + float(sys.argv[2])
reads = 0
while time.monotonic() < deadline:
    conn.execute("select count(*) from pages").fetchone()
    conn.execute("select category, count(*) from claims group by category").fetchall()
    conn.execute("select count(*) from claim_status where present").fetchone()
    reads += 1
print(reads)
"""


def test_writer_and_readers_in_separate_processes(fresh_db, db_path):
    crawl_with(fresh_db, {"/": [FDA]})
    fresh_db.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), "60", "20"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db_path), "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "1"  # the first batch is in
    copy = db_path.with_name("copy.db")  # an online backup in the middle of the writes
    backup = subprocess.run([sys.executable, "-m", "analysis.cli", "backup", "--db", str(db_path), str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert backup.returncode == 0, backup.stderr
    reviews = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # a journalist recording verdicts meanwhile
        reviews.append(subprocess.run(
            [sys.executable, "-m", "analysis.cli", "review", "1", "--verdict", "unsure", "--db", str(db_path)],
            capture_output=True, text=True))
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=60)
    assert writer.returncode == 0 and "locked" not in w_err, w_err
    assert reader.returncode == 0 and "locked" not in r_err, r_err
    assert w_out.split()[-1] == "60" and int(r_out) > 10
    for r in reviews:
        assert r.returncode == 0 and "locked" not in r.stderr + r.stdout, r.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from pages").fetchone()[0] == 1 + 60 * 20
    assert conn.execute("select count(*) from reviews").fetchone()[0] == len(reviews) >= 2
    conn.close()
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copied = conn.execute("select count(*) from pages").fetchone()[0]
    assert copied > 1 and (copied - 1) % 20 == 0  # whole batches: one consistent state
    conn.close()


def test_writer_killed_mid_write_leaves_a_sound_database(db_path):
    Store(db_path).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), "100000", "25"],
                              stdout=subprocess.PIPE, text=True)
    committed = 0
    while committed < 5:
        line = writer.stdout.readline()
        assert line, "the writer died on its own"
        committed = int(line)
    time.sleep(0.05)  # let it get into the middle of the next batch
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    pages = conn.execute("select count(*) from pages").fetchone()[0]
    analysed = conn.execute("select count(*) from pages where detector_version is not null").fetchone()[0]
    conn.close()
    assert pages >= committed * 25 and pages % 25 == 0  # whole batches only
    assert analysed % 25 == 0
    store = Store(db_path)  # opens, and the crawl left 'running' is still readable
    try:
        assert store.db.execute("select status from crawls").fetchone()[0] == "running"
        assert store.db.execute("select count(*) from claim_status").fetchone()[0] == analysed
    finally:
        store.close()
