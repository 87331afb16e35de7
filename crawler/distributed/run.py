"""Running a distributed crawl: the writer, and the workers.

`stemwatch crawl SEEDS --db DB --redis URL --workers N` records the crawl in
the database as any crawl, puts its configuration and seeds in Redis, starts
N worker processes (`stemwatch worker`) on this machine and becomes the
crawl's one writer: it stores what every worker (here or on other machines)
pushes, and closes the crawl once no request, start entry or item is left
anywhere. Workers on other machines need only the Redis URL and the crawl's
key, which the writer prints.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from analysis.store.database import Store
from analysis.store.sites import site_key
from analysis.store.queries import crawl_status, resume_state
from crawler.capture import SETTINGS_RECORDED
from crawler.distributed.state import Caps, CrawlConfig, Politeness, RedisCrawl, new_crawl_key, worker_name
from crawler.run import CrawlError, project_settings, quiet_logs, write_job
from crawler.spiders.clinics import MAX_SITEMAPS_PER_SITE, url_pattern

logger = logging.getLogger(__name__)


def shown_url(url: str) -> str:
    """The Redis URL without its password, for the terminal."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def connect(url: str):
    from scrapy.settings import Settings
    from scrapy_redis import connection

    try:
        server = connection.from_settings(Settings({"REDIS_URL": url}))
        server.ping()
    except Exception as e:
        raise CrawlError(f"cannot reach Redis at {shown_url(url)}: {e}") from e
    return server


def redis_settings(url: str, key: str, config: CrawlConfig) -> dict:
    """What the writer and every worker of the crawl share."""
    prefix = RedisCrawl(None, key).prefix
    return {
        "REDIS_URL": url,
        "STEMWATCH_REDIS_KEY": key,
        "STEMWATCH_CRAWL_ID": config.crawl_id,
        "STEMWATCH_REDIS_LEASE_TIMEOUT": config.lease_timeout,
        "SCHEDULER_QUEUE_KEY": prefix + "requests",
        "SCHEDULER_DUPEFILTER_KEY": prefix + "dupefilter",
        "JOBDIR": None,
    }


def worker_settings(url: str, key: str, config: CrawlConfig, worker: str, warc_dir: str | None,
                    parent: int | None) -> dict:
    handler = "crawler.distributed.gate.GatedDownloadHandler"
    return {
        **redis_settings(url, key, config),
        "STEMWATCH_WORKER_ID": worker,
        "STEMWATCH_REDIS_PARENT": parent,
        "STEMWATCH_REDIS_POLITENESS": asdict(config.politeness),
        "STEMWATCH_REDIS_CAPS": asdict(config.caps),
        "SCHEDULER": "crawler.distributed.scheduler.LeasedScheduler",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_SERIALIZER": "crawler.distributed.codec",
        "SCHEDULER_PERSIST": True,
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "DOWNLOAD_HANDLERS": {"http": handler, "https": handler},
        "ITEM_PIPELINES": {"crawler.pipelines.StoragePipeline": None,
                           "crawler.distributed.pipelines.RedisItemPipeline": 300},
        "STEMWATCH_DB": None,
        "STEMWATCH_WARC_DIR": warc_dir or config.warc_dir,
    }


def new_config(crawl_id: int, seeds: list[dict], overrides: dict) -> CrawlConfig:
    settings = project_settings(overrides)
    return CrawlConfig(
        crawl_id=crawl_id, seeds=seeds, settings=overrides, warc_dir=overrides.get("STEMWATCH_WARC_DIR"),
        politeness=Politeness.from_settings(settings),
        caps=Caps(max_pages=settings.getint("STEMWATCH_MAX_PAGES_PER_SITE"),
                  max_per_pattern=settings.getint("STEMWATCH_MAX_PER_PATTERN", 50),
                  max_sitemaps=MAX_SITEMAPS_PER_SITE),
        lease_timeout=settings.getfloat("STEMWATCH_REDIS_LEASE_TIMEOUT"),
    )


