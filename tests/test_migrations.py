"""Schema evolution: an older database upgrades in place, keeping every row;
a newer one is refused; a failing upgrade leaves the database as it was."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from history_helpers import claim, crawl_with, status_by_sentence

from analysis.store import database as storage
from analysis.cli import cli
from analysis.store.reviews import add_review
from analysis.store.database import MIGRATIONS, Store, StoreError

FOUNDATION_TABLES = ("crawls", "sites", "pages", "claims", "snapshots", "links")
FDA = claim("regulatory-misrepresentation", "Our stem cell therapy is FDA approved.")
CURE = claim("disease-cure", "Stem cells cure Parkinson's disease.")
GUARANTEE = claim("miracle-guarantee", "Results guaranteed or your money back.")


# The foundation release's columns: later migrations add columns (null in old rows), never change these.
FOUNDATION_COLUMNS: dict[str, list[str]] = {}


def dump(path, tables=FOUNDATION_TABLES) -> dict:
    conn = sqlite3.connect(path)
    try:
        for t in tables:
            FOUNDATION_COLUMNS.setdefault(t, [r[1] for r in conn.execute(f"pragma table_info([{t}])")])
        return {t: sorted(conn.execute(f"select {', '.join(f'[{c}]' for c in FOUNDATION_COLUMNS[t])} from [{t}]")
                          .fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def applied(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("select name from _sqlite_migrations order by id")]
    finally:
        conn.close()


@pytest.fixture
def foundation_db(db_path):
    """A database as the foundation release wrote it: m001 only, two crawls."""
    store = Store(db_path, migrate=False)
    MIGRATIONS.apply(store.db, stop_before="m002_history")
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE]}, on=1)
    crawl_with(store, {"/": [CURE], "/b": 404}, on=8)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    assert applied(db_path) == ["m001_foundation"]
    return db_path


def test_upgrade_keeps_every_row_and_backs_up_first(foundation_db):
    before = dump(foundation_db)
    assert sum(len(rows) for rows in before.values()) > 10
    store = Store(foundation_db)
    try:
        assert applied(foundation_db) == [m.name for m in MIGRATIONS._migrations]
        assert dump(foundation_db) == before
        st = status_by_sentence(store.db)  # the new views work on the old rows
        assert [st[c.sentence]["present"] for c in (FDA, CURE, GUARANTEE)] == [0, 1, 0]
    finally:
        store.close()
    backup = foundation_db.with_name(foundation_db.name + ".before-m002_history.bak")
    assert applied(backup) == ["m001_foundation"] and dump(backup) == before
    assert sqlite3.connect(backup).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_reopening_an_upgraded_database_changes_nothing(foundation_db):
    Store(foundation_db).close()
    backups = sorted(p.name for p in foundation_db.parent.iterdir() if p.name.endswith(".bak"))
    store = Store(foundation_db)
    assert store.migrate() == []
    store.close()
    assert sorted(p.name for p in foundation_db.parent.iterdir() if p.name.endswith(".bak")) == backups


def test_newer_database_is_refused_untouched(db_path):
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) "
                 "values ('stemwatch', 'm099_from_the_future', '2027-01-01')")
    conn.commit()
    conn.close()
    data = db_path.read_bytes()
    with pytest.raises(StoreError, match="newer stemwatch.*m099_from_the_future"):
        Store(db_path)
    assert db_path.read_bytes() == data
    result = CliRunner().invoke(cli, ["changes", "--db", str(db_path)])
    assert result.exit_code == 1 and "newer stemwatch" in result.output


def test_failing_upgrade_rolls_back_all_pending_migrations(foundation_db, monkeypatch):
    before = dump(foundation_db)

    def m003_broken(db):
        db["claims"].add_column("confidence", float)
        raise RuntimeError("migration bug")

    broken = MIGRATIONS._Migration("m003_broken", m003_broken)
    monkeypatch.setattr(MIGRATIONS, "_migrations", [*MIGRATIONS._migrations, broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(foundation_db)
    assert applied(foundation_db) == ["m001_foundation"]
    assert dump(foundation_db) == before
    conn = sqlite3.connect(foundation_db)
    names = {r[0] for r in conn.execute("select name from sqlite_master")}
    columns = {r[1] for r in conn.execute("pragma table_info(claims)")}
    conn.close()
    assert "reviews" not in names and "claim_status" not in names and "confidence" not in columns


def test_reviews_survive_a_later_migration(db_path, monkeypatch):
    store = Store(db_path)
    crawl_with(store, {"/": [FDA]})
    add_review(store.db, "1", "confirmed", "checked", reviewer="ana")
    store.close()

    def m003_rebuild_claims(db):  # a table rebuild, as sqlite-utils' transform does
        db["claims"].add_column("confidence", float)
        db["claims"].transform(types={"confidence": float})

    later = MIGRATIONS._Migration("m003_rebuild_claims", m003_rebuild_claims)
    monkeypatch.setattr(MIGRATIONS, "_migrations", [*MIGRATIONS._migrations, later])
    store = Store(db_path)
    try:
        row = status_by_sentence(store.db)[FDA.sentence]
        assert (row["verdict"], row["reviewer"], row["verdict_note"]) == ("confirmed", "ana", "checked")
        assert "m003_rebuild_claims" in applied(db_path)
    finally:
        store.close()


def test_old_database_is_upgraded_by_a_command(foundation_db):
    upgrade = CliRunner().invoke(cli, ["upgrade", "--db", str(foundation_db)])
    assert upgrade.exit_code == 0 and "m002_history" in upgrade.output, upgrade.output
    assert (foundation_db.parent / f"{foundation_db.name}.before-m002_history.bak").exists()
    again = CliRunner().invoke(cli, ["upgrade", "--db", str(foundation_db)])
    assert "up to date" in again.output
    result = CliRunner().invoke(cli, ["changes", "--db", str(foundation_db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"removed"' in result.output and "page gone (HTTP 404)" in result.output
    assert applied(foundation_db)[-1] == storage.MIGRATIONS._migrations[-1].name


def test_m003_claim_changes_has_the_same_rows_as_m002(db_path):
    store = Store(db_path, migrate=False)
    MIGRATIONS.apply(store.db, stop_before="m003_faster_claim_changes")
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE], "/c": [CURE]}, on=1)
    crawl_with(store, {"/": [CURE], "/b": 404, "/c": 500}, on=8)
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE], "/c": []}, on=15)
    add_review(store.db, "1", "confirmed")
    query = "select * from claim_changes order by crawl_id, change, claim_key"
    before = [tuple(r) for r in store.db.execute(query)]
    assert len(before) == 4 + 2 + 3  # first sight; FDA and the 404; two returns and /c emptied
    store.migrate()
    assert "m003_faster_claim_changes" in applied(db_path)
    assert [tuple(r) for r in store.db.execute(query)] == before
    store.close()


@pytest.mark.parametrize("migration,view", [("m004_faster_claim_status", "claim_status"),
                                             ("m005_faster_claim_verdicts", "claim_verdicts")])
def test_faster_view_has_the_same_rows_as_before(db_path, migration, view):
    store = Store(db_path, migrate=False)
    MIGRATIONS.apply(store.db, stop_before=migration)
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE]}, on=1)
    crawl_with(store, {"/": [CURE], "/b": 404}, on=8)
    add_review(store.db, "1", "unsure")
    add_review(store.db, "1", "confirmed", "seen", reviewer="ana")
    add_review(store.db, "2", "false-alarm")
    query = f"select * from {view} order by claim_key"
    before = [tuple(r) for r in store.db.execute(query)]
    verdicts = {r[0]: r for r in store.db.execute("select * from claim_verdicts")}
    assert len(before) == {"claim_status": 3, "claim_verdicts": 2}[view]
    assert {v[1] for v in verdicts.values()} == {"confirmed", "false-alarm"}
    assert sorted(v[-1] for v in verdicts.values()) == [1, 2]  # reviews per claim
    store.migrate()
    assert migration in applied(db_path)
    assert [tuple(r) for r in store.db.execute(query)] == before
    store.close()


def test_capture_order_keeps_the_history_of_crawls_run_in_order(db_path):
    """m014 orders observations by capture time; for crawls run one after another
    (returns, a 404, a failed fetch, a page not reached, two crawls on one day)
    every history view keeps its rows."""
    store = Store(db_path, migrate=False)
    MIGRATIONS.apply(store.db, stop_before="m014_history_in_capture_order")
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE], "/c": [CURE], "/d": [FDA]}, on=1)
    crawl_with(store, {"/": [CURE], "/b": 404, "/c": 500}, on=8)
    crawl_with(store, {"/": [FDA, CURE], "/b": [GUARANTEE], "/c": []}, on=8)
    crawl_with(store, {"/": [FDA], "/d": []}, on=15)
    add_review(store.db, "1", "confirmed")
    queries = {view: f"select * from {view} order by {order}" for view, order in (
        ("claim_changes", "crawl_id, change, claim_key"), ("claim_status", "claim_key"),
        ("page_history", "url, crawl_id"))}
    before = {view: [tuple(r) for r in store.db.execute(q)] for view, q in queries.items()}
    assert len(before["claim_changes"]) == 12 and len(before["claim_status"]) == 5
    store.migrate()
    assert "m014_history_in_capture_order" in applied(db_path)
    assert {view: [tuple(r) for r in store.db.execute(q)] for view, q in queries.items()} == before
    store.close()


OPEN_AND_READ = """
import sys
from analysis.store.database import Store
store = Store(sys.argv[1])
print(store.db.execute("select count(*) from claim_status").fetchone()[0])
store.close()
"""


def test_processes_opening_an_old_database_at_once_upgrade_it_once(foundation_db):
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_READ, str(foundation_db)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {"3"}
    assert applied(foundation_db) == [m.name for m in MIGRATIONS._migrations]
    # one copy, taken under the upgrade's lock: the database as it was before
    [backup] = [p for p in foundation_db.parent.iterdir() if p.name.endswith(".bak")]
    assert applied(backup) == ["m001_foundation"]
    assert not [p for p in foundation_db.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("args", [["changes"], ["export", "--out", "{out}.zip", "--unsigned", "--no-browser"]],
                         ids=lambda a: a[0])
def test_a_command_that_only_reads_never_upgrades(foundation_db, tmp_path, args):
    import hashlib

    before = hashlib.sha256(foundation_db.read_bytes()).hexdigest()
    files = sorted(p.name for p in foundation_db.parent.iterdir())
    args = [a.format(out=tmp_path / "bundle") for a in args]
    result = CliRunner().invoke(cli, [*args, "--db", str(foundation_db)])
    assert result.exit_code == 1
    assert "written by an older stemwatch" in result.output and "stemwatch upgrade --db" in result.output
    assert hashlib.sha256(foundation_db.read_bytes()).hexdigest() == before
    assert applied(foundation_db) == ["m001_foundation"]
    assert sorted(p.name for p in foundation_db.parent.iterdir() if not p.name.endswith(("-wal", "-shm"))) == \
        [f for f in files if not f.endswith(("-wal", "-shm"))]
