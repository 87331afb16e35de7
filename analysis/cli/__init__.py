"""The `stemwatch` command line: a thin click layer over the library.

Each command parses options, calls one library function and turns the
library's errors into click.ClickException.
"""

from __future__ import annotations

from pathlib import Path

import click

from analysis import __version__
from analysis.cli.history import open_db


@click.group()
@click.version_option(__version__, prog_name="stemwatch")
def cli():
    """Monitor misleading stem-cell marketing.

    Crawl clinic sites, flag the claims consumer warnings single out, store
    them in SQLite and browse them in Datasette.

    Example: stemwatch demo
    """


def _print_summary(summary: dict):
    crawl = summary["crawl"]
    click.echo(
        f"Crawl {crawl['id']} {crawl['status']}: {crawl['pages']} pages fetched, "
        f"{crawl['errors']} failed, {crawl['claims']} claims"
    )
    if summary["claims"]:
        click.echo("Claims by category and stance: distinct statements per site, then claim rows")
        for row in summary["claims"]:
            click.echo(f"  {row['category']:<34} {row['stance']:<11} {row['n']:>5} {row['rows']:>6}")
    if summary["sites"]:
        click.echo("Sites:")
        for row in summary["sites"]:
            click.echo(
                f"  {row['name']:<40} {row['pages']:>4} pages {row['errors'] or 0:>3} failed "
                f"{row['promoted']:>4} promoted claims"
            )


@cli.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="SQLite database")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on")
def serve(db_path, host, port):
    """Browse a stemwatch database in Datasette.

    Claims are faceted by category, stance and site, with the matched words
    highlighted in their sentence.

    Example: stemwatch serve --db data/clinics.db --port 8001
    """
    from analysis.web.serve import serve as run_serve

    open_db(db_path).close()  # refuses a missing, damaged or newer database; upgrades an older one
    click.echo(f"Serving {db_path} at http://{host}:{port}/ (Ctrl-C to stop)")
    run_serve(db_path, host=host, port=port)


@cli.command()
@click.option("--db", "db_path", default="data/demo.db", show_default=True, type=click.Path(dir_okay=False),
              help="Where to store the demo crawl")
@click.option("--serve/--no-serve", "do_serve", default=True, help="Serve Datasette after the crawl")
@click.option("--port", default=8001, show_default=True, type=int, help="Datasette port")
@click.option("--sites-port", default=8101, show_default=True, type=int,
              help="First port of the demo sites (0: any free ports)")
def demo(db_path, do_serve, port, sites_port):
    """Crawl the bundled demo sites on 127.0.0.1, detect claims, then browse them.

    Starts the demo clinic, news and regulator sites on loopback, runs the
    real crawler against them, prints a summary and serves Datasette.

    Example: stemwatch demo --db data/demo.db
    """
    from analysis.demo import start_demo_sites
    from analysis.web.serve import serve as run_serve

    open_db(db_path, create=True).close()
    try:
        sites = start_demo_sites(base_port=sites_port)
    except OSError:
        sites = start_demo_sites(base_port=0)  # the usual ports are taken
    click.echo("Demo sites:")
    for site in sites.sites:
        click.echo(f"  {site.url:<28} {site.name}")
    summary = _run_crawl(sites.seeds(), db_path, allow_hosts=("127.0.0.1",), max_pages_per_site=200,
                         settings={"LOG_LEVEL": "WARNING"})
    _print_summary(summary)
    if do_serve:
        click.echo(f"Browse the claims: http://127.0.0.1:{port}/{Path(db_path).stem}/claims (Ctrl-C to stop)")
        run_serve(db_path, port=port)
    sites.stop()


@cli.command()
@click.argument("seeds", nargs=-1)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="SQLite database to write")
@click.option("--max-pages-per-site", type=click.IntRange(min=1), default=None,
              help="Pages fetched per site  [default: 200]")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="HOST",
              help="Host that may be an internal address (e.g. 127.0.0.1 for local test sites); repeatable")
@click.option("--contact", default=None, metavar="EMAIL_OR_URL",
              help="How a site owner reaches you; sent in the User-Agent")
@click.option("--resume", is_flag=True,
              help="Continue the unfinished crawl recorded next to --db (after Ctrl-C or a crash)")
@click.option("--set", "-s", "scrapy_settings", multiple=True, metavar="NAME=VALUE",
              help="Override a Scrapy or STEMWATCH_* setting (see crawler/settings.py); repeatable")
