"""Web archives into the store: `stemwatch import` (WARC, WARC.gz and WACZ files).

Look-back studies need pages as they were years ago, and web archives hold
them. Every `response` record of an HTML, XHTML, plain-text or PDF page
becomes a page row with its capture date (`fetched_at` = WARC-Date) and a
snapshot of its body as served (Content-Encoding and chunking undone), read
with the crawler's own `read_body`, so the detector gets the same input from
an archived page as from a crawled one. A 4xx/5xx answer is kept as the
crawler keeps it (an error page; 404 and 410 mark the page gone). Each page
points at its record (`warc_file`, `warc_offset`, `warc_length`,
`warc_record_id`), so `verify --db` and `export` read it back from the
archive, inside a WACZ too.

What is counted and skipped, never fatal: request, warcinfo, metadata,
resource and revisit records (a revisit carries no body to read), redirects,
robots.txt, non-page content (images, scripts...), bodies over the crawler's
10 MB limit, records an archiving crawler marked truncated, and captures the
store already holds (same URL, capture time and body). A damaged archive
(cut short, or garbage) is reported with the byte where it broke; what came
before is kept, and the other files are still read.

Captures go under one crawl record per archive and capture day
(analysis/store/archives.py), written a batch per transaction, so a killed
import keeps every batch it committed and running it again adds only what
is missing and analyses what was stored but not read. Claims come from the
one detector pool (analysis.detect.pool) and `Store.add_analyses`, as in
`reanalyze`. The history views order observations by capture time, so an
archive of 2019 imported after a crawl of 2026 reads as the earlier one.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections import Counter, deque
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from analysis.detect.inputs import PageInput, page_input
from analysis.detect.pool import DEFAULT_WORKERS, DetectorPool, DetectorVersionError, batched
from analysis.extract.content import ContentError, media_type, read_body
from analysis.models import KEPT_HEADERS
from analysis.store.archives import (
    ImportCrawl, add_archived_sites, already_imported, finish_import_crawls, import_crawls,
    start_import_crawl, unanalysed_pages,
)
from analysis.store.database import Store, write_transaction
from analysis.store.sites import canonicalize, site_key

PAGE_TYPES = {"text/html", "application/xhtml+xml", "text/plain", "application/pdf"}
MAX_BODY = 10 * 1024 * 1024  # the crawler's DOWNLOAD_MAXSIZE: a larger body is no page it would read
ARCHIVE_NAMES = (".warc", ".warc.gz", ".wacz")
# What warcio and the decompressors raise on a damaged archive.
DAMAGE = (ArchiveLoadFailed, EOFError, OSError, ValueError, zlib.error, zipfile.BadZipFile)
ZIP_MAGIC = b"PK\x03\x04"


class ArchiveImportError(Exception):
    """An import that cannot go on (the detector's patterns changed under it)."""


# -- what an archive holds ---------------------------------------------------------
@dataclass(frozen=True)
class ArchiveError:
    """Where an archive could not be read. `stopped`: reading the file (or the WARC in
    a WACZ) ended there, keeping what came before; otherwise one record was left out."""

    file: str
    message: str
    offset: int | None = None  # byte of the record that broke (inside the WACZ's WARC for a WACZ)
    member: str | None = None  # the WARC inside a WACZ
    stopped: bool = True

    @property
    def kind(self) -> str:
        if not self.stopped:
            return "record left out"
        return "damaged" if self.offset is not None else "cannot read"

    def __str__(self) -> str:
        where = f" ({self.member})" if self.member else ""
        at = f", byte {self.offset}" if self.offset is not None else ""
        return f"{self.file}{where}{at}: {self.message}"


@dataclass(frozen=True)
class Skipped:
    reason: str


@dataclass(frozen=True)
class ArchivedResponse:
    """A response record of an archive: the HTTP answer and where the record is."""

    url: str  # WARC-Target-URI, as archived
    fetched_at: str  # WARC-Date, as the store writes dates
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # Content-Encoding and chunking undone
    record_id: str | None
    warc_file: str  # the file's name, or the WARC's name inside a WACZ
    offset: int
    length: int


@dataclass
class ImportedPage:
    """One page row to store (without its crawl) and what the detector reads of it."""

    row: dict
    sha256: str
    detector_input: PageInput | None

    @property
    def day(self) -> str:
        return self.row["fetched_at"][:10]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.row["url"], self.row["fetched_at"], self.sha256


@dataclass
class FileReport:
    path: str
    records: int = 0  # WARC records read, of every type
    pages: int = 0  # pages stored
    duplicates: int = 0  # captures the store already held
    skipped: Counter = field(default_factory=Counter)  # reason -> records
    errors: list[ArchiveError] = field(default_factory=list)
    crawls: set[int] = field(default_factory=set)  # the crawl records its captures are under

    @property
    def unreadable(self) -> bool:
        """Nothing could be read: not there, not an archive, or broken at its first record."""
        return self.records == 0 and bool(self.errors)

    @property
    def damaged(self) -> bool:
        return any(e.stopped for e in self.errors)


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)
    claims: int = 0  # claims written for the pages analysed
    analysed: int = 0  # pages the detector read
    not_analysed: int = 0  # pages the detector could not read (pages.analysis_error)
    detected: bool = True

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def skipped(self) -> Counter:
        return sum((f.skipped for f in self.files), Counter())

    @property
    def errors(self) -> list[ArchiveError]:
        return [e for f in self.files for e in f.errors]

    @property
    def unreadable(self) -> list[FileReport]:
        return [f for f in self.files if f.unreadable]

    @property
    def crawls(self) -> list[int]:
        return sorted({c for f in self.files for c in f.crawls})