def prepare(db_path: Path, job: dict, overrides: dict, url: str, resume: bool) -> tuple[RedisCrawl, CrawlConfig]:
    """The crawl's state in Redis: new, found again, or (resuming a crawl whose Redis
    state is gone) rebuilt from the database as a single-process resume would."""
    server = connect(url)
    crawl_id, seeds = job["crawl_id"], job["seeds"]
    key = (job.get("redis") or {}).get("key") if resume else None
    if key:
        crawl = RedisCrawl(server, key)
        config = crawl.config()
        if config is not None and config.crawl_id == crawl_id:
            return crawl, config
        logger.warning("crawl %s has no state in Redis at %s: its frontier is rebuilt from the database",
                       key, shown_url(url))
    crawl = RedisCrawl(server, key or new_crawl_key(crawl_id))
    config = new_config(crawl_id, seeds, overrides)
    starts: list[dict] = []
    if resume:
        store = Store(db_path)
        try:
            stored, frontier = resume_state(store, crawl_id, {s.get("site") or site_key(s["url"]) for s in seeds})
        finally:
            store.close()
        crawl.prime(stored, url_pattern)
        starts += [{"frontier": f} for f in frontier]
    starts += [{"seed": s} for s in seeds]
    crawl.create(config, starts)
    return crawl, config


class LocalWorker:
    """A worker of this machine, forked from the writer before its reactor starts, so
    that it shares the modules already imported (a fresh `stemwatch worker` process
    spends most of its start-up, about a CPU second, importing them). The child shares
    nothing else: it opens its own Redis connection and builds its own crawler. It has
    the Popen methods wait_workers uses."""

    def __init__(self, url: str, key: str, verbose: bool):
        self.returncode: int | None = None
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the writer's code
            os._exit(_worker_main(url, key, parent, verbose))
        self.pid = pid

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def _worker_main(url: str, key: str, parent: int, verbose: bool) -> int:
    """What a forked worker runs: `stemwatch worker`, as its exit status."""
    settings = {"STEMWATCH_PROGRESS_INTERVAL": 0, **({"LOG_LEVEL": "INFO"} if verbose else {})}
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)  # as `stemwatch worker` with stdout discarded: its log goes to stderr
        run_worker(url, key, parent=parent, settings=settings)
        return 0
    except CrawlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stderr.flush()


def preload_worker_modules(settings) -> None:
    """Import every component a worker's crawler loads, so that forked workers share them."""
    from scrapy.utils.misc import load_object

    for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS", "ITEM_PIPELINES"):
        for path, order in settings.getwithbase(name).items():
            if order is not None and isinstance(path, str):
                load_object(path)
    for path in settings.getwithbase("DOWNLOAD_HANDLERS").values():  # scheme -> handler
        if isinstance(path, str):
            load_object(path)
    for name in ("SCHEDULER", "SCHEDULER_QUEUE_CLASS", "DUPEFILTER_CLASS", "STATS_CLASS",
                 "SCHEDULER_PRIORITY_QUEUE", "DOWNLOADER", "ITEM_PROCESSOR", "REQUEST_FINGERPRINTER_CLASS",
                 "SPIDER_LOADER_CLASS", "LOG_FORMATTER"):
        if isinstance(settings.get(name), str):
            load_object(settings[name])
    load_object("crawler.distributed.spiders.WorkerSpider")


def start_workers(n: int, url: str, key: str, verbose: bool, config: CrawlConfig) -> list[LocalWorker]:
    """N workers forked on this machine, leaving by themselves if this process dies."""
    preload_worker_modules(project_settings({**config.settings,
                                             **worker_settings(url, key, config, "preload", None, None)}))
    return [LocalWorker(url, key, verbose) for _ in range(n)]


