"""Commands that fetch: crawl, demo, schedule."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db
from pathlib import Path


def _print_summary(summary: dict):
    crawl = summary["crawl"]
    failed = crawl["errors"] or 0
    click.echo(
        f"Crawl {crawl['id']} {crawl['status']}: {crawl['pages'] - failed} pages fetched, "
        f"{failed} failed, {crawl['claims']} claims"
    )
    if crawl.get("rendered"):
        click.echo(f"{crawl['rendered']} page(s) rendered in Chromium (pages.rendered = 1; what the server sent "
                   "is pages.raw_sha256)")
    if crawl.get("not_analysed"):
        click.echo(f"{crawl['not_analysed']} page(s) could not be analysed: their reason is in "
                   "pages.analysis_error; the other pages keep their claims")
    if summary["claims"]:
        click.echo("Claims by category and stance: distinct statements per site, then claim rows")
        for row in summary["claims"]:
            click.echo(f"  {row['category']:<34} {row['stance']:<11} {row['n']:>5} {row['rows']:>6}")
    if summary["sites"]:
        click.echo("Sites:")
        # one column for every name, however long (up to a point: a terminal is ~100 wide)
        width = min(60, max((len(site_label(r["name"], r["site"])) for r in summary["sites"]), default=0))
        for row in summary["sites"]:
            errors = row["errors"] or 0
            click.echo(
                f"  {site_label(row['name'], row['site']):<{width}} {row['pages'] - errors:>4} fetched {errors:>3} failed "
                f"{row['promoted']:>4} promoted claims"
            )
            for why in failure_lines(row.get("failures", ())):
                click.echo(f"      {why}")


def site_label(name: str | None, site: str) -> str:
    """A site as the summary names it: the seed list's name with the site's key beside
    it, the key that `changes` prints and `changes --site` takes."""
    return f"{name} ({site})" if name and name != site else site


def failure_lines(failures, shown: int = 3) -> list[str]:
    """What a site's failures were, most frequent first, with the flag that allows a
    blocked private or loopback address."""
    lines = [f"{f['pages']} × {f['error']}" for f in failures[:shown]]
    rest = sum(f["pages"] for f in failures[shown:])
    if rest:
        lines.append(f"{rest} × other errors (see the pages table)")
    blocked = sorted({f["error"].split()[1] for f in failures if f["error"].startswith("blocked: ")
                      and len(f["error"].split()) > 1})
    if blocked:
        lines.append("private and loopback addresses are not crawled unless allowed: "
                     + " ".join(f"--allow-host {host}" for host in blocked))
    return lines


@click.command()
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
                         settings={"LOG_LEVEL": "WARNING", "STEMWATCH_PAGE_RESOURCES": True})
    _print_summary(summary)
    if do_serve:
        click.echo(f"Browse the claims: http://127.0.0.1:{port}/{Path(db_path).stem}/claims (Ctrl-C to stop)")
        run_serve(db_path, port=port)
    sites.stop()


@click.command()
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
@click.option("--page-resources", is_flag=True,
              help="Also capture each page's own stylesheets and images, so evidence replays as seen")
@click.option("--render", "render", type=click.Choice(["off", "auto", "js"]), default=None,
              help="Render pages in headless Chromium: js every page, auto (the default) the pages that "
                   "hold almost no text but run scripts and the seeds whose render column says js, off none")
@click.option("--redis", "redis_url", metavar="URL",
              help="Crawl with worker processes sharing one frontier in this Redis server "
                   "(redis://HOST:PORT/DB); this process stores what they fetch")
@click.option("--workers", type=click.IntRange(0, 256), default=None,
              help="With --redis: worker processes started on this machine (0: only those started "
                   "elsewhere with stemwatch worker)  [default: 2]")
@click.option("--verbose", "-v", is_flag=True, help="Show Scrapy's log")
def crawl(seeds, db_path, max_pages_per_site, allow_hosts, contact, resume, scrapy_settings, page_resources,
          render, redis_url, workers, verbose):
    """Crawl clinic sites politely and flag their claims.

    SEED is a URL or a CSV file with a `url` column (optional name, country,
    state, notes, render, ...). Each seed's site (its registrable domain) is crawled
    up to the page cap; robots.txt is obeyed; internal addresses are refused
    unless allowed with --allow-host. Failed pages are recorded with their
    error and do not stop the crawl. Progress goes to stderr.

    With --redis, --workers processes (here, and any started elsewhere with
    `stemwatch worker`) crawl together, each site's politeness and page cap
    holding for all of them at once, and this process alone writes the
    database.

    Example: stemwatch crawl seeds.csv --db clinics.db --contact you@lab.org
    """
    from crawler.seeds import SeedError, load_seeds

    if resume and seeds:
        raise click.UsageError("--resume continues the recorded crawl: give no seeds with it")
    if workers is not None and not redis_url and not resume:
        raise click.UsageError("--workers needs --redis: worker processes share their frontier in Redis")
    overrides = parse_settings(scrapy_settings)
    overrides.setdefault("LOG_LEVEL", "INFO" if verbose else "WARNING")
    if page_resources:
        overrides["STEMWATCH_PAGE_RESOURCES"] = True
    if render:
        overrides["STEMWATCH_RENDER"] = render
    seed_list = None
    if not resume:
        try:
            seed_list, problems = load_seeds(list(seeds))
        except SeedError as e:
            raise click.ClickException(str(e))
        for problem in problems:
            click.echo(f"warning: {problem}", err=True)
        click.echo(f"Crawling {len(seed_list)} site(s) into {db_path}", err=True)
    distributed = {"redis": redis_url, "workers": workers, "verbose": verbose} if redis_url or resume else {}
    summary = _run_crawl(
        seed_list, db_path, max_pages_per_site=max_pages_per_site, allow_hosts=allow_hosts,
        contact=contact, settings=overrides, resume=resume, **distributed,
    )
    _print_summary(summary)
    if summary["crawl"]["status"] != "finished":
        click.echo(f"The crawl was interrupted; continue it with: stemwatch crawl --resume --db {db_path}")


def parse_settings(items) -> dict:
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value
    return overrides


@click.command()
@click.option("--redis", "redis_url", required=True, metavar="URL", help="The crawl's Redis server")
@click.option("--crawl", "key", required=True, metavar="KEY",
              help="The crawl's key, as `stemwatch crawl --redis` prints it (e.g. 12-9f2c4e1a)")
@click.option("--warc-dir", type=click.Path(file_okay=False), default=None,
              help="Where this worker writes its WARC files (default: the crawl's, next to its database)")
@click.option("--set", "-s", "scrapy_settings", multiple=True, metavar="NAME=VALUE",
              help="A setting of this worker only, e.g. CONCURRENT_REQUESTS; repeatable")
@click.option("--parent", type=int, default=None, hidden=True)
@click.option("--verbose", "-v", is_flag=True, help="Show Scrapy's log")
def worker(redis_url, key, warc_dir, scrapy_settings, parent, verbose):
    """Fetch pages for a distributed crawl, on this machine or any other.

    Takes requests from the crawl's shared frontier in Redis, fetches them
    with the crawl's own settings (robots.txt, the private-address guard,
    each site's delay and concurrency, counted for every worker together)
    and pushes what it fetched to Redis for the crawl's writer. Its WARC
    files go to --warc-dir, named after the worker so that every worker's
    files fit in the crawl's one folder. Killed, it loses nothing: its
    unfinished requests go back to the frontier. It stops when the crawl is
    done.

    Example: stemwatch worker --redis redis://crawl-db:6379/0 --crawl 12-9f2c4e1a
    """
    from crawler.run import CrawlError
    from crawler.distributed.run import run_worker

    overrides = parse_settings(scrapy_settings)
    if verbose:
        overrides["LOG_LEVEL"] = "INFO"
    try:
        run_worker(redis_url, key, warc_dir=warc_dir, parent=parent, settings=overrides)
    except CrawlError as e:
        raise click.ClickException(str(e))


def _run_crawl(seeds, db_path, **options) -> dict:
    """Run one crawl in this process and return its summary."""
    from crawler.run import CrawlError, run_crawl
    from crawler.seeds import SeedError
    from analysis.store.database import StoreError

    try:
        crawl_id = run_crawl(seeds, db_path, **options)
    except (CrawlError, SeedError, StoreError) as e:
        raise click.ClickException(str(e))
    with open_db(db_path) as store:
        return store.crawl_summary(crawl_id)


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


COMMANDS = [demo, crawl, worker, schedule]
