"""Evidence bundles for complaints to the FDA, the FTC or a medical board.

`export_bundle` writes one zip:
- manifest.json: every other file with its SHA-256 and size, the claims with
  their ids and identities, the crawls, capture times, detector and tool
  versions, operator and contact, export time; signed (manifest.json.sig,
  Ed25519, with signer.pub) and, if asked, timestamped (manifest.json.tsr,
  an RFC 3161 token from a timestamp authority);
- evidence.wacz: the cited pages as they were captured at fetch time (the
  WARC records written by the crawl, request and response, byte for byte),
  with its page list and index (the `wacz` package), for ReplayWeb.page/pywb;
- claims.csv and claims.jsonl; screenshots/ (each page rendered by headless
  Chromium from the captured bytes, network cut off); report.html and
  report.pdf.

Pages crawled before capture existed have no WARC records: theirs are
rebuilt from the stored snapshot (the exact body read), and say so.
The zip is written under a temporary name and moved into place complete.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders

from analysis import __version__
from analysis.display import spreadsheet_safe
from analysis.evidence.warc import (
    CaptureError, CapturedResponse, Sha256WARCWriter, http_reason, page_capture, read_capture, sent_sha256,
)
from analysis.store.database import Store, StoreError
from analysis.store.queries import resolve_site, select_claims

CLAIM_FIELDS = [
    "claim_id", "claim_key", "site", "site_name", "url", "captured_at", "http_status",
    "category", "stance", "severity", "quote", "matched_text", "why", "verdict", "verdict_by",
    "verdict_note", "page_sha256", "warc_record_id", "capture", "crawl_id", "detector_version",
]
SIGNATURE_FILES = ("manifest.json", "manifest.json.sig", "signer.pub", "manifest.json.tsr")
_DROP_HEADERS = {"content-length", "content-encoding", "transfer-encoding"}


class EvidenceError(StoreError):
    pass


@dataclass
class BundlePage:
    id: int
    url: str
    site: str
    site_name: str
    title: str
    crawl_id: int
    sha256: str
    capture: CapturedResponse
    captured: bool  # False: rebuilt from the stored snapshot
    claims: list[dict] = field(default_factory=list)
    resources: list[CapturedResponse] = field(default_factory=list)  # its stylesheets and images
    screenshot: str | None = None
    screenshot_sha256: str | None = None


@dataclass(frozen=True)
class ExportResult:
    path: Path
    claims: int
    pages: int
    rebuilt: int
    signer: str | None
    timestamped: bool
    screenshots: int


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- what to export ------------------------------------------------------------------
def choose_claims(store: Store, *, site=None, claim_ids=(), category=None, stance="promoted",
                  crawl_id=None, verdict=None) -> list[dict]:
    if crawl_id is not None and not store.db.execute("select 1 from crawls where id = ?", [crawl_id]).fetchone():
        raise EvidenceError(f"no crawl {crawl_id} in {store.path}")
    if claim_ids:
        found = {r[0] for r in store.db.execute(
            f"select id from claims where id in ({','.join('?' * len(claim_ids))})", list(claim_ids))}
        missing = [str(i) for i in claim_ids if i not in found]
        if missing:
            raise EvidenceError(f"no claim {', '.join(missing)} in {store.path}")
    domain = resolve_site(store, site) if site else None
    claims = select_claims(store, site=domain, claim_ids=claim_ids, category=category, stance=stance,
                           crawl_id=crawl_id)
    verdicts = {r["claim_key"]: r for r in store.db.query(
        "select claim_key, verdict, note, reviewer from claim_verdicts")}
    for c in claims:
        v = verdicts.get(c["claim_key"]) or {}
        c.update(verdict=v.get("verdict"), verdict_by=v.get("reviewer"), verdict_note=v.get("note"))
    if verdict:
        claims = [c for c in claims if c["verdict"] == verdict]
    if not claims:
        raise EvidenceError("no claims match: nothing to export")
    return claims


# -- the archive -----------------------------------------------------------------------
def _rebuilt(store: Store, page: dict) -> CapturedResponse:
    """A response record made from the stored snapshot, for a page crawled before capture."""
    body = store.snapshot_body(page["sha256"])  # raises if the stored copy was altered
    stored = json.loads(page["headers"] or "{}")
    headers = [(k.title(), v) for k, v in stored.items() if k.lower() not in _DROP_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    status = page["status"] or 200
    reason = http_reason(status)
    out = io.BytesIO()
    writer = Sha256WARCWriter(out, gzip=True, warc_version="1.1")
    date = page["fetched_at"]
    record = writer.create_warc_record(
        page["final_url"] or page["url"], "response", payload=io.BytesIO(body), length=len(body),
        http_headers=StatusAndHeaders(f"{status} {reason}".strip(), headers, protocol="HTTP/1.1"),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(record)
    return CapturedResponse(url=page["final_url"] or page["url"],
                            record_id=record.rec_headers.get_header("WARC-Record-ID"), date=date,
                            ip_address=None, status=status, headers=headers, content=body,
                            payload_digest=record.rec_headers.get_header("WARC-Payload-Digest"),
                            records=out.getvalue())


def page_resources(store: Store, page: dict) -> list[CapturedResponse]:
    """The captured stylesheets and images of a page (crawled with --page-resources)."""
    urls = json.loads(page.get("resources") or "[]")
    if not urls or "page_resources" not in store.db.table_names():
        return []
    folder = store.warc_dir(page["crawl_id"])
    found = []
    for row in store.db.query(
            f"select * from page_resources where crawl_id = ? and url in ({','.join('?' * len(urls))})",
            [page["crawl_id"], *urls]):
        try:
            found.append(read_capture(folder / row["warc_file"], row["warc_offset"], row["warc_length"]))
        except CaptureError as e:
            raise EvidenceError(f"page {page['id']} ({page['url']}): its resource {row['url']}: {e}") from e
    return found


def gather_pages(store: Store, claims: list[dict]) -> list[BundlePage]:
    pages: dict[int, BundlePage] = {}
    for claim in claims:
        page = pages.get(claim["page_id"])
        if page is None:
            row = next(iter(store.db.query("select * from pages where id = ?", [claim["page_id"]])))
            try:
                capture = page_capture(store, row)
            except CaptureError as e:
                raise EvidenceError(f"page {row['id']} ({row['url']}): {e}") from e
            captured = capture is not None
            if capture is None:
                capture = _rebuilt(store, row)
            elif hashlib.sha256(capture.content).hexdigest() != sent_sha256(row):
                raise EvidenceError(f"page {row['id']} ({row['url']}): the stored page is not the captured one")
            resources = page_resources(store, row) if captured else []
            page = pages[row["id"]] = BundlePage(
                id=row["id"], url=row["url"], site=row["site"], site_name=claim.get("site_name") or row["site"],
                title=row["title"] or "", crawl_id=row["crawl_id"], sha256=row["sha256"], capture=capture,
                captured=captured, resources=resources)
        page.claims.append(claim)
    return list(pages.values())


def write_warc(pages: list[BundlePage], path: Path) -> None:
    with open(path, "wb") as out:
        writer = Sha256WARCWriter(out, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {
            "software": f"stemwatch {__version__}",
            "format": "WARC File Format 1.1",
            "description": "Pages holding flagged stem-cell marketing claims, as captured when fetched.",
        }))
        written = set()
        for page in pages:
            for capture in [page.capture, *page.resources]:
                if capture.record_id not in written:  # a stylesheet shared by pages goes in once
                    written.add(capture.record_id)
                    out.write(capture.records)  # the crawl's own gzip members, unchanged


def write_wacz(pages: list[BundlePage], warc: Path, out: Path, title: str) -> None:
    from wacz.main import main as wacz_main

    listing = warc.with_name("pages.jsonl")
    lines = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "Cited pages"})]
    lines += [json.dumps({"url": p.capture.url, "ts": p.capture.date, "title": p.title or p.url}) for p in pages]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()) as said:
        code = wacz_main(["create", str(warc), "-o", str(out), "-p", str(listing), "--hash-type", "sha256",
                          "--title", title, "--desc", "stemwatch evidence bundle"])
    if code not in (0, None):
        raise EvidenceError(f"the WACZ could not be made: {said.getvalue().strip()[-300:]}")


# -- the readable parts ---------------------------------------------------------------
def claim_rows(pages: list[BundlePage]) -> list[dict]:
    rows = []
    for page in pages:
        for c in page.claims:
            rows.append({
                "claim_id": c["id"], "claim_key": c["claim_key"], "site": c["site"], "site_name": page.site_name,
                "url": c["url"], "captured_at": page.capture.date, "http_status": page.capture.status,
                "category": c["category"], "stance": c["stance"], "severity": c["severity"],
                "quote": c["sentence"], "matched_text": c["text"], "why": c["why"],
                "verdict": c["verdict"], "verdict_by": c["verdict_by"], "verdict_note": c["verdict_note"],
                "page_sha256": page.sha256, "warc_record_id": page.capture.record_id,
                "capture": "at fetch time" if page.captured else "rebuilt from the stored page",
                "crawl_id": c["crawl_id"], "detector_version": c["detector_version"],
            })
    return rows


def render_screenshots(renderer, pages: list[BundlePage], folder: Path) -> None:
    from analysis.evidence.render import Capture

    folder.mkdir()
    for i, page in enumerate(pages, 1):
        # a page rendered in Chromium is shown as rendered (its conversion record), scripts off as always
        captures = {c.url: Capture(url=c.url, status=c.status, headers=c.headers,
                                   body=c.content if c.rendered is None else c.rendered)
                    for c in [*page.resources, page.capture]}
        shot = renderer.screenshot(page.capture.url, captures, folder / f"page-{i}.png")
        page.screenshot = f"screenshots/page-{i}.png"
        page.screenshot_sha256 = shot.sha256


def crawl_facts(store: Store, ids: list[int]) -> list[dict]:
    rows = []
    for crawl in store.db.query(
            f"select * from crawls where id in ({','.join('?' * len(ids))}) order by id", ids):
        settings = json.loads(crawl["settings"] or "{}")
        rows.append({"id": crawl["id"], "started_at": crawl["started_at"], "finished_at": crawl["finished_at"],
                     "status": crawl["status"], "user_agent": settings.get("USER_AGENT") or "",
                     "robots_obeyed": settings.get("ROBOTSTXT_OBEY", True) not in (False, "False", "0"),
                     "download_delay": settings.get("DOWNLOAD_DELAY"),
                     "page_cap": settings.get("STEMWATCH_MAX_PAGES_PER_SITE"),
                     "contact": settings.get("STEMWATCH_CONTACT")})
    return rows


def report_html(pages: list[BundlePage], crawls: list[dict], manifest: dict, signer: str | None) -> str:
    from analysis.detect.taxonomy import load_taxonomy
    from analysis.evidence.report import ReportClaim, ReportCover, ReportCrawl, ReportPage, build_report, warc_digest

    taxonomy = load_taxonomy()
    label = lambda cat: taxonomy.categories[cat].name if cat in taxonomy.categories else cat  # noqa: E731
    report_pages = [
        ReportPage(
            url=p.url, site_name=p.site_name, title=p.title, captured_at=p.capture.date,
            http_status=p.capture.status, page_sha256=p.sha256, warc_record_id=p.capture.record_id,
            warc_payload_digest=p.capture.payload_digest or warc_digest(p.sha256),
            content_encoding=p.capture.content_encoding,
            screenshot=p.screenshot, screenshot_sha256=p.screenshot_sha256,
            claims=[ReportClaim(
                claim_id=c["id"], category=c["category"], category_label=label(c["category"]), why=c["why"] or "",
                stance=c["stance"], severity=c["severity"], quote=c["sentence"], matched_text=c["text"],
                verdict=c["verdict"], verdict_by=c["verdict_by"], verdict_note=c["verdict_note"],
                captured_at=p.capture.date, url=p.url) for c in p.claims])
        for p in pages
    ]
    cover = ReportCover(
        exported_at=manifest["exported_at"], operator=manifest["operator"] or "", contact=manifest["contact"] or "",
        tool_version=__version__, detector_version=", ".join(manifest["detector_versions"]),
        crawls=[ReportCrawl(id=c["id"], started_at=c["started_at"], finished_at=c["finished_at"],
                            user_agent=c["user_agent"], robots_obeyed=c["robots_obeyed"],
                            politeness=f"{c['download_delay']} s between requests to a site, AutoThrottle"
                            if c["download_delay"] is not None else "", page_cap=c["page_cap"])
                for c in crawls],
        selection=manifest["selection"], signer_fingerprint=signer)
    return build_report(cover, report_pages)


# -- the bundle --------------------------------------------------------------------------
def describe_selection(site, claim_ids, category, stance, crawl_id, verdict) -> str:
    """In words, for the report's cover: chosen claims name no stance and no default crawl."""
    latest = "" if claim_ids else "each site's latest crawl"
    parts = [f"site {site}" if site else "", f"claims {', '.join(map(str, claim_ids))}" if claim_ids else "",
             f"category {category}" if category else "", f"{stance} claims" if stance and not claim_ids else "",
             f"crawl {crawl_id}" if crawl_id else latest, f"verdict {verdict}" if verdict else ""]
    return ", ".join(p for p in parts if p)