def wait_workers(procs: list[LocalWorker], timeout: float, finished: bool) -> None:
    """A finished crawl's workers are leaving: wait for them (and stop any that do not).
    An unfinished crawl's were stopped with it (Ctrl-C, SIGTERM reach the whole process
    group) or stop by themselves once this process is gone: no second signal, which
    would make Scrapy stop them at once rather than hand back what they hold."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if finished:
                proc.terminate()  # Scrapy's graceful stop
    if finished:
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_distributed(db_path: Path, job: dict, overrides: dict, *, url: str, workers: int, resume: bool,
                    verbose: bool = False) -> tuple[int, str]:
    """Be the writer of the crawl `job` (see crawler.run.run_crawl) with `workers` local
    workers; returns (crawl id, the crawl's key in Redis)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.distributed.spiders import WriterSpider

    crawl, config = prepare(db_path, job, overrides, url, resume)
    token = take_writer_lock(crawl, config.lease_timeout)
    job["redis"] = {"url": url, "key": crawl.key, "workers": workers}
    write_job(db_path, job)  # a resume finds the same state
    print(f"stemwatch: crawl {config.crawl_id} is {crawl.key} in Redis; on other machines: "
          f"stemwatch worker --redis {shown_url(url)} --crawl {crawl.key}", file=sys.stderr, flush=True)
    writer = {
        **overrides, **redis_settings(url, crawl.key, config),
        "STEMWATCH_DB": str(db_path),
        "STEMWATCH_REDIS_WRITER": token,
        "ITEM_PIPELINES": {"crawler.pipelines.StoragePipeline": None,
                           "crawler.distributed.pipelines.RedisStoragePipeline": 300},
    }
    procs = start_workers(workers, url, crawl.key, verbose, config)
    finished = False
    try:
        process = CrawlerProcess(project_settings(writer))
        process.crawl(WriterSpider, seed_list=config.seeds)
        process.start()
        store = Store(db_path)
        try:
            finished = crawl_status(store, config.crawl_id) == "finished"
        finally:
            store.close()
    finally:
        wait_workers(procs, max(10.0, config.lease_timeout) if finished else 30.0, finished)
        try:
            crawl.unlock_writer(token)
        except Exception:  # Redis gone: the lock runs out by itself
            pass
    if finished:
        crawl.cleanup()
    return config.crawl_id, crawl.key


def take_writer_lock(crawl: RedisCrawl, lease_timeout: float) -> str:
    """One writer per crawl. A killed writer's lock runs out after the lease timeout,
    so a resume right after a kill waits that long."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + 2 * lease_timeout + 5
    while not crawl.lock_writer(token, lease_timeout):
        if time.monotonic() > deadline:
            raise CrawlError(f"crawl {crawl.key} has a writer already (another stemwatch crawl --redis)")
        time.sleep(0.2)
    return token


def run_worker(url: str, key: str, *, warc_dir: str | None = None, parent: int | None = None,
               settings: dict | None = None) -> str:
    """One worker of the crawl `key` in this process, until the crawl is done; returns its id."""
    from scrapy.crawler import CrawlerProcess

    from crawler.distributed.spiders import WorkerSpider

    crawl = RedisCrawl(connect(url), key)
    config = crawl.config()
    if config is None:
        if crawl.state() == "done":
            raise CrawlError(f"crawl {key} has finished")
        raise CrawlError(f"no crawl {key} in Redis at {shown_url(url)} (stemwatch crawl --redis prints the key)")
    fixed = sorted(set(settings or {}) & set(SETTINGS_RECORDED))
    if fixed:
        raise CrawlError(f"{', '.join(fixed)}: the crawl's own settings are the writer's to set, "
                         "so that every worker crawls alike")
    worker = worker_name()
    overrides = {**config.settings, **(settings or {}),
                 **worker_settings(url, key, config, worker, warc_dir, parent)}
    crawl_settings = project_settings(overrides)
    process = CrawlerProcess(crawl_settings)
    quiet_logs(crawl_settings)
    process.crawl(WorkerSpider, seed_list=config.seeds)
    process.start()
    return worker
