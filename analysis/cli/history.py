"""Commands over a database's history: changes, review, backup, verify."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, format_option, format_rows, open_db
from analysis.display import visible
import sys
from pathlib import Path


@click.command()
@click.option("--since", metavar="CRAWL_ID|DATE",
              help="Changes observed after this crawl, or on/after this UTC date "
                   "(default: the latest crawl of each site)")
@click.option("--site", help="Only this site: its name, its domain, or a URL on it")
@db_option
@format_option()
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
    from analysis.store.database import StoreError
    from analysis.store.queries import resolve_site

    with open_db(db_path, read_only=True) as store:
        try:
            site = resolve_site(store, site) if site else None
        except StoreError as e:
            raise click.ClickException(str(e))
        rows = query(store.db, when, site)
    click.echo(format_rows(rows, fmt, format_changes))


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
    from analysis.store.queries import claim_summary
    from analysis.store.reviews import add_review, review_history
    from analysis.store.database import StoreError

    with open_db(db_path) as store:
        try:
            row = add_review(store.db, claim_ref, verdict, note, reviewer)
            n = len(review_history(store.db, row["claim_key"]))
            claim = claim_summary(store, row["claim_id"])
        except StoreError as e:
            raise click.ClickException(str(e))
    click.echo(visible(f"{claim['category']}/{claim['stance']} on {claim['url']}: \"{claim['sentence']}\""))
    click.echo(visible(f"claim {row['claim_key']} (row {row['claim_id']}): {verdict} by {row['reviewer']} ") +
               f"at {row['reviewed_at']} ({n} review{'s' if n > 1 else ''} in its history)")


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
    if not Path(out).parent.is_dir():
        raise click.ClickException(f"no folder {Path(out).parent} to write {Path(out).name} into "
                                   f"(create it first: mkdir -p {Path(out).parent})")
    with open_db(db_path, migrate=False) as store:
        dest = store.backup(out)
    click.echo(f"backed up {db_path} to {dest} ({dest.stat().st_size} bytes)")


@click.command()
@click.argument("bundle", required=False, type=click.Path(dir_okay=False))
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="The stemwatch SQLite database to check")
@click.option("--signer", metavar="FINGERPRINT|FILE",
              help="Fail a bundle not signed by this key (a fingerprint, or a file of trusted keys)")
@click.option("--tsa-cert", type=click.File("rb"), help="The timestamp authority's certificate, to check its signature")
def verify(bundle, db_path, signer, tsa_cert):
    """Check an evidence bundle, or a database and its captures.

    A bundle: the signature and its signer, the timestamp, every file's
    SHA-256, the WACZ, and that each quote is in its captured page.
    A database: SQLite's integrity, every snapshot against its SHA-256,
    and every page against its WARC capture. Exit code 1 if anything is wrong.

    \b
    Example: stemwatch verify novacell.zip --signer ed25519:3f5a...
    Example: stemwatch verify --db data/clinics.db
    """
    if bool(bundle) == bool(db_path):
        raise click.UsageError("give a BUNDLE.zip or --db DB")
    if bundle:
        _verify_bundle(bundle, signer, tsa_cert.read() if tsa_cert else None)
        return
    from analysis.evidence.warc import verify_captures
    from analysis.store.history import verify_snapshots
    from analysis.store.queries import integrity_check

    with open_db(db_path, migrate=False) as store:
        integrity = integrity_check(store)
        report = verify_snapshots(store.db)
        captures = verify_captures(store)
    click.echo(f"integrity_check: {'; '.join(integrity)}")
    click.echo(f"snapshots checked: {report['checked']}")
    for bad in report["bad"]:
        click.echo(f"  snapshot {bad['sha256']}: {bad['problem']}")
    for m in report["missing"]:
        click.echo(f"  page {m['page_id']} ({m['url']}): snapshot {m['sha256']} missing")
    click.echo(f"pages checked against their WARC capture: {captures['checked']}"
               + (f" ({captures['uncaptured']} from crawls without capture)" if captures["uncaptured"] else ""))
    for p in captures["problems"]:
        click.echo(f"  page {p['page_id']} ({p['url']}): {p['problem']}")
    if integrity != ["ok"] or report["bad"] or report["missing"] or captures["problems"]:
        sys.exit(1)


def _verify_bundle(path, signer, tsa_certificate):
    from analysis.evidence.signing import SigningError, load_trusted
    from analysis.evidence.verify import verify_bundle

    try:
        trusted = load_trusted(signer) if signer else None
    except SigningError as e:
        raise click.ClickException(str(e))
    if not Path(path).is_file():
        raise click.ClickException(f"no bundle at {path}")
    report = verify_bundle(path, trusted=trusted, tsa_certificate=tsa_certificate)
    click.echo(f"signed by: {report.signer or 'nobody (unsigned)'}")
    if report.timestamp:
        click.echo(f"timestamped: {report.timestamp}")
    click.echo(f"files checked: {report.files_checked}; quotes checked against their captured pages: "
               f"{report.quotes_checked}")
    for name, problem in report.failures:
        click.echo(f"  FAILED {name}: {problem}")
    if not report.ok:
        sys.exit(1)
    click.echo("ok")


@click.command()
@db_option
def upgrade(db_path):
    """Bring a database written by an older stemwatch up to this version's schema.

    The old file is copied aside first (PATH.before-MIGRATION.bak); every row is
    kept. Commands that only read (changes, export) never upgrade on their own.

    \b
    Example: stemwatch upgrade --db data/clinics.db
    """
    from analysis.store.database import StoreError

    with open_db(db_path, migrate=False) as store:
        try:
            applied = store.migrate()
        except StoreError as e:
            raise click.ClickException(str(e))
    if not applied:
        click.echo(f"{db_path} is up to date; nothing to do.")
    else:
        click.echo(f"upgraded {db_path}: {', '.join(applied)}; the old file is {db_path}.before-{applied[0]}.bak")


COMMANDS = [changes, review, backup, verify, upgrade]
