"""Turning a response body into text: charset, kind sniffing, extraction.

Pure functions over bytes and header values, so they are tested without a
crawl. The spider calls `read_body` for every response it keeps.
"""

from __future__ import annotations

import re

from analysis.extract.charset import decode_body
from analysis.extract import extract_html, extract_pdf, extract_text
from analysis.models import ExtractedPage

HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_SNIFF = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|div|p)\b", re.I | re.S)
_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or b > 13)


class ContentError(Exception):
    """A body that cannot be read as the page it claims to be."""


def media_type(content_type: str | bytes | None) -> str:
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return (content_type or "").split(";", 1)[0].strip().lower()


def looks_binary(body: bytes) -> bool:
    """Binary (an image, an archive) rather than text, from its first bytes."""
    head = body[:2048]
    if not head:
        return False
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 BOM: text
        return False
    if b"\x00" in head:
        return True
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return control > len(head) * 0.05


def read_body(body: bytes, content_type: str, url: str) -> tuple[ExtractedPage, str]:
    """Extract a page; returns (page, kind) where kind is html, pdf or text.

    Raises ContentError for a body that is not what it says (binary served
    as text/html) or that the extractor cannot read.
    """
    mtype = media_type(content_type)
    if mtype == "application/pdf" or body[:5] == b"%PDF-":
        try:
            return extract_pdf(body), "pdf"
        except Exception as e:  # pypdf raises many kinds on damaged files
            raise ContentError(f"unreadable PDF: {type(e).__name__}: {e}"[:300]) from e
    if looks_binary(body):
        raise ContentError(f"binary content served as {mtype or 'unknown type'}")
    if mtype == "text/plain" and not _HTML_SNIFF.match(body[:1024]):
        text, _ = decode_body(body, content_type, html=False)
        return extract_text(text), "text"
    text, _ = decode_body(body, content_type)
    return extract_html(text, url), "html"