def export_bundle(store: Store, out: str | Path, *, site=None, claim_ids=(), category=None, stance="promoted",
                  crawl_id=None, verdict=None, force=False, key=None, tsa_url=None, operator=None,
                  contact=None, renderer=None) -> ExportResult:
    """Write the bundle at `out` (a .zip). `key` (analysis.evidence.signing.SigningKey) signs
    it; `renderer` (analysis.evidence.render.Renderer, open) makes screenshots and the PDF,
    None leaves both out."""
    out = Path(out)
    if out.exists() and not force:
        raise EvidenceError(f"{out} exists: choose another name, or --force to replace it")
    if not out.parent.is_dir():
        raise EvidenceError(f"cannot write {out}: the folder {out.parent} does not exist")
    claims = choose_claims(store, site=site, claim_ids=claim_ids, category=category, stance=stance,
                           crawl_id=crawl_id, verdict=verdict)
    pages = gather_pages(store, claims)
    crawls = crawl_facts(store, sorted({p.crawl_id for p in pages}))
    with tempfile.TemporaryDirectory(prefix=".stemwatch-export-", dir=out.parent) as tmp:
        work = Path(tmp)
        warc = work / "evidence.warc.gz"
        write_warc(pages, warc)
        write_wacz(pages, warc, work / "evidence.wacz", f"stemwatch evidence: {describe_selection(site, claim_ids, category, stance, crawl_id, verdict)}")
        rows = claim_rows(pages)
        with open(work / "claims.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CLAIM_FIELDS)
            writer.writeheader()
            writer.writerows({k: spreadsheet_safe(v) for k, v in r.items()} for r in rows)
        (work / "claims.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                           encoding="utf-8")
        if renderer is not None:
            render_screenshots(renderer, pages, work / "screenshots")
        files = ["evidence.wacz", "claims.csv", "claims.jsonl"]
        files += [p.screenshot for p in pages if p.screenshot]
        manifest = {
            "format": "stemwatch-evidence-1",
            "tool": f"stemwatch {__version__}",
            "exported_at": utc_now(),
            "operator": operator or os.environ.get("STEMWATCH_OPERATOR") or "",
            "contact": contact or next((c["contact"] for c in crawls if c["contact"]), ""),
            "selection": describe_selection(site, claim_ids, category, stance, crawl_id, verdict),
            "detector_versions": sorted({c["detector_version"] or "" for c in claims}),
            "crawls": crawls,
            "pages": [{"page_id": p.id, "url": p.url, "captured_url": p.capture.url, "captured_at": p.capture.date,
                       "ip_address": p.capture.ip_address, "http_status": p.capture.status, "sha256": p.sha256,
                       "warc_record_id": p.capture.record_id,
                       "capture": "at fetch time" if p.captured else "rebuilt from the stored page",
                       "screenshot": p.screenshot} for p in pages],
            "claims": [{"claim_id": r["claim_id"], "claim_key": r["claim_key"], "category": r["category"],
                        "stance": r["stance"], "url": r["url"], "quote": r["quote"], "page_sha256": r["page_sha256"],
                        "verdict": r["verdict"]} for r in rows],
            "signer": key.fingerprint if key is not None else None,
        }
        html = report_html(pages, crawls, manifest, key.fingerprint if key is not None else None)
        (work / "report.html").write_text(html, encoding="utf-8")
        files.append("report.html")
        if renderer is not None:
            renderer.pdf(html, work / "report.pdf", base_dir=work)
            files.append("report.pdf")
        manifest["files"] = [{"name": name, "sha256": sha256_file(work / name), "size": (work / name).stat().st_size}
                             for name in files]
        manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
        extra = {"manifest.json": manifest_bytes}
        if key is not None:
            from analysis.evidence.signing import sign

            extra["manifest.json.sig"] = base64.b64encode(sign(manifest_bytes, key)) + b"\n"
            extra["signer.pub"] = key.public_pem
        if tsa_url:
            from analysis.evidence.timestamp import TimestampError, request_timestamp

            try:
                extra["manifest.json.tsr"] = request_timestamp(manifest_bytes, tsa_url)
            except TimestampError as e:
                raise EvidenceError(str(e)) from e
        part = work / "bundle.zip"
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in extra.items():
                z.writestr(name, data)
            for name in files:
                # the WACZ is a zip already, and PNG and PDF are compressed
                z.write(work / name, name, compress_type=zipfile.ZIP_STORED
                        if name.endswith((".wacz", ".png", ".pdf")) else zipfile.ZIP_DEFLATED)
        os.replace(part, out)  # complete, or not there at all
    return ExportResult(path=out, claims=len(rows), pages=len(pages), rebuilt=sum(not p.captured for p in pages),
                        signer=key.fingerprint if key is not None else None, timestamped=bool(tsa_url),
                        screenshots=sum(1 for p in pages if p.screenshot))
