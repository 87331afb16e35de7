"""Commands of the history layer: changes, review, reanalyze, backup, verify,
schedule. Registered on the `stemwatch` group by analysis/cli.py.

Every command that takes --db checks the file before anything else: a
missing database is an error (nothing is created), a non-SQLite or damaged
file is refused untouched.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import click

db_option = click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
                         help="The stemwatch SQLite database")


def open_db(db_path: str, *, migrate: bool = True, create: bool = False):
    """The Store behind a command's --db, its errors as ClickException.
    Only the commands that write a crawl may create a new database."""
    from analysis.store.database import Store, StoreError

    if not create and not Path(db_path).is_file():
        raise click.ClickException(f"no database at {db_path} (a crawl creates one: stemwatch crawl SEED --db {db_path})")
    try:
        return Store(db_path, migrate=migrate)
    except StoreError as e:
        raise click.ClickException(str(e))
    except sqlite3.DatabaseError as e:
        raise click.ClickException(f"cannot use {db_path}: {e}")


@click.command()
@click.option("--since", metavar="CRAWL_ID|DATE",
              help="Changes observed after this crawl, or on/after this UTC date "
                   "(default: the latest crawl of each site)")
@click.option("--site", help="Only this site (its domain, as in the sites table)")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def changes(since, site, db_path, fmt):
    """New and removed claims per site, between successive crawls.

    A claim is removed when a later successful fetch of its page no longer
    has it, or the page answers 404/410; failed fetches and pages a crawl
    did not reach change nothing. The same rows are in the `claim_changes`
    view in Datasette.

    \b
    Example: stemwatch changes --since 2026-11-01 --db data/clinics.db
    """
    from analysis.store.history import changes as query, format_changes, parse_since

    try:
        when = parse_since(since)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since")
    store = open_db(db_path)
    try:
        rows = query(store.db, when, site)
    finally:
        store.close()
    click.echo(json.dumps(rows, indent=1) if fmt == "json" else format_changes(rows))


@click.command()
@click.argument("claim_ref", metavar="CLAIM_ID")
@click.option("--verdict", required=True, type=click.Choice(["confirmed", "false-alarm", "unsure"]))
@click.option("--note", help="Why: the evidence, a source, a link")
@click.option("--by", "reviewer", help="Who reviewed it (default: $STEMWATCH_REVIEWER or your user name)")
@db_option
def review(claim_ref, verdict, note, reviewer, db_path):
    """Record a reviewer's verdict on a claim (a claim row id or claim key).

    Verdicts attach to the claim's identity, so they survive re-crawls,
    re-analysis and upgrades; earlier verdicts stay in the history and the
    latest is the current one (view `claim_verdicts`).

    \b
    Example: stemwatch review 42 --verdict confirmed --by ana --db data/clinics.db
    """
    from analysis.store.reviews import add_review, review_history
    from analysis.store.database import StoreError

    store = open_db(db_path)
    try:
        row = add_review(store.db, claim_ref, verdict, note, reviewer)
        n = len(review_history(store.db, row["claim_key"]))
        claim = store.db.execute("select category, stance, sentence, url from claims where id = ?",
                                 [row["claim_id"]]).fetchone()
    except StoreError as e:
        raise click.ClickException(str(e))
    finally:
        store.close()
    click.echo(f"{claim[0]}/{claim[1]} on {claim[3]}: \"{claim[2]}\"")
    click.echo(f"claim {row['claim_key']} (row {row['claim_id']}): {verdict} by {row['reviewer']} "
               f"at {row['reviewed_at']} ({n} review{'s' if n > 1 else ''} in its history)")


@click.command()
@db_option
@click.option("--crawl", "crawl_id", type=int, help="Only the pages of this crawl")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Detector processes (spaCy n_process)")
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="Pages stored per transaction")
def reanalyze(db_path, crawl_id, workers, batch):
    """Detect claims again in stored pages with the current patterns.

    Only pages a different detector version read are redone (an interrupted
    run resumes); each claim records the detector version that found it.
    Reviewers' verdicts are kept: they belong to the claim's identity.

    \b
    Example: stemwatch reanalyze --db data/clinics.db --workers 2
    """
    from analysis.reanalyze import ReanalysisError, describe, reanalyze as run

    store = open_db(db_path)
    try:
        try:
            from analysis.detect.detector import get_detector

            detector = get_detector()
        except ImportError as e:
            raise click.ClickException(f"the claim detector is not available: {e}")

        def progress(done, total):
            click.echo(f"  {done}/{total} pages", err=True)

        try:
            result = run(store, detector, crawl_id=crawl_id, workers=workers, batch=batch, progress=progress)
        except ReanalysisError as e:
            raise click.ClickException(str(e))
    finally:
        store.close()
    click.echo(describe(result))


@click.command()
@db_option
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace OUT if it exists")
def backup(db_path, out, force):
    """Copy the database to OUT with SQLite's online backup.

    Safe while a crawl is writing or Datasette is reading: the copy is one
    consistent state. The database is not upgraded first.

    \b
    Example: stemwatch backup --db data/clinics.db backups/clinics.db
    """
    if Path(out).exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to replace it")
    if Path(out).resolve() == Path(db_path).resolve():
        raise click.ClickException("OUT must not be the database itself")
    store = open_db(db_path, migrate=False)
    try:
        dest = store.backup(out)
    finally:
        store.close()
    click.echo(f"backed up {db_path} to {dest} ({dest.stat().st_size} bytes)")


@click.command()
@db_option
def verify(db_path):
    """Check the database's integrity and every snapshot against its SHA-256.

    Exit code 1 if anything is wrong.

    \b
    Example: stemwatch verify --db data/clinics.db
    """
    from analysis.store.history import verify_snapshots

    store = open_db(db_path, migrate=False)
    try:
        integrity = [r[0] for r in store.db.execute("PRAGMA integrity_check")]
        report = verify_snapshots(store.db)
    finally:
        store.close()
    click.echo(f"integrity_check: {'; '.join(integrity)}")
    click.echo(f"snapshots checked: {report['checked']}")
    for bad in report["bad"]:
        click.echo(f"  snapshot {bad['sha256']}: {bad['problem']}")
    for m in report["missing"]:
        click.echo(f"  page {m['page_id']} ({m['url']}): snapshot {m['sha256']} missing")
    if integrity != ["ok"] or report["bad"] or report["missing"]:
        sys.exit(1)


@click.command()
@click.argument("seeds", nargs=-1, required=True)
@db_option
@click.option("--every", help="Keep running: crawl now, then every INTERVAL (30m, 12h, 7d, 2w)")
@click.option("--max-runs", type=click.IntRange(1), help="With --every: stop after this many runs")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False),
              help="Lock file that prevents overlapping runs (default: DB.schedule.lock)")
@click.option("--max-pages-per-site", type=int, help="Passed to stemwatch crawl")
@click.option("--allow-host", "allow_hosts", multiple=True, help="Passed to stemwatch crawl")
@click.option("--crawl-arg", "crawl_args", multiple=True, metavar="ARG",
              help="Any other argument for stemwatch crawl, e.g. --crawl-arg=--contact=you@example.org")
@click.pass_context
def schedule(ctx, seeds, db_path, every, max_runs, lock_path, max_pages_per_site, allow_hosts, crawl_args):
    """Run scheduled crawls: once (for cron or a systemd timer), or --every INTERVAL.

    Each run is `stemwatch crawl SEEDS --db DB` in a fresh process. If the
    previous run still holds the lock, this one is skipped (exit code 75).
    After each run, `stemwatch changes --db DB` shows what changed.

    \b
    Example: stemwatch schedule seeds.csv --db data/clinics.db --every 7d
    """
    from crawler.schedule import crawl_argv, default_lock_path, parse_interval, run_every, run_once

    interval = None
    if every:
        try:
            interval = parse_interval(every)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--every")
    if Path(db_path).exists():
        open_db(db_path).close()  # refuse a damaged or newer database before crawling
    argv = crawl_argv(list(seeds), db_path, max_pages_per_site=max_pages_per_site, allow_hosts=allow_hosts,
                      extra=crawl_args)
    lock = lock_path or default_lock_path(db_path)

    def log(msg):
        from analysis.store.database import utcnow

        click.echo(f"{utcnow()} {msg}", err=True)

    if interval is None:
        ctx.exit(run_once(argv, lock, log))
    codes = run_every(argv, lock, interval, max_runs=max_runs, log=log)
    ctx.exit(0 if all(c == 0 for c in codes) else 1)


COMMANDS = [changes, review, reanalyze, backup, verify, schedule]