# -- pure functions --------------------------------------------------------------
def capture_time(warc_date: str | None) -> str | None:
    """A WARC-Date as the store writes fetched_at (UTC, to the second), or None."""
    if not warc_date:
        return None
    try:
        moment = datetime.fromisoformat(warc_date.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def skip_reason(url: str, status: int, content_type: str, truncated: str | None) -> str | None:
    """Why a response record is no page to import, or None."""
    if urlsplit(url).path == "/robots.txt":
        return "robots.txt"
    if 300 <= status < 400:
        return "redirect"
    if status < 200 or status in (204, 206):  # no body, or part of one: no page to read
        return f"HTTP {status}" if status else "no HTTP status"
    mtype = media_type(content_type)
    if mtype and mtype not in PAGE_TYPES:
        return f"not a page: {mtype}"
    if truncated:
        return f"truncated by the archiving crawler ({truncated})"
    return None


def kept_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The response headers a page row keeps, as the crawler keeps them."""
    kept: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() in KEPT_HEADERS:
            kept.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(values) for name, values in kept.items()}


def imported_page(response: ArchivedResponse) -> ImportedPage | Skipped:
    """The page row of an archived response, read as the crawler reads a fetched one."""
    url = canonicalize(response.url)
    ctype = next((v for k, v in response.headers if k.lower() == "content-type"), "")
    row = {
        "site": site_key(url), "url": url, "final_url": response.url, "status": response.status,
        "content_type": ctype or None, "fetched_at": response.fetched_at, "size": len(response.body),
        "headers": kept_headers(response.headers), "title": None, "text": None, "error": None,
        "body": response.body, "links": [], "warc_file": response.warc_file, "warc_offset": response.offset,
        "warc_length": response.length, "warc_record_id": response.record_id,
    }
    digest = hashlib.sha256(response.body).hexdigest()
    if response.status >= 400:  # kept as the crawler keeps it: 404 and 410 say the page is gone
        row["error"] = f"HTTP {response.status}"
        return ImportedPage(row, digest, None)
    try:
        page, _ = read_body(response.body, ctype, response.url)
    except ContentError as e:
        if not ctype:  # no type said, and not a page by its bytes: an image, a script...
            return Skipped("not a page: no Content-Type")
        row["error"] = str(e)
        return ImportedPage(row, digest, None)
    except Exception as e:  # noqa: BLE001  an extractor bug costs one page, as in a crawl
        row["error"] = f"extraction failed: {type(e).__name__}: {e}"[:300]
        return ImportedPage(row, digest, None)
    row.update(title=page.title or None, text=page.text,
               links=list(dict.fromkeys(canonicalize(link) for link in page.links
                                        if link.startswith(("http://", "https://")))))
    return ImportedPage(row, digest, page_input(page, url) if page.text else None)


def place(day_crawls: list[ImportCrawl], url: str) -> ImportCrawl | None:
    """Of an archive's crawl records of one day, the first that does not hold the URL yet."""
    return next((c for c in sorted(day_crawls, key=lambda c: c.round) if url not in c.urls), None)


def archive_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The archives named: files as given, folders for the .warc, .warc.gz and .wacz files in
    them (a folder holding none stays, to be reported)."""
    out: list[Path] = []
    for path in map(Path, paths):
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(ARCHIVE_NAMES)) \
            if path.is_dir() else []
        out.extend(found or [path])
    return list(dict.fromkeys(out))


# -- reading archives ----------------------------------------------------------------
def read_response(record, warc_file: str) -> ArchivedResponse | Skipped:
    """A response record as an ArchivedResponse (offsets not known yet), or why not."""
    if record.rec_type != "response":
        return Skipped(f"{record.rec_type} record")
    url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    http = record.http_headers
    if not url.lower().startswith(("http://", "https://")) or http is None:
        return Skipped("not an HTTP response")
    fetched_at = capture_time(record.rec_headers.get_header("WARC-Date"))
    if fetched_at is None:
        return Skipped("no usable WARC-Date")
    try:
        status = int(http.get_statuscode() or 0)
    except ValueError:
        status = 0
    reason = skip_reason(url, status, http.get_header("Content-Type") or "",
                         record.rec_headers.get_header("WARC-Truncated"))
    if reason:
        return Skipped(reason)
    body = record.content_stream().read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return Skipped("larger than 10 MB")
    return ArchivedResponse(url=url, fetched_at=fetched_at, status=status, headers=list(http.headers), body=body,
                            record_id=record.rec_headers.get_header("WARC-Record-ID"), warc_file=warc_file,
                            offset=0, length=0)


def read_warc(stream: BinaryIO, file: str, warc_file: str, member: str | None = None,
              ) -> Iterator[ArchivedResponse | Skipped | ArchiveError]:
    """Every record of one WARC stream, in order; an ArchiveError last if it broke."""
    records = ArchiveIterator(stream)
    end = 0  # where the last whole record ended: where a break starts

    def broke(message: str, offset: int | None = None) -> ArchiveError:
        return ArchiveError(file, message, end if offset is None else offset, member)

    read = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except DAMAGE as e:
            yield broke(describe_damage(e))
            return
        problem = None
        try:
            item = read_response(record, warc_file)
        except Exception as e:  # noqa: BLE001  a body warcio cannot decode (br): the next record may be fine
            item, problem = None, e
        try:
            offset, length = records.get_record_offset(), records.get_record_length()
        except DAMAGE as e:
            yield broke(describe_damage(e))
            return
        missing = getattr(record.raw_stream, "limit", 0)  # bytes short of its Content-Length
        if missing:
            yield broke(f"the file ends inside a record ({missing} of its {record.length} bytes missing)", offset)
            return
        end = offset + length
        read += 1
        if item is None:
            yield ArchiveError(file, f"the body cannot be read ({type(problem).__name__}: {problem})"[:300],
                               offset, member, stopped=False)
        elif isinstance(item, ArchivedResponse):
            yield replace(item, offset=offset, length=length)
        else:
            yield item
    # warcio ends quietly at a gzip member cut short, or at bytes it cannot start a record
    # with: anything but blank space after the last whole record is damage
    try:
        stream.seek(end)
        rest = stream.read(4096)
    except OSError:
        rest = b""
    if rest.strip(b"\r\n\t \x00"):
        yield broke("unreadable data: the file is cut short inside a record, or this is not a WARC"
                    if read else "not a WARC file (no record could be read)")
    elif not read:
        yield broke("no WARC records in it")


def describe_damage(e: Exception) -> str:
    """What broke, in words; never the damaged bytes themselves."""
    text = " ".join(str(e).split())
    if text.startswith(("Unknown archive format", "Invalid WARC record")):
        return "no WARC record starts here (unreadable bytes)"
    if "non-chunked gzip" in text:
        return ("one gzip stream rather than one gzip member per record, so its records cannot be "
                "found again: recompress it with `warcio recompress` and import that")
    if isinstance(e, EOFError) or "Compressed file ended" in text:
        return "the file is cut short inside a record"
    return f"cannot be read as WARC ({type(e).__name__}: {text[:160]})"


def read_archive(path: Path) -> Iterator[ArchivedResponse | Skipped | ArchiveError]:
    """Every record of a WARC, WARC.gz or WACZ file (each archive/*.warc* in it)."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            if f.read(4) != ZIP_MAGIC:
                f.seek(0)
                yield from read_warc(f, file, path.name)
                return
        with zipfile.ZipFile(path) as wacz:
            members = sorted(n for n in wacz.namelist()
                             if n.startswith("archive/") and n.endswith((".warc", ".warc.gz")))
            if not members:
                yield ArchiveError(file, "a zip file with no archive/*.warc.gz in it: not a WACZ")
                return
            for member in members:
                with wacz.open(member) as f:
                    yield from read_warc(f, file, member, member)
    except FileNotFoundError:
        yield ArchiveError(file, "no such file")
    except IsADirectoryError:
        yield ArchiveError(file, "a folder holding no .warc, .warc.gz or .wacz file")
    except (zipfile.BadZipFile, OSError) as e:
        yield ArchiveError(file, f"cannot be read: {getattr(e, 'strerror', None) or e}")


# -- writing -----------------------------------------------------------------------
class _Import:
    """One import run: pages written a batch per transaction, analysed as they are written."""

    def __init__(self, store: Store, pool: DetectorPool | None, batch: int, report: ImportReport):
        self.store, self.pool, self.batch, self.report = store, pool, batch, report
        self.in_flight: deque = deque()  # (page ids, future of their analyses), oldest first
        self.limit = 2 * pool.processes if pool else 0  # in-process: written at once
        self.finished: list[tuple[list[int], str, dict]] = []  # crawl records to close at the end

    def archive(self, path: Path, progress: Callable[[FileReport], None] | None) -> FileReport:
        out = FileReport(str(path))
        self.report.files.append(out)
        is_file = path.is_file()
        archive = str(path.resolve())
        wacz = is_file and _starts_with(path, ZIP_MAGIC)
        crawls: dict[str, list[ImportCrawl]] = {}  # capture day -> its crawl records
        for crawl in import_crawls(self.store, archive) if is_file else []:
            crawls.setdefault(crawl.day, []).append(crawl)
            out.crawls.add(crawl.id)  # a re-run closes and analyses these too
        buffer: list[ImportedPage] = []
        seen: set[tuple[str, str, str]] = set()  # captures of this file buffered or written
        for item in read_archive(path):
            if isinstance(item, ArchiveError):
                out.errors.append(item)
                if not item.stopped:  # a record read, its body not
                    out.records += 1
                continue
            out.records += 1
            page = imported_page(item) if isinstance(item, ArchivedResponse) else item
            if isinstance(page, Skipped):
                out.skipped[page.reason] += 1
                continue
            if page.key in seen or already_imported(self.store, *page.key):
                out.duplicates += 1
                continue
            seen.add(page.key)
            buffer.append(page)
            if len(buffer) >= self.batch:
                self.write(buffer, crawls, archive, path if wacz else path.parent, out)
                buffer = []
        if buffer:
            self.write(buffer, crawls, archive, path if wacz else path.parent, out)
        if out.crawls:
            damage = next((str(e) for e in out.errors if e.stopped), None)
            self.finished.append((sorted(out.crawls), "damaged" if damage else "finished",
                                  {"imported_from": archive, "records": out.records, "archive_error": damage}))
        if progress:
            progress(out)
        return out

    def write(self, pages: list[ImportedPage], crawls: dict[str, list[ImportCrawl]], archive: str,
              warc_dir: Path, out: FileReport):
        rows = []
        with write_transaction(self.store.db):
            add_archived_sites(self.store, {p.row["site"]: _root(p.row["url"]) for p in pages})
            for page in pages:
                day = crawls.setdefault(page.day, [])
                crawl = place(day, page.row["url"])
                if crawl is None:
                    crawl = ImportCrawl(start_import_crawl(self.store, archive, warc_dir, page.day, len(day) + 1,
                                                           page.row["fetched_at"]), page.day, len(day) + 1)
                    day.append(crawl)
                crawl.urls.add(page.row["url"])
                out.crawls.add(crawl.id)
                rows.append({**page.row, "crawl_id": crawl.id})
            ids = self.store.add_pages(rows)
        out.pages += len(ids)
        wanted = [(pid, p.detector_input) for pid, p in zip(ids, pages) if p.detector_input is not None]
        if self.pool is not None and wanted:
            self.submit([pid for pid, _ in wanted], [page for _, page in wanted])

    # -- detection ---------------------------------------------------------------------
    def submit(self, ids: list[int], pages: list):
        self.in_flight.append((ids, self.pool.submit(pages)))
        while len(self.in_flight) > self.limit:
            self.write_first()

    def write_first(self):
        ids, future = self.in_flight.popleft()
        try:
            results = list(zip(ids, future.result()))
        except DetectorVersionError as e:
            raise ArchiveImportError(str(e)) from e
        self.report.claims += self.store.add_analyses(results)
        self.report.analysed += len(results)
        self.report.not_analysed += sum(1 for _, analysis in results if analysis.error)

    def finish(self, batch: int):
        """Every page written is analysed, then pages of these archives that an earlier,
        killed run stored but never analysed; then the crawl records are closed."""
        if self.pool is not None:
            while self.in_flight:
                self.write_first()
            rest = unanalysed_pages(self.store, self.report.crawls)
            for part in batched(rest, batch):
                stored = self.store.stored_pages(part)
                self.submit([pid for pid, _ in stored], [page for _, page in stored])
            while self.in_flight:
                self.write_first()
        for crawl_ids, status, stats in self.finished:
            finish_import_crawls(self.store, crawl_ids, status, stats)


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def import_archives(store: Store, paths: Iterable[str | Path], *, detect: bool = True, detector=None,
                    workers: int = DEFAULT_WORKERS, batch: int = 100,
                    progress: Callable[[FileReport], None] | None = None) -> ImportReport:
    """Import every page of these archives (files, or folders of them) into the store,
    then detect their claims; `progress` is told as each file is done."""
    report = ImportReport(detected=detect)
    if detect and detector is None:
        from analysis.detect.detector import get_detector

        detector = get_detector()
    # worker processes only for a detector they can build again (a real one, from its patterns)
    processes = workers if detect and workers > 1 and getattr(detector, "patterns_dir", None) else 0
    with DetectorPool(processes, detector=detector) if detect else nullcontext() as pool:
        run = _Import(store, pool, batch, report)
        for path in archive_paths(paths):
            run.archive(path, progress)
        run.finish(batch)
    return report


# -- what the command prints -------------------------------------------------------------
def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _counts(skipped: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_file(f: FileReport) -> str:
    """One progress line for a file read."""
    line = f"{f.path}: {_n(f.records, 'record')}, {f.pages} stored"
    if f.duplicates:
        line += f", {f.duplicates} already imported"
    if f.skipped:
        line += f", {sum(f.skipped.values())} skipped ({_counts(f.skipped)})"
    return line


def describe(report: ImportReport) -> str:
    """The summary after the last file."""
    lines = [f"Read {_n(len(report.files), 'archive')}: {_n(report.records, 'record')}; "
             f"{_n(report.pages, 'page')} stored, {report.duplicates} already imported, "
             f"{sum(report.skipped.values())} skipped; captures under {_n(len(report.crawls), 'crawl record')} "
             "(one per archive and capture day)"]
    if report.detected:
        lines.append(f"Claims: {report.claims} in {_n(report.analysed, 'page')} analysed"
                     + (f"; {report.not_analysed} could not be analysed (pages.analysis_error)"
                        if report.not_analysed else ""))
    else:
        lines.append("Claims not detected (--no-detect): stemwatch reanalyze detects them")
    lines.extend(f"{error.kind}: {error}" for error in report.errors)
    return "\n".join(lines)
