"""Evidence bundles for complaints to the FDA, the FTC or a medical board.

A bundle is a folder with:
- evidence.warc.gz: the archived pages, rebuilt from the stored snapshots
  (the exact bytes fetched), one WARC response record per capture, with a
  SHA-256 payload digest;
- claims.csv and claims.jsonl: each claim with its quote, URL, capture time
  and the page's SHA-256;
- report.html: the same for a person to read, the claim highlighted;
- SHA256SUMS: hashes of the files above (`sha256sum -c SHA256SUMS`).

Stored headers are a subset of the original ones and the body is stored
decoded (after gzip), so each record carries the original status, content
type and date, and the payload is byte for byte what the crawler received.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from analysis import __version__
from analysis.detect.text import match_span
from analysis.display import spreadsheet_safe, visible
from analysis.store.database import Store, StoreError
from analysis.store.queries import select_claims

CLAIM_FIELDS = [
    "claim_id", "claim_key", "site", "site_name", "url", "captured_at", "http_status",
    "category", "stance", "severity", "quote", "matched_text", "why", "page_sha256",
    "warc_record_id", "crawl_id", "detector_version",
]
_DROP_HEADERS = {"content-length", "content-encoding", "transfer-encoding"}


class EvidenceError(StoreError):
    pass


def _warc_date(fetched_at: str) -> str:
    return datetime.fromisoformat(fetched_at.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256_label(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def write_warc(store: Store, claims: list[dict], path: Path) -> dict[str, str]:
    """One response record per captured page; returns WARC-Record-ID by page sha256+url."""
    record_ids: dict[str, str] = {}
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(path.name, {
            "software": f"stemwatch {__version__}",
            "format": "WARC File Format 1.1",
            "description": "Pages holding flagged stem-cell marketing claims, rebuilt from stored snapshots.",
        })
        writer.write_record(info)
        seen = set()
        for claim in claims:
            key = (claim["url"], claim["page_sha256"], claim["fetched_at"])
            if key in seen:
                continue
            seen.add(key)
            body = store.snapshot_body(claim["page_sha256"])  # raises if the snapshot was altered
            stored = json.loads(claim["headers"] or "{}")
            headers = [(k.title(), v) for k, v in stored.items() if k.lower() not in _DROP_HEADERS]
            headers.append(("Content-Length", str(len(body))))
            status = claim["http_status"] or 200
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
            http_headers = StatusAndHeaders(f"{status} {reason}".strip(), headers, protocol="HTTP/1.1")
            record = writer.create_warc_record(
                claim["url"], "response", payload=io.BytesIO(body), length=len(body),
                http_headers=http_headers,
                warc_headers_dict={
                    "WARC-Date": _warc_date(claim["fetched_at"]),
                    "WARC-Payload-Digest": _sha256_label(body),
                },
            )
            writer.write_record(record)
            record_ids["|".join(key)] = record.rec_headers.get_header("WARC-Record-ID")
    return record_ids


def _rows(claims: list[dict], record_ids: dict[str, str]) -> list[dict]:
    return [
        {
            "claim_id": c["id"], "claim_key": c["claim_key"], "site": c["site"], "site_name": c["site_name"],
            "url": c["url"], "captured_at": c["fetched_at"], "http_status": c["http_status"],
            "category": c["category"], "stance": c["stance"], "severity": c["severity"],
            "quote": c["sentence"], "matched_text": c["text"], "why": c["why"],
            "page_sha256": c["page_sha256"],
            "warc_record_id": record_ids["|".join((c["url"], c["page_sha256"], c["fetched_at"]))],
            "crawl_id": c["crawl_id"], "detector_version": c["detector_version"],
        }
        for c in claims
    ]


def _report_html(rows: list[dict]) -> str:
    items = []
    for r in rows:
        raw = visible(r["quote"] or "")  # bidi overrides and control characters shown, not obeyed
        span = match_span(raw, visible(r["matched_text"] or ""))
        quote = html.escape(raw) if span is None else (
            f"{html.escape(raw[:span[0]])}<mark>{html.escape(raw[span[0]:span[1]])}</mark>{html.escape(raw[span[1]:])}")
        items.append(
            f"<article><h2>{html.escape(r['category'])} ({html.escape(r['stance'])}, {html.escape(r['severity'] or '')})</h2>"
            f"<blockquote>{quote}</blockquote>"
            f"<dl><dt>Page</dt><dd><a href=\"{html.escape(r['url'])}\">{html.escape(r['url'])}</a></dd>"
            f"<dt>Site</dt><dd>{html.escape(r['site_name'] or r['site'])}</dd>"
            f"<dt>Captured</dt><dd>{html.escape(r['captured_at'])} (UTC), HTTP {r['http_status']}</dd>"
            f"<dt>Why it misleads</dt><dd>{html.escape(r['why'] or '')}</dd>"
            f"<dt>SHA-256 of the page as fetched</dt><dd><code>{r['page_sha256']}</code></dd>"
            f"<dt>Archived copy</dt><dd>evidence.warc.gz, record <code>{html.escape(r['warc_record_id'])}</code></dd>"
            f"</dl></article>"
        )
    return (
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>stemwatch evidence</title>"
        "<style>body{font:16px/1.5 sans-serif;max-width:52em;margin:2em auto}mark{background:#ffe066}"
        "blockquote{border-left:4px solid #999;margin:0;padding-left:1em}dt{font-weight:bold}</style>"
        f"<h1>Flagged claims: {len(rows)}</h1>"
        "<p>Each quote was captured by stemwatch from the page shown. The archived page is in "
        "evidence.warc.gz; its SHA-256 is listed with each claim, and SHA256SUMS lists the hash of "
        "every file in this folder.</p>" + "".join(items) + "</html>"
    )


def export_evidence(store: Store, out_dir: str | Path, **selection) -> dict:
    """Write an evidence bundle; returns what was written."""
    out = Path(out_dir)
    claims = select_claims(store, **selection)
    if not claims:
        raise EvidenceError("no claims match: nothing to export")
    out.mkdir(parents=True, exist_ok=True)
    record_ids = write_warc(store, claims, out / "evidence.warc.gz")
    rows = _rows(claims, record_ids)
    with open(out / "claims.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CLAIM_FIELDS)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in r.items()} for r in rows)
    (out / "claims.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out / "report.html").write_text(_report_html(rows), encoding="utf-8")
    files = ["evidence.warc.gz", "claims.csv", "claims.jsonl", "report.html"]
    sums = "".join(f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n" for name in files)
    (out / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return {"claims": len(rows), "pages": len(record_ids), "files": files + ["SHA256SUMS"], "dir": str(out)}
