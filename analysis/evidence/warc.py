"""Reading the WARC captures a crawl wrote (crawler/capture.py), and checking
that the database and its captures agree.

A page row points at a byte range of one WARC file of its crawl's set: the
response record as received, then its request record. The stored snapshot
is the body as the crawler read it (after Content-Encoding was undone), so
agreement means: the record is there with the same record id, its decoded
payload has the page's SHA-256, and its WARC-Date is the page's fetched_at.

A page rendered in Chromium has a third record in its range: the DOM after the
scripts ran, a `conversion` record whose WARC-Refers-To names the response. Its
row's sha256 is the DOM's and raw_sha256 what the server sent, so the response
record is checked against raw_sha256 and the conversion record against sha256.

A page imported from a web archive points at that archive's record the same
way: its crawl's folder is the archive's, or the WACZ itself, and its file a
WARC inside that zip (`archive/data.warc.gz`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from http import HTTPStatus
from dataclasses import dataclass, field, replace
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from analysis.store.database import Store, StoreError


class CaptureError(StoreError):
    pass


class Sha256WARCWriter(WARCWriter):
    """warcio's writer with SHA-256 block and payload digests (the snapshot store's hash)."""

    @staticmethod
    def _create_digester():
        return Digester("sha256")


def http_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@dataclass(frozen=True)
class CapturedResponse:
    url: str
    record_id: str
    date: str  # WARC-Date
    ip_address: str | None
    status: int
    headers: list[tuple[str, str]]  # as received
    content: bytes  # payload with Content-Encoding undone: what the crawler read
    payload_digest: str = ""  # WARC-Payload-Digest: of the payload as sent (still compressed, if it was)
    content_encoding: str | None = None
    records: bytes = field(repr=False, default=b"")  # the raw gzip members (response + request)
    rendered: bytes | None = field(repr=False, default=None)  # a rendered page's DOM (its conversion record)
    rendered_record_id: str | None = None


def read_range(path: Path, offset: int, length: int) -> bytes:
    """Bytes offset..offset+length of a file, or of a WARC inside a WACZ when a folder
    of `path` is a zip file (x.wacz/archive/data.warc.gz)."""
    if not path.is_file():
        for parent in path.parents:
            if parent.is_file() and zipfile.is_zipfile(parent):
                member = path.relative_to(parent).as_posix()
                try:
                    with zipfile.ZipFile(parent) as wacz, wacz.open(member) as f:
                        f.seek(offset)
                        return f.read(length)
                except (KeyError, zipfile.BadZipFile, OSError, EOFError) as e:
                    raise CaptureError(f"cannot read {member} in {parent}: {e}") from e
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def read_capture(path: Path, offset: int, length: int) -> CapturedResponse:
    """The response record (and its request record) at offset..offset+length of path."""
    try:
        raw = read_range(path, offset, length)
    except OSError as e:
        raise CaptureError(f"cannot read the capture {path}: {e.strerror or e}") from e
    if len(raw) != length:
        raise CaptureError(f"{path} is shorter than its index says (record at byte {offset})")
    found = None
    try:
        for record in ArchiveIterator(io.BytesIO(raw)):
            if record.rec_type == "response" and found is None:
                content = record.content_stream().read()
                http = record.http_headers
                found = CapturedResponse(
                    url=record.rec_headers.get_header("WARC-Target-URI"),
                    record_id=record.rec_headers.get_header("WARC-Record-ID"),
                    date=record.rec_headers.get_header("WARC-Date"),
                    ip_address=record.rec_headers.get_header("WARC-IP-Address"),
                    status=int(http.get_statuscode() or 0),
                    headers=list(http.headers),
                    content=content,
                    payload_digest=record.rec_headers.get_header("WARC-Payload-Digest") or "",
                    content_encoding=http.get_header("Content-Encoding"),
                    records=raw if raw[:2] == b"\x1f\x8b" else gzip_record(raw),
                )
            elif (record.rec_type == "conversion" and found is not None
                  and record.rec_headers.get_header("WARC-Refers-To") == found.record_id):
                found = replace(found, rendered=record.content_stream().read(),
                                rendered_record_id=record.rec_headers.get_header("WARC-Record-ID"))
    except (ArchiveLoadFailed, OSError, ValueError, EOFError) as e:
        raise CaptureError(f"{path}: the record at byte {offset} cannot be read ({e})") from e
    if found is None:
        raise CaptureError(f"{path}: no response record at byte {offset}")
    return found


def gzip_record(raw: bytes) -> bytes:
    """An uncompressed record (an imported .warc's) as one gzip member, so it can join
    the gzip members of a bundle's .warc.gz. Its byte range stops before the blank
    lines that end a record, so they are added."""
    return gzip.compress(raw + b"\r\n\r\n", mtime=0)


def page_capture(store: Store, page: dict) -> CapturedResponse | None:
    """The capture of a page row (with crawl_id and the warc_* columns), or None if it has none."""
    if not page.get("warc_record_id"):
        return None
    folder = store.warc_dir(page["crawl_id"])
    if folder is None:
        raise CaptureError(f"page {page['id']} names a WARC record but crawl {page['crawl_id']} has no WARC folder")
    capture = read_capture(folder / page["warc_file"], page["warc_offset"], page["warc_length"])
    if capture.record_id != page["warc_record_id"]:
        raise CaptureError(f"page {page['id']}: {page['warc_file']} at byte {page['warc_offset']} holds "
                           f"{capture.record_id}, not {page['warc_record_id']}")
    return capture


def sent_sha256(page: dict) -> str | None:
    """The SHA-256 of what the server sent for a page row: raw_sha256 for a page
    rendered in Chromium (its sha256 is the DOM's), else sha256."""
    return page.get("raw_sha256") if page.get("rendered") else page.get("sha256")


def capture_problem(page: dict, capture: CapturedResponse) -> str | None:
    """Why a page row and its capture disagree, or None."""
    sent = sent_sha256(page)
    if sent and hashlib.sha256(capture.content).hexdigest() != sent:
        return "the stored page is not the captured one (SHA-256 differs)"
    if page.get("rendered"):
        if capture.rendered is None:
            return "rendered, but its capture holds no rendered page (conversion record)"
        if page.get("sha256") and hashlib.sha256(capture.rendered).hexdigest() != page["sha256"]:
            return "the stored rendered page is not the captured one (SHA-256 differs)"
        if page.get("rendered_record_id") and capture.rendered_record_id != page["rendered_record_id"]:
            return f"rendered record {page['rendered_record_id']} stored, {capture.rendered_record_id} captured"
    if page.get("status") is not None and capture.status != page["status"]:
        return f"status {page['status']} stored, {capture.status} captured"
    if (page.get("fetched_at") or "")[:19] != capture.date[:19]:
        return f"fetched_at {page['fetched_at']} stored, captured {capture.date}"
    return None


def verify_captures(store: Store) -> dict:
    """Check every captured page against its WARC record. Pages of crawls that
    captured nothing (made before capture existed, or with it off) are counted apart."""
    checked, problems, uncaptured = 0, [], 0
    if "warc_record_id" not in store.db["pages"].columns_dict:
        return {"checked": 0, "problems": [], "uncaptured": store.db["pages"].count}
    captured_crawls = {r[0] for r in store.db.execute("select id from crawls where warc_dir is not null")}
    rendering = ", rendered, raw_sha256, rendered_record_id" if "rendered" in store.db["pages"].columns_dict else ""
    rows = store.db.query(
        "select id, crawl_id, url, status, fetched_at, sha256, warc_file, warc_offset, warc_length, "
        f"warc_record_id{rendering} from pages order by id")
    for page in rows:
        if not page["warc_record_id"]:
            if page["crawl_id"] not in captured_crawls:
                uncaptured += 1
            elif page["status"] is not None:  # no status: no response came, nothing to capture
                problems.append({"page_id": page["id"], "url": page["url"],
                                 "problem": "fetched but not captured (see the crawl's warc_errors)"})
            continue
        checked += 1
        try:
            problem = capture_problem(page, page_capture(store, page))
        except CaptureError as e:
            problem = str(e)
        if problem:
            problems.append({"page_id": page["id"], "url": page["url"], "problem": problem})
    return {"checked": checked, "problems": problems, "uncaptured": uncaptured}
