"""`stemwatch verify BUNDLE.zip`: is this bundle what its signer exported?

Checks, each failure naming the file: the manifest's signature (and whose
key made it, against a list of trusted signers if one is given); the
timestamp token if there is one; that every file the manifest lists is
there with its size and SHA-256, and nothing else is; that the WACZ is
valid by the `wacz` package's own validation; and that every claim's quote
is in the text of its page as captured in the archive.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from analysis.evidence.bundle import SIGNATURE_FILES


@dataclass
class BundleReport:
    path: Path
    signer: str | None = None
    timestamp: str | None = None
    files_checked: int = 0
    quotes_checked: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, name: str, problem: str) -> None:
        self.failures.append((name, problem))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().casefold()


def quote_in(quote: str, squashed_text: str) -> bool:
    """Whether a claim's quote is in a page's text. A quote may join a list's
    introduction and its item, or a heading and its sentence, with " … ": each
    part must be on the page."""
    parts = [_squash(p) for p in (quote or "").split("…")]
    parts = [p for p in parts if p]
    return bool(parts) and all(p in squashed_text for p in parts)


def _signature(z: zipfile.ZipFile, manifest: bytes, report: BundleReport, trusted):
    from analysis.evidence.signing import SigningError, check_signer, verify_signature

    names = set(z.namelist())
    if "manifest.json.sig" not in names or "signer.pub" not in names:
        report.fail("manifest.json.sig", "the bundle is not signed")
        return
    try:
        signature = base64.b64decode(z.read("manifest.json.sig"), validate=False)
        report.signer = verify_signature(manifest, signature, z.read("signer.pub"))
    except (SigningError, ValueError) as e:
        report.fail("manifest.json.sig", f"the signature does not match manifest.json ({e})")
        return
    if trusted:
        try:
            check_signer(report.signer, trusted)
        except SigningError as e:
            report.fail("signer.pub", str(e))


def _timestamp(z: zipfile.ZipFile, manifest: bytes, report: BundleReport, tsa_certificate: bytes | None):
    from analysis.evidence.timestamp import TimestampError, read_timestamp

    if "manifest.json.tsr" not in z.namelist():
        return
    try:
        stamp = read_timestamp(z.read("manifest.json.tsr"), manifest, tsa_certificate=tsa_certificate)
        report.timestamp = stamp.time.isoformat()
    except TimestampError as e:
        report.fail("manifest.json.tsr", str(e))


def _captured_texts(wacz_path: Path) -> dict[str, str]:
    """Page text by captured URL, read from the WACZ's archive with the crawler's own extractor."""
    from analysis.extract.content import ContentError, read_body

    texts = {}
    with zipfile.ZipFile(wacz_path) as wacz:
        for name in wacz.namelist():
            if not name.startswith("archive/"):
                continue
            with wacz.open(name) as raw:
                for record in ArchiveIterator(raw):
                    # a page rendered in Chromium: its text is in the DOM, the conversion record
                    if record.rec_type not in ("response", "conversion"):
                        continue
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    body = record.content_stream().read()
                    if record.rec_type == "response":
                        ctype = record.http_headers.get_header("Content-Type") or ""
                    else:
                        ctype = record.rec_headers.get_header("Content-Type") or "text/html"
                    try:
                        page, _ = read_body(body, ctype, url)
                    except ContentError:
                        continue
                    text = "\n".join(filter(None, [page.title or "", page.text or ""]))
                    texts[url] = f"{texts[url]}\n{text}" if url in texts else text
    return texts


def verify_bundle(path: str | Path, *, trusted: frozenset[str] | None = None,
                  tsa_certificate: bytes | None = None) -> BundleReport:
    path = Path(path)
    report = BundleReport(path)
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        report.fail(path.name, f"not a readable zip ({e})")
        return report
    with z:
        names = set(z.namelist())
        if "manifest.json" not in names:
            report.fail("manifest.json", "missing")
            return report
        manifest_bytes = z.read("manifest.json")
        _signature(z, manifest_bytes, report, trusted)
        _timestamp(z, manifest_bytes, report, tsa_certificate)
        try:
            manifest = json.loads(manifest_bytes)
            listed = {f["name"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as e:
            report.fail("manifest.json", f"not a stemwatch manifest ({e})")
            return report
        for name in sorted(names - set(listed) - set(SIGNATURE_FILES)):
            report.fail(name, "not listed in the manifest")
        for name, entry in listed.items():
            if name not in names:
                report.fail(name, "listed in the manifest but missing")
                continue
            digest, size = hashlib.sha256(), 0
            with z.open(name) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
            report.files_checked += 1
            if size != entry.get("size") or digest.hexdigest() != entry.get("sha256"):
                report.fail(name, "its SHA-256 or size is not the manifest's: the file was changed")
        if "evidence.wacz" in names and "evidence.wacz" in listed:
            _check_archive(z, manifest, report)
    return report


def _check_archive(z: zipfile.ZipFile, manifest: dict, report: BundleReport) -> None:
    from wacz.main import main as wacz_main

    with tempfile.TemporaryDirectory(prefix="stemwatch-verify-") as tmp:
        wacz_path = Path(tmp) / "evidence.wacz"
        with z.open("evidence.wacz") as src, open(wacz_path, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        with contextlib.redirect_stdout(io.StringIO()) as said:
            try:
                code = wacz_main(["validate", "-f", str(wacz_path)])
            except Exception as e:  # the validator's own failure on a broken file
                code = 1
                print(e)
        if code != 0:
            last = (said.getvalue().strip().splitlines() or [""])[-1]
            report.fail("evidence.wacz", f"not a valid WACZ: {last}" if last else "not a valid WACZ")
            return
        try:
            texts = _captured_texts(wacz_path)
        except Exception as e:
            report.fail("evidence.wacz", f"its archive cannot be read ({e})")
            return
    by_url = {p["url"]: p.get("captured_url") or p["url"] for p in manifest.get("pages", [])}
    squashed = {url: _squash(text) for url, text in texts.items()}
    for claim in manifest.get("claims", []):
        captured = by_url.get(claim["url"], claim["url"])
        report.quotes_checked += 1
        if captured not in squashed:
            report.fail("evidence.wacz", f"claim {claim['claim_id']}: its page {captured} is not in the archive")
        elif not quote_in(claim["quote"], squashed[captured]):
            report.fail("evidence.wacz", f"claim {claim['claim_id']}: the quote is not in its captured page")