@click.option("--verbose", "-v", is_flag=True, help="Show Scrapy's log")
def crawl(seeds, db_path, max_pages_per_site, allow_hosts, contact, resume, scrapy_settings, verbose):
    """Crawl clinic sites politely and flag their claims.

    SEED is a URL or a CSV file with a `url` column (optional name, country,
    state, notes, ...). Each seed's site (its registrable domain) is crawled
    up to the page cap; robots.txt is obeyed; internal addresses are refused
    unless allowed with --allow-host. Failed pages are recorded with their
    error and do not stop the crawl. Progress goes to stderr.

    Example: stemwatch crawl seeds.csv --db clinics.db --contact you@lab.org
    """
    from crawler.seeds import SeedError, load_seeds

    if resume and seeds:
        raise click.UsageError("--resume continues the recorded crawl: give no seeds with it")
    overrides = {}
    for item in scrapy_settings:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value
    overrides.setdefault("LOG_LEVEL", "INFO" if verbose else "WARNING")
    seed_list = None
    if not resume:
        try:
            seed_list, problems = load_seeds(list(seeds))
        except SeedError as e:
            raise click.ClickException(str(e))
        for problem in problems:
            click.echo(f"warning: {problem}", err=True)
        click.echo(f"Crawling {len(seed_list)} site(s) into {db_path}", err=True)
    summary = _run_crawl(
        seed_list, db_path, max_pages_per_site=max_pages_per_site, allow_hosts=allow_hosts,
        contact=contact, settings=overrides, resume=resume,
    )
    _print_summary(summary)
    if summary["crawl"]["status"] != "finished":
        click.echo(f"The crawl was interrupted; continue it with: stemwatch crawl --resume --db {db_path}")


def _run_crawl(seeds, db_path, **options) -> dict:
    """Run one crawl in this process and return its summary."""
    from crawler.run import CrawlError, run_crawl
    from crawler.seeds import SeedError
    from analysis.store.database import StoreError

    try:
        crawl_id = run_crawl(seeds, db_path, **options)
    except (CrawlError, SeedError, StoreError) as e:
        raise click.ClickException(str(e))
    store = open_db(db_path)
    try:
        return store.crawl_summary(crawl_id)
    finally:
        store.close()


@cli.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, exists=True), help="SQLite database")
@click.option("--site", help="Only this site (its domain, or its name from the seed list)")
@click.option("--claim", "claim_ids", type=int, multiple=True, metavar="ID", help="Only these claim ids (repeatable)")
@click.option("--category", help="Only this category id")
@click.option("--stance", default="promoted", show_default=True, help="Only claims with this stance ('' for all)")
@click.option("--crawl", "crawl_id", type=int, help="Claims of this crawl (default: each site's latest)")
def export(out_dir, db_path, site, claim_ids, category, stance, crawl_id):
    """Export an evidence bundle for a complaint to a regulator.

    Writes the archived pages (WARC, rebuilt from the exact bytes fetched),
    the claims as CSV and JSONL with quote, URL and capture time, a readable
    report.html, and SHA256SUMS so anyone can check nothing was altered.

    Example: stemwatch export complaint/ --db data/clinics.db --site example-clinic.com
    """
    from analysis.evidence.export import export_evidence
    from analysis.store.database import StoreError

    store = open_db(db_path)
    try:
        result = export_evidence(store, out_dir, site=site, claim_ids=claim_ids, category=category,
                                 stance=stance or None, crawl_id=crawl_id)
    except StoreError as e:
        raise click.ClickException(str(e))
    finally:
        store.close()
    click.echo(f"Exported {result['claims']} claims from {result['pages']} archived pages to {result['dir']}")
    click.echo("Check the files with: sha256sum -c SHA256SUMS (inside that folder)")


from analysis.cli.history import COMMANDS as _HISTORY_COMMANDS  # noqa: E402  changes, review, reanalyze, backup, verify, schedule

for _command in _HISTORY_COMMANDS:
    cli.add_command(_command)




@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True,
              help="table: one line per claim; jsonl: one JSON object per claim")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Detector processes (use 2 on a 2-core machine for large folders)")
def scan(paths, fmt, workers):
    """Flag claims in saved pages: .html, .htm, .txt files or folders of them.

    Files with no claims print nothing. A file that cannot be read is named
    on stderr, the others are still scanned, and the exit code is non-zero.

    Example: stemwatch scan page.html
    """
    import json

    from analysis.detect.scan import claim_record, format_table, scan_paths

    failed = 0
    for path, analysis, error in scan_paths(paths, workers=workers):
        if error:
            failed += 1
            click.echo(f"error: {path}: {error}", err=True)
            continue
        records = [claim_record(path, analysis, c) for c in analysis.claims]
        if records:
            click.echo("\n".join(json.dumps(r, ensure_ascii=False) for r in records)
                       if fmt == "jsonl" else format_table(records))
    if failed:
        raise click.ClickException(f"{failed} path(s) could not be scanned")


@cli.command("eval")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("--show-errors", is_flag=True, help="List the passages scored wrong, with the claims made or missed")
def eval_cmd(corpus, show_errors):
    """Score the detector on a labelled corpus (JSON lines), next to a keyword baseline.

    Example: stemwatch eval corpus.jsonl --show-errors
    """
    from analysis.detect.detector import get_detector
    from analysis.detect.evaluate import evaluate, format_report

    try:
        report = evaluate(corpus, get_detector())
    except (OSError, ValueError, KeyError) as e:
        raise click.ClickException(f"{corpus}: {e}")
    click.echo(format_report(report, show_errors=show_errors))

