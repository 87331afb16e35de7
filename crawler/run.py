"""Run a crawl in this process: seeds in, a crawl record in SQLite out.

A Twisted reactor cannot be restarted, so one process runs one crawl
(tests start crawls as subprocesses). The crawl's job directory sits next
to the database (``crawl.db`` -> ``crawl.db.jobs/``): ``current.json``
names the crawl and its seeds, ``crawl-<id>/`` is Scrapy's JOBDIR (its
request queue on disk). The database is the crawl's memory: a resumed crawl
(after Ctrl-C or even SIGKILL) continues the same crawl_id, skips every page
already stored and rebuilds its queue from the links those pages hold.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from crawler.seeds import SeedError
from crawler.capture import crawl_warc_dir
from analysis.store.database import Store, StoreError
from analysis.store.queries import crawl_status, set_crawl_status

logger = logging.getLogger(__name__)


def _one_line(record: logging.LogRecord) -> bool:
    """A logging filter: the record's message without its traceback."""
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True


def quiet_logs(crawl_settings) -> None:
    """Below INFO, what the crawl record says anyway is not logged again."""
    if logging.getLevelName(crawl_settings.get("LOG_LEVEL", "DEBUG")) >= logging.WARNING:
        # every failed page is recorded with its reason and summed up per site at the end;
        # the retry middleware's "Gave up retrying" lines would say it again, a line a request
        logging.getLogger("scrapy.downloadermiddlewares.retry").setLevel(logging.CRITICAL)
        # a site whose robots.txt cannot be fetched (its name does not resolve): one line, no
        # traceback (-v shows it)
        logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(_one_line)


class CrawlError(Exception):
    """A crawl that cannot start, said in words a user can act on."""


def jobs_dir(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".jobs")


def warc_base(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".warc")


def write_job(db_path: str | Path, job: dict) -> None:
    """current.json: the crawl a resume continues, written whole or not at all."""
    jobs = jobs_dir(db_path)
    jobs.mkdir(parents=True, exist_ok=True)
    tmp = jobs / "current.json.part"
    tmp.write_text(json.dumps(job, indent=1, default=str))
    tmp.replace(jobs / "current.json")


def project_settings(overrides: dict | None = None):
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    if overrides:
        settings.setdict(overrides, priority="cmdline")
    return settings


def _abandon_unfinished(store: Store, db_path: Path) -> None:
    """A new crawl replaces the resume record: the crawl it pointed at can no
    longer be resumed, so it is marked abandoned rather than left 'running'.
    Its pages and claims stay."""
    current = jobs_dir(db_path) / "current.json"
    if not current.exists():
        return
    try:
        old = json.loads(current.read_text())["crawl_id"]
    except (ValueError, KeyError):
        return
    if crawl_status(store, old) not in (None, "finished", "abandoned"):
        set_crawl_status(store, old, "abandoned")
        logger.warning("crawl %s was unfinished; it is marked abandoned (its pages are kept)", old)


def _resumable(store: Store, db_path: Path) -> dict:
    current = jobs_dir(db_path) / "current.json"
    if not current.exists():
        raise CrawlError(f"nothing to resume: no unfinished crawl recorded next to {db_path}")
    job = json.loads(current.read_text())
    status = crawl_status(store, job["crawl_id"])
    if status is None:
        raise CrawlError(f"nothing to resume: crawl {job['crawl_id']} is not in {db_path}")
    if status == "finished":
        raise CrawlError(f"nothing to resume: crawl {job['crawl_id']} in {db_path} has finished")
    return job


def run_crawl(
    seeds: list[dict] | None,
    db_path: str | Path,
    *,
    max_pages_per_site: int | None = None,
    allow_hosts=(),
    contact: str | None = None,
    jobdir: str | Path | None = None,
    settings: dict | None = None,
    resume: bool = False,
    redis: str | None = None,
    workers: int | None = None,
    verbose: bool = False,
) -> int:
    """Crawl `seeds` (from analysis.seeds.load_seeds) into `db_path`; returns
    the crawl id. With resume=True, continue the unfinished crawl recorded
    next to the database (seeds may then be None). With `redis` (a Redis URL),
    `workers` processes crawl together and this process stores what they fetch
    (crawler.distributed); without it nothing of Redis is imported."""
    db_path = Path(db_path)
    try:
        store = Store(db_path)
    except StoreError as e:
        raise CrawlError(str(e)) from e
    overrides = dict(settings or {})
    try:
        if resume:
            job = _resumable(store, db_path)
            crawl_id = job["crawl_id"]
            seeds = job["seeds"]
            overrides = {**job.get("settings", {}), **overrides}
        else:
            if not seeds:
                raise SeedError("no seeds to crawl")
            if max_pages_per_site is not None:
                overrides["STEMWATCH_MAX_PAGES_PER_SITE"] = int(max_pages_per_site)
            if allow_hosts:
                overrides["STEMWATCH_ALLOW_HOSTS"] = list(allow_hosts)
            if contact:
                overrides["STEMWATCH_CONTACT"] = contact
            record = {k: v for k, v in overrides.items()}
            _abandon_unfinished(store, db_path)
            crawl_id = store.start_crawl(seeds, record)
            if project_settings(overrides).getbool("STEMWATCH_WARC"):
                overrides.setdefault("STEMWATCH_WARC_DIR", str(warc_base(db_path)))
                store.set_warc_dir(crawl_id, crawl_warc_dir(overrides["STEMWATCH_WARC_DIR"], crawl_id))
            job = {"crawl_id": crawl_id, "seeds": seeds, "settings": overrides}
            write_job(db_path, job)
    finally:
        store.close()
    if redis is None and resume:
        redis = (job.get("redis") or {}).get("url")  # a distributed crawl resumes as one
    if redis is not None:
        from crawler.distributed.run import run_distributed

        if workers is None:
            workers = (job.get("redis") or {}).get("workers", 2)
        return run_distributed(db_path, job, overrides, url=redis, workers=workers, resume=resume,
                               verbose=verbose)[0]
    job_path = Path(jobdir) if jobdir else jobs_dir(db_path) / f"crawl-{crawl_id}"
    if resume and job_path.exists():
        # The database, not Scrapy's queue files, says what is left: after a
        # SIGKILL those files can be half written.
        shutil.rmtree(job_path)
    job_path.mkdir(parents=True, exist_ok=True)
    overrides.update(STEMWATCH_DB=str(db_path), STEMWATCH_CRAWL_ID=crawl_id, JOBDIR=str(job_path))

    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.clinics import ClinicsSpider

    crawl_settings = project_settings(overrides)
    process = CrawlerProcess(crawl_settings)
    quiet_logs(crawl_settings)
    process.crawl(ClinicsSpider, seed_list=seeds)
    process.start()
    return crawl_id
