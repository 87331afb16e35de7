"""The SQLite database: schema, migrations and batched writes.

This module owns the schema. Every change to it is a new migration in
MIGRATIONS (sqlite-utils' own migration sets), so a database made by an
older stemwatch upgrades in place and keeps every row.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Iterable

import sqlite_utils
from sqlite_utils.migrations import Migrations

from analysis.models import PageAnalysis, StoredPage

SQLITE_HEADER = b"SQLite format 3\x00"
MIGRATIONS = Migrations("stemwatch")


class StoreError(Exception):
    """A database stemwatch cannot use, said in words a user can act on."""


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def normalise_sentence(sentence: str) -> str:
    """The form of a sentence used in a claim's identity: case, spacing and
    punctuation do not make a new claim; a reworded sentence does."""
    return re.sub(r"[^\w%]+", " ", sentence.lower()).strip()


def claim_key(site: str, url: str, category: str, sentence: str) -> str:
    raw = "\x1f".join((site, url, category, normalise_sentence(sentence)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


@MIGRATIONS()
def m001_foundation(db: sqlite_utils.Database):
    db["crawls"].create(
        {
            "id": int, "started_at": str, "finished_at": str, "seeds": str,
            "status": str, "pages": int, "errors": int, "claims": int,
            "settings": str, "stats": str, "detector_version": str,
        },
        pk="id",
    )
    db["sites"].create(
        {
            "domain": str, "name": str, "url": str, "country": str, "state": str,
            "notes": str, "extra": str, "first_crawled": str, "last_crawled": str,
        },
        pk="domain",
    )
    db["pages"].create(
        {
            "id": int, "crawl_id": int, "site": str, "url": str, "final_url": str,
            "status": int, "content_type": str, "fetched_at": str, "sha256": str,
            "size": int, "title": str, "text": str, "error": str, "depth": int,
            "referer": str, "headers": str, "page_kind": str, "lang": str,
            "detector_version": str,
        },
        pk="id",
        foreign_keys=[("crawl_id", "crawls", "id"), ("site", "sites", "domain")],
    )
    db["pages"].create_index(["crawl_id", "url"], unique=True)
    db["pages"].create_index(["site"])
    db["pages"].create_index(["url"])
    db["claims"].create(
        {
            "id": int, "page_id": int, "crawl_id": int, "site": str, "url": str,
            "category": str, "stance": str, "severity": str, "text": str,
            "sentence": str, "start": int, "end": int, "pattern": str, "why": str,
            "cue": str, "page_kind": str, "lang": str, "claim_key": str,
            "detector_version": str,
        },
        pk="id",
        foreign_keys=[("page_id", "pages", "id"), ("crawl_id", "crawls", "id"), ("site", "sites", "domain")],
    )
    for cols in (["page_id"], ["crawl_id"], ["site"], ["category", "stance"], ["claim_key"]):
        db["claims"].create_index(cols)
    # Raw responses, content-addressed and compressed: stored once however
    # many crawls see the same bytes, never overwritten.
    db["snapshots"].create(
        {"sha256": str, "size": int, "compression": str, "body": bytes, "first_seen": str},
        pk="sha256",
    )
    db["links"].create(
        {"page_id": int, "crawl_id": int, "site": str, "source": str, "target": str,
         "target_site": str, "outbound": int},
        foreign_keys=[("page_id", "pages", "id")],
    )
    db["links"].create_index(["page_id", "target"], unique=True)
    db["links"].create_index(["target_site"])
    db["claims"].enable_fts(["text", "sentence"], create_triggers=True)
    db["pages"].enable_fts(["title", "text"], create_triggers=True)


def _execute_statements(db: sqlite_utils.Database, sql: str):
    """One statement at a time: executescript would commit the migration's transaction."""
    for statement in sql.split(";\n"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS()
def m002_history(db: sqlite_utils.Database):
    """Reviews (append-only), re-analysis runs and the lifecycle views:
    page_history, page_observations, claim_changes, claim_status,
    claim_verdicts. Rules in analysis/history_sql.py."""
    from analysis.store.history_sql import M002_SQL

    _execute_statements(db, M002_SQL)


@MIGRATIONS()
def m003_faster_claim_changes(db: sqlite_utils.Database):
    """claim_changes rewritten for speed; same columns, same rows."""
    from analysis.store.history_sql import M003_CLAIM_CHANGES

    _execute_statements(db, M003_CLAIM_CHANGES)



@MIGRATIONS()
def m004_faster_claim_status(db: sqlite_utils.Database):
    """claim_status takes the current verdict by index lookup; same columns, same rows."""
    from analysis.store.history_sql import M004_CLAIM_STATUS

    _execute_statements(db, M004_CLAIM_STATUS)


@MIGRATIONS()
def m005_faster_claim_verdicts(db: sqlite_utils.Database):
    """claim_verdicts looked up by index; same columns, same rows."""
    from analysis.store.history_sql import M005_CLAIM_VERDICTS

    _execute_statements(db, M005_CLAIM_VERDICTS)


@MIGRATIONS()
def m006_claim_scores(db: sqlite_utils.Database):
    """claims.score: the learned stage's score for the claim's category on its page
    (null for claims found by the rules alone), indexed so a queue sorts by it."""
    if "score" not in db["claims"].columns_dict:
        db["claims"].add_column("score", float)
    db["claims"].create_index(["score"], if_not_exists=True)


@MIGRATIONS()
def m007_analysis_errors(db: sqlite_utils.Database):
    """pages.analysis_error: why the detector could not analyse a page (null: it did)."""
    if "analysis_error" not in db["pages"].columns_dict:
        db["pages"].add_column("analysis_error", str)


@MIGRATIONS()
def m008_warc_captures(db: sqlite_utils.Database):
    """Evidence captured at fetch time: crawls.warc_dir (the crawl's WARC set,
    relative to the database's folder when inside it) and, per page, the WARC
    file, byte range and record id of its response (null: not captured)."""
    if "warc_dir" not in db["crawls"].columns_dict:
        db["crawls"].add_column("warc_dir", str)
    for name, kind in (("warc_file", str), ("warc_offset", int), ("warc_length", int), ("warc_record_id", str)):
        if name not in db["pages"].columns_dict:
            db["pages"].add_column(name, kind)


@MIGRATIONS()
def m009_reviewers(db: sqlite_utils.Database):
    """reviewers: who may sign in to Datasette and record verdicts, each password kept only
    as its PBKDF2 hash (analysis/store/reviewers.py). It touches no other table."""
    db["reviewers"].create(
        {"name": str, "password_hash": str, "created_at": str, "disabled": int},
        pk="name", not_null={"password_hash", "created_at", "disabled"}, defaults={"disabled": 0},
        if_not_exists=True,
    )


@MIGRATIONS()
def m010_page_resources(db: sqlite_utils.Database):
    """page_resources: stylesheets and images fetched with a page so its capture
    replays as seen (a WARC record each; not pages, never analysed); pages.resources
    lists a page's, as JSON."""
    if "resources" not in db["pages"].columns_dict:
        db["pages"].add_column("resources", str)
    db["page_resources"].create({
        "id": int, "crawl_id": int, "site": str, "url": str, "status": int, "content_type": str,
        "fetched_at": str, "warc_file": str, "warc_offset": int, "warc_length": int, "warc_record_id": str,
    }, pk="id", foreign_keys=[("crawl_id", "crawls", "id")], if_not_exists=True)
    db["page_resources"].create_index(["crawl_id", "url"], unique=True, if_not_exists=True)


@MIGRATIONS()
def m011_rendered_pages(db: sqlite_utils.Database):
    """Pages rendered in Chromium (crawler/render.py): pages.rendered (1: sha256, text
    and claims are the DOM's after the scripts ran), raw_sha256 (what the server sent,
    kept as a snapshot too), render_reason (why rendering was asked: crawl, seed,
    auto), render_error (asked, failed: stored as the server sent it) and
    rendered_record_id (the WARC conversion record of the DOM)."""
    columns = db["pages"].columns_dict
    if "rendered" not in columns:
        db["pages"].add_column("rendered", int, not_null_default=0)
    for name in ("raw_sha256", "render_reason", "render_error", "rendered_record_id"):
        if name not in columns:
            db["pages"].add_column(name, str)


@MIGRATIONS()
def m012_queue_indexes(db: sqlite_utils.Database):
    """Indexes of the review queue (rules in analysis/store/queue_sql.py): promoted claims
    in queue order, each site's latest crawl, a claim identity's crawls. Indexes only, on
    m001's columns and m006's score: nothing else depends on them, nor they on anything else."""
    from analysis.store.queue_sql import M012_QUEUE_INDEXES

    _execute_statements(db, M012_QUEUE_INDEXES)


@MIGRATIONS()
def m013_datasette_at_scale(db: sqlite_utils.Database):
    """Datasette at a million claims: page_observation_steps and claim_status planned for
    filters (same columns, same rows), indexes for the review queue, facets and what is
    new, and claim_counts (claims per crawl, site, category and stance, kept by triggers)
    for the charts. SQL in analysis/store/scale_sql.py."""
    from analysis.store.scale_sql import M013_SQL, statements

    for statement in statements(M013_SQL):
        db.execute(statement)


@MIGRATIONS()
def m014_history_in_capture_order(db: sqlite_utils.Database):
    """The history views order a page's observations by capture time, then crawl id,
    so an archive imported after later crawls takes its place in the past (rules in
    analysis/store/history_sql.py): m013's page_observation_steps, claim_changes and
    claim_status in that order, same columns; pages indexed by URL and that order, and
    by site and capture time for "the site's latest crawl"."""
    from analysis.store.history_sql import M014_CAPTURE_ORDER

    _execute_statements(db, M014_CAPTURE_ORDER)


@contextmanager
def write_transaction(db: sqlite_utils.Database):
    """A write transaction that takes the write lock at once (BEGIN IMMEDIATE).

    With sqlite-utils' atomic() (a deferred BEGIN), a transaction that reads
    before it writes fails at once with "database is locked" when another
    process committed in between (WAL cannot upgrade a stale snapshot, and
    the busy timeout does not apply). BEGIN IMMEDIATE waits out the busy
    timeout instead. Nested, it is a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_sqlite_file(path: Path) -> None:
    """Refuse, without touching it, a file that is not an SQLite database."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        header = f.read(16)
    if header != SQLITE_HEADER:
        raise StoreError(f"{path} is not an SQLite database (wrong file header); it was left untouched")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is a damaged SQLite database ({e}); it was left untouched") from e
    if row and row[0] != "ok":
        raise StoreError(f"{path} is a damaged SQLite database ({row[0]}); it was left untouched")
    foreign = _foreign_tables(path)
    if foreign:
        raise StoreError(f"{path} is an SQLite database, but not a stemwatch one (tables: "
                         f"{', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); it was left untouched")


def _foreign_tables(path: Path) -> list[str]:
    """The tables of a database no stemwatch migration ever touched (none for a new or a
    stemwatch database)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by name")]
        if "_sqlite_migrations" in tables:
            ours = conn.execute("select 1 from _sqlite_migrations where migration_set = ? limit 1",
                                [MIGRATIONS.name]).fetchone()
            if ours:
                return []
        return tables
    finally:
        conn.close()


class Store:
    """One stemwatch database. Writes are batched: one transaction a batch."""

    def __init__(self, path: str | Path, *, migrate: bool = True):
        self.path = Path(path)
        check_sqlite_file(self.path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open {self.path}: {e}") from e
        if migrate:
            self.migrate()

    # -- schema -----------------------------------------------------------
    def pending_migrations(self) -> list[str]:
        return [m.name for m in MIGRATIONS.pending(self.db)]

    def refuse_newer(self) -> None:
        """StoreError if a newer stemwatch wrote this database (migrations this one lacks)."""
        known = {m.name for m in MIGRATIONS._migrations}
        newer = {m.name for m in MIGRATIONS.applied(self.db)} - known
        if newer:
            raise StoreError(
                f"{self.path} was written by a newer stemwatch (unknown migrations: "
                f"{', '.join(sorted(newer))}); upgrade stemwatch to use it"
            )

    def migrate(self) -> list[str]:
        """Bring the schema up to date; an existing database is copied aside first."""
        self.refuse_newer()
        if not self.pending_migrations():
            return []
        # All pending migrations in one write transaction: all or nothing, and
        # a second process opening the same old database waits, then finds
        # nothing left to do. The copy is taken under the same lock, so it is
        # the database as it was just before the upgrade.
        with write_transaction(self.db):
            pending = self.pending_migrations()
            if pending and (MIGRATIONS.applied(self.db) or self.db.table_names()):
                self.backup(self.path.with_name(self.path.name + f".before-{pending[0]}.bak"))
            MIGRATIONS.apply(self.db)
        return pending

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy made with SQLite's online backup API."""
        dest = Path(dest)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")  # one per process: no two writers
        # from a connection of its own: this one may hold the write lock (migrate)
        source = sqlite3.connect(str(self.path), timeout=30)
        target = sqlite3.connect(str(tmp))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        shutil.move(str(tmp), str(dest))
        return dest

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.db.conn.close()

    # -- crawls and sites ------------------------------------------------
    def start_crawl(self, seeds: list[dict], settings: dict | None = None) -> int:
        with write_transaction(self.db):
            self.upsert_sites(seeds)
            return self.db["crawls"].insert(
                {
                    "started_at": utcnow(), "finished_at": None,
                    "seeds": json.dumps([s["url"] for s in seeds]),
                    "status": "running", "pages": 0, "errors": 0, "claims": 0,
                    "settings": json.dumps(settings or {}, default=str),
                    "stats": None, "detector_version": None,
                }
            ).last_pk

    def record_crawl_settings(self, crawl_id: int, settings: dict):
        """Add the settings the crawler ran with to the crawl's record (what was given stays)."""
        row = self.db.execute("select settings from crawls where id = ?", [crawl_id]).fetchone()
        merged = {**json.loads((row and row[0]) or "{}"), **settings}
        with write_transaction(self.db):
            self.db["crawls"].update(crawl_id, {"settings": json.dumps(merged, default=str)})

    def set_warc_dir(self, crawl_id: int, folder: str | Path):
        """Where the crawl's WARC set is: relative to the database's folder when
        inside it, so the two can be moved together."""
        with write_transaction(self.db):
            self.db["crawls"].update(crawl_id, {"warc_dir": self.stored_path(folder)})

    def stored_path(self, path: str | Path) -> str:
        """A path as the database records it: relative to its folder when inside it."""
        path = Path(path).resolve()
        try:
            path = path.relative_to(self.path.resolve().parent)
        except ValueError:
            pass
        return str(path)

    def warc_dir(self, crawl_id: int) -> Path | None:
        row = self.db.execute("select warc_dir from crawls where id = ?", [crawl_id]).fetchone()
        if not row or not row[0]:
            return None
        folder = Path(row[0])
        return folder if folder.is_absolute() else self.path.resolve().parent / folder

    def upsert_sites(self, seeds: Iterable[dict]):
        from analysis.store.sites import site_key

        now = utcnow()
        for seed in seeds:
            domain = seed.get("site") or site_key(seed["url"])
            known = {k: seed.get(k) for k in ("name", "country", "state", "notes") if seed.get(k)}
            extra = {k: v for k, v in seed.items() if k not in ("url", "site", "name", "country", "state", "notes") and v}
            existing = self.db["sites"].get(domain) if self.db["sites"].count_where("domain = ?", [domain]) else None
            row = {"domain": domain, "url": seed["url"], "last_crawled": now, **known}
            if extra:
                row["extra"] = json.dumps(extra)
            if existing is None:
                row["first_crawled"] = now
            self.db["sites"].upsert(row, pk="domain", alter=True)

    def finish_crawl(self, crawl_id: int, status: str, stats: dict | None = None, detector_version: str = ""):
        counts = self.db.execute(
            "select count(*), sum(error is not null) from pages where crawl_id = ?", [crawl_id]
        ).fetchone()
        claims = self.db.execute("select count(*) from claims where crawl_id = ?", [crawl_id]).fetchone()[0]
        with write_transaction(self.db):
            self.db["crawls"].update(
                crawl_id,
                {
                    "finished_at": utcnow(), "status": status, "pages": counts[0],
                    "errors": counts[1] or 0, "claims": claims,
                    "stats": json.dumps(stats or {}, default=str),
                    "detector_version": detector_version or None,
                },
            )

    # -- pages, links, claims --------------------------------------------
    def add_pages(self, pages: list[dict]) -> list[int]:
        """Insert fetched pages in one transaction; returns their ids.

        A page already stored for the same crawl (a resumed crawl refetching
        it) keeps its row and id: nothing is duplicated.
        """
        ids = []
        with write_transaction(self.db):
            for page in pages:
                links = page.pop("links", None) or []
                body = page.pop("body", None)
                raw = page.pop("raw_body", None)
                if page.get("rendered") is None:
                    page.pop("rendered", None)  # the column's default, 0
                if isinstance(page.get("headers"), dict):
                    page["headers"] = json.dumps(page["headers"])
                if isinstance(page.get("resources"), list):
                    page["resources"] = json.dumps(page["resources"])
                existing = self.db.execute(
                    "select id from pages where crawl_id = ? and url = ?", [page["crawl_id"], page["url"]]
                ).fetchone()
                if existing:
                    ids.append(existing[0])
                    continue
                if body is not None:
                    page["sha256"] = self._add_snapshot(body)
                    page.setdefault("size", len(body))
                if raw is not None:  # a rendered page: what the server sent, beside its DOM
                    page["raw_sha256"] = self._add_snapshot(raw)
                pid = self.db["pages"].insert(page, alter=True).last_pk
                ids.append(pid)
                if links:
                    self._add_links(pid, page, links)
        return ids

    def add_resources(self, rows: list[dict]):
        """Page resources of a crawl; one fetched again on resume keeps its first record."""
        with write_transaction(self.db):
            self.db["page_resources"].insert_all(rows, ignore=True)

    def _add_snapshot(self, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        self.db["snapshots"].insert(
            {"sha256": digest, "size": len(body), "compression": "zlib",
             "body": zlib.compress(body, 6), "first_seen": utcnow()},
            ignore=True,
        )
        return digest

    def snapshot_body(self, digest: str) -> bytes:
        row = self.db["snapshots"].get(digest)
        body = zlib.decompress(row["body"]) if row["compression"] == "zlib" else row["body"]
        if hashlib.sha256(body).hexdigest() != digest:
            raise StoreError(f"snapshot {digest} does not match its hash: the stored copy was altered")
        return body

    def _add_links(self, page_id: int, page: dict, links: list[str]):
        from analysis.store.sites import site_key

        rows = []
        for target in links:
            if not target.startswith(("http://", "https://")):
                continue
            tsite = site_key(target)
            rows.append(
                {"page_id": page_id, "crawl_id": page["crawl_id"], "site": page["site"],
                 "source": page["url"], "target": target, "target_site": tsite,
                 "outbound": int(tsite != page["site"])}
            )
        self.db["links"].insert_all(rows, ignore=True)

    def add_analyses(self, results: Iterable[tuple[int, PageAnalysis]]) -> int:
        """Store the detector's verdict on pages, replacing any earlier one
        for the same page, in one transaction. Returns claims written."""
        rows: list[dict] = []
        with write_transaction(self.db):
            for page_id, analysis in dict(results).items():  # a page listed twice: its last analysis
                page = self.db.execute("select crawl_id, site, url from pages where id = ?", [page_id]).fetchone()
                if page is None:
                    raise StoreError(f"no page with id {page_id} to store an analysis for")
                crawl_id, site, url = page
                # an unchanged claim keeps its row id, so links to it stay valid
                old_ids = {
                    tuple(r[1:]): r[0] for r in self.db.execute(
                        'select id, claim_key, pattern, start, "end" from claims where page_id = ?', [page_id])
                }
                self.db.execute("delete from claims where page_id = ?", [page_id])
                for c in analysis.claims:
                    row = {
                        "page_id": page_id, "crawl_id": crawl_id, "site": site, "url": url,
                        **c.to_dict(), "page_kind": analysis.page_kind, "lang": analysis.lang,
                        "claim_key": claim_key(site, url, c.category, c.sentence),
                        "detector_version": analysis.detector_version,
                    }
                    old = old_ids.pop((row["claim_key"], row["pattern"], row["start"], row["end"]), None)
                    if old is not None:
                        row["id"] = old
                    rows.append(row)
                self.db.execute(
                    "update pages set page_kind = ?, lang = ?, detector_version = ? where id = ?",
                    [None if analysis.error else analysis.page_kind, analysis.lang, analysis.detector_version,
                     page_id])
                if analysis.error or self._records_analysis_errors:
                    self.db.execute("update pages set analysis_error = ? where id = ?",
                                    [analysis.error or None, page_id])
            # one insert for the batch; kept ids first, so a new row (rowid = max + 1) never takes one
            rows.sort(key=lambda row: "id" not in row)
            if rows:
                self.db["claims"].insert_all(rows, alter=True)
        return len(rows)

    @cached_property
    def _records_analysis_errors(self) -> bool:
        """Whether the schema has pages.analysis_error (m007): a Store opened with
        migrate=False on an older schema still writes analyses."""
        return "analysis_error" in self.db["pages"].columns_dict

    def pages_to_analyze(self, crawl_id: int | None = None, version: str | None = None,
                         columns: str = "id, url, title, text, lang") -> list[dict]:
        """Pages with text that no detector (or not this version) has read."""
        where = ["error is null", "text is not null", "text != ''"]
        params: list = []
        if crawl_id is not None:
            where.append("crawl_id = ?")
            params.append(crawl_id)
        if version is None:
            where.append("detector_version is null")
        else:
            where.append("(detector_version is null or detector_version != ?)")
            params.append(version)
        sql = f"select {columns} from pages where " + " and ".join(where) + " order by id"
        return [dict(r) for r in self.db.query(sql, params)]

    # -- reading -----------------------------------------------------------
    def stored_pages(self, ids: list[int]) -> list[tuple[int, StoredPage]]:
        """(page id, StoredPage) for these pages, in id order: the stored text and the
        snapshot's body (None where the snapshot is missing or was altered)."""
        from analysis.store.history import decode_snapshot

        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "select p.id, p.url, p.final_url, p.title, p.text, p.content_type, p.sha256, "
            "s.compression, s.body from pages p left join snapshots s on s.sha256 = p.sha256 "
            f"where p.id in ({marks}) order by p.id", ids).fetchall()
        return [(pid, StoredPage(text=text or "", url=url, title=title or "", content_type=ctype or "",
                                 final_url=final_url or "",
                                 body=decode_snapshot(digest, compression, body) if body is not None else None))
                for pid, url, final_url, title, text, ctype, digest, compression, body in rows]

    def crawl_summary(self, crawl_id: int) -> dict:
        """Counts for the end of a crawl. A statement repeated on many pages of
        a site (a footer, a menu) counts once: `n` is distinct statements
        (site, category, sentence), `rows` the claim rows behind them."""
        crawl = dict(self.db["crawls"].get(crawl_id))
        crawl["not_analysed"] = self.db.execute(
            "select count(*) from pages where crawl_id = ? and analysis_error is not null", [crawl_id]).fetchone()[0]
        crawl["rendered"] = self.db.execute(
            "select count(*) from pages where crawl_id = ? and rendered = 1", [crawl_id]).fetchone()[0]
        statement = "c.site || char(31) || c.category || char(31) || lower(c.sentence)"
        by_cat = list(self.db.query(
            f"select category, stance, count(distinct {statement}) n, count(*) rows from claims c "
            "where crawl_id = ? group by category, stance order by category, stance", [crawl_id]))
        by_site = list(self.db.query(
            "select p.site, coalesce(s.name, p.site) name, count(distinct p.id) pages, "
            "sum(p.error is not null) errors, "
            f"(select count(distinct {statement}) from claims c where c.crawl_id = p.crawl_id "
            " and c.site = p.site and c.stance = 'promoted') promoted "
            "from pages p left join sites s on s.domain = p.site where p.crawl_id = ? "
            "group by p.site order by p.site", [crawl_id]))
        failures: dict[str, list[dict]] = {}
        for r in self.db.query("select site, error, count(*) n from pages where crawl_id = ? and error is not null "
                               "group by site, error order by site, n desc, error", [crawl_id]):
            failures.setdefault(r["site"], []).append({"error": r["error"], "pages": r["n"]})
        for row in by_site:
            row["failures"] = failures.get(row["site"], [])
        return {"crawl": crawl, "claims": by_cat, "sites": by_site}


def open_store(path: str | Path, *, migrate: bool = True, create: bool = False, read_only: bool = False) -> Store:
    """The Store at `path`, for a command. A missing file is an error unless the command
    writes a crawl (`create`); a file that is not a usable database is refused untouched.
    read_only: a command that only reads never upgrades a database; one written by an
    older stemwatch is refused, untouched, with the command that upgrades it."""
    if not create and not Path(path).is_file():
        raise StoreError(f"no database at {path} (a crawl creates one: stemwatch crawl SEED --db {path})")
    if not create and Path(path).stat().st_size == 0:
        raise StoreError(f"{path} is an empty file, not a stemwatch database; it was left untouched "
                         f"(a crawl creates one: stemwatch crawl SEED --db {path})")
    try:
        store = Store(path, migrate=migrate and not read_only)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot use {path}: {e}") from e
    if read_only:
        try:
            store.refuse_newer()
            if store.pending_migrations():
                raise StoreError(f"{path} was written by an older stemwatch; this command only reads, so it "
                                 f"leaves it as it is: upgrade it first with `stemwatch upgrade --db {path}` "
                                 "(the old file is copied aside)")
        except StoreError:
            store.close()
            raise
    return store
