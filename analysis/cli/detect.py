"""Commands that run the detector: scan, eval, reanalyze."""

from __future__ import annotations

import json

import click

from analysis.cli.options import db_option, format_option, format_rows, open_db, workers_option


@click.command()
@click.argument("paths", nargs=-1, required=True)
@format_option()
@workers_option
def scan(paths, fmt, workers):
    """Flag claims in saved pages: .html, .htm, .txt files or folders of them.

    Files with no claims print nothing. A file that cannot be read is named
    on stderr, the others are still scanned, and the exit code is non-zero.

    Example: stemwatch scan page.html
    """
    from analysis.detect.scan import claim_record, format_table, scan_paths

    failed = 0
    whole = []  # json and csv are one document: printed at the end
    for path, analysis, error in scan_paths(paths, workers=workers):
        if error:
            failed += 1
            click.echo(f"error: {path}: {error}", err=True)
            continue
        records = [claim_record(path, analysis, c) for c in analysis.claims]
        if fmt in ("json", "csv"):
            whole.extend(records)
        elif records:
            click.echo(format_rows(records, fmt, format_table))
    if fmt in ("json", "csv") and (whole or fmt == "json"):
        click.echo(format_rows(whole, fmt, format_table))
    if failed:
        raise click.ClickException(f"{failed} path(s) could not be scanned")


@click.command("eval")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("--show-errors", is_flag=True, help="List the passages scored wrong, with the claims made or missed")
@format_option(("table", "json"))
def eval_cmd(corpus, show_errors, fmt):
    """Score the detector on a labelled corpus (JSON lines), next to a keyword baseline.

    Example: stemwatch eval corpus.jsonl --show-errors
    """
    from analysis.detect.detector import get_detector
    from analysis.detect.evaluate import evaluate, format_report

    try:
        report = evaluate(corpus, get_detector())
    except (OSError, ValueError, KeyError) as e:
        raise click.ClickException(f"{corpus}: {e}")
    if fmt == "json":
        click.echo(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    else:
        click.echo(format_report(report, show_errors=show_errors))


@click.command()
@db_option
@click.option("--crawl", "crawl_id", type=int, help="Only the pages of this crawl")
@workers_option
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

    with open_db(db_path) as store:
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
    click.echo(describe(result))


COMMANDS = [scan, eval_cmd, reanalyze]
