"""The one pool of detector processes: the crawl, `reanalyze` and `scan` all use it.

Each worker is a spawned process (it shares nothing with a crawl's reactor)
that builds the detector once from a pattern directory and analyses batches
of pages sent to it. A worker whose detector is not the version the pool was
opened for refuses to work, so patterns edited during a long run cannot mix
two versions' claims. A worker leaves by itself when the process that
started it is gone (a crawl killed with SIGKILL cannot shut its pool down).

With ``processes=0`` the same calls run in this process, on the detector
given: what one-core runs and tests use.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

from analysis.detect.inputs import as_input
from analysis.models import PageAnalysis

DEFAULT_WORKERS = 2  # both cores of the machines this runs on


class DetectorVersionError(Exception):
    """A worker built a different detector than the pool was opened for."""


class DetectorPool:
    """Analyse batches of pages (PageInput, StoredPage or dicts) in worker processes."""

    def __init__(self, processes: int = DEFAULT_WORKERS, *, detector=None,
                 patterns_dir: str | Path | None = None):
        if detector is None and processes <= 0:
            from analysis.detect.detector import get_detector

            detector = get_detector()
        self.detector = detector
        self.patterns_dir = str(patterns_dir or getattr(detector, "patterns_dir", None) or "") or None
        self.version = getattr(detector, "version", None)
        # the workers build the same detector: rules, and the same model and threshold if any
        if detector is None:
            self.model = (True, None)  # the default detector's
        else:
            model = getattr(detector, "model_dir", None)
            self.model = (str(model) if model else None, getattr(detector, "threshold", None))
        self.processes = max(0, processes)
        self._executor = None
        if self.processes:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.patterns_dir, self.version, os.getpid(), self.model))
            self._start_workers()

    def _start_workers(self):
        """Start every worker now, with Ctrl-C ignored: a terminal sends SIGINT to the whole
        process group, and a worker that took it would die mid-batch (its pages' claims
        lost, "process pool broken" errors). An ignored signal stays ignored in a spawned
        process, so the workers leave the stopping to the process that owns them, which
        still analyses the pages it stored before it exits."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
        try:
            # the executor spawns a worker per task it cannot hand to an idle one
            for _ in range(self.processes):
                self._executor.submit(_ready)
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)

    def submit(self, pages: list) -> concurrent.futures.Future:
        """A future of the pages' analyses, in order."""
        if self._executor is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            try:
                future.set_result(analyse(self.detector, pages))
            except Exception as e:
                future.set_exception(e)
            return future
        return self._executor.submit(_analyse_in_worker, pages)

    def imap(self, pages: Iterable, batch_size: int = 64) -> Iterator[PageAnalysis]:
        """Analyses in input order. A bounded queue of batches in flight: the workers
        always have the next batch while the first result is read, and memory stays
        flat however many pages come."""
        if self._executor is None:
            for batch in batched(pages, batch_size):
                yield from analyse(self.detector, batch)
            return
        in_flight: deque = deque()
        for batch in batched(pages, batch_size):
            in_flight.append(self.submit(batch))
            if len(in_flight) > self.processes * 3:
                yield from in_flight.popleft().result()
        while in_flight:
            yield from in_flight.popleft().result()

    def close(self, cancel: bool = False):
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.close(cancel=exc_type is not None)


def analyse(detector, pages: list) -> list[PageAnalysis]:
    """The pages' analyses, in order. If the batch fails, each page is analysed alone, so
    a page that cannot be analysed costs no other page its claims: it gets an analysis
    with the reason in ``error`` and no claims."""
    inputs = [as_input(p) for p in pages]
    try:
        return list(detector.analyze_many(inputs))
    except Exception:  # noqa: BLE001  (found out page by page below)
        pass
    out = []
    for page in inputs:
        try:
            out.extend(detector.analyze_many([page]))
        except Exception as e:  # noqa: BLE001
            out.append(PageAnalysis(lang=page.lang or "", detector_version=detector.version,
                                    error=f"{type(e).__name__}: {e}"[:500]))
    return out


def batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(itertools.islice(it, max(size, 1))):
        yield batch


# -- inside a worker process ------------------------------------------------------
_worker_detector = None
_expected_version = None


def _init_worker(patterns_dir: str | None, version: str | None, parent_pid: int,
                 model: tuple = (None, None)):
    global _worker_detector, _expected_version
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner stops the pool (DetectorPool._start_workers)
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True, name="orphan-watch").start()
    from analysis.detect.detector import Detector, env_threshold

    model_dir, threshold = model
    if model_dir is True:  # the default detector, as get_detector() makes it
        threshold = env_threshold()
    _worker_detector = Detector(patterns_dir, model_dir=model_dir or None, threshold=threshold)
    _expected_version = version


def _ready() -> bool:
    return True


def _exit_with(parent_pid: int):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def _analyse_in_worker(pages: list) -> list[PageAnalysis]:
    if _expected_version is not None and _worker_detector.version != _expected_version:
        raise DetectorVersionError(
            f"the patterns in {_worker_detector.patterns_dir} changed while analysing "
            f"({_expected_version} became {_worker_detector.version}); pages done so far are "
            "stored, run the command again to finish")
    return analyse(_worker_detector, pages)
