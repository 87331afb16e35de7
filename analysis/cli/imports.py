"""Commands that bring in pages captured by others: import (web archives)."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db, workers_option


@click.command("import")
@click.argument("archives", nargs=-1, required=True, type=click.Path(dir_okay=True))
@db_option
@click.option("--detect/--no-detect", default=True, show_default=True,
              help="Detect claims in the imported pages (later: stemwatch reanalyze)")
@workers_option
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="Pages stored per transaction")
def import_command(archives, db_path, detect, workers, batch):
    """Import pages from web archives: WARC, WARC.gz or WACZ files, or folders of them.

    Each HTML, XHTML, plain-text or PDF response becomes a page dated by its
    capture (WARC-Date), with its claims, so `changes` and `claim_status`
    show a site's history across the years the archives cover, in date
    order whatever order they are imported in. Requests, revisits, images,
    redirects and captures already imported are counted and skipped; run it
    again after a crash and it adds only what is missing. A damaged archive
    is reported with the byte where it broke, keeping what came before it.
    The exit code is 1 when a file could not be read at all.

    \b
    Example: stemwatch import archives/2019.warc.gz site.wacz --db data/clinics.db
    """
    from analysis.importer import ArchiveImportError, describe, describe_file, import_archives
    from analysis.store.database import StoreError

    detector = None
    if detect:
        try:
            from analysis.detect.detector import get_detector

            detector = get_detector()
        except ImportError as e:
            raise click.ClickException(f"the claim detector is not available: {e}")

    def progress(file_report):
        click.echo(describe_file(file_report), err=True)

    with open_db(db_path, create=True) as store:
        try:
            report = import_archives(store, archives, detect=detect, detector=detector, workers=workers,
                                     batch=batch, progress=progress)
        except (ArchiveImportError, StoreError) as e:
            raise click.ClickException(str(e))
        except KeyboardInterrupt:
            raise click.ClickException("interrupted: every batch written is kept; run the same command "
                                       "again to import the rest")
    click.echo(describe(report))
    if report.pages:
        click.echo(f"What changed between captures: stemwatch changes --since 0 --db {db_path}")
    if report.unreadable:
        raise click.ClickException("nothing could be read from " + "; ".join(
            str(next(e for e in f.errors if e.stopped)) for f in report.unreadable))


COMMANDS = [import_command]
