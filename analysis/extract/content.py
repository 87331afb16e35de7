"""Turning a response body into text: charset, kind sniffing, extraction.

Pure functions over bytes and header values, so they are tested without a
crawl. The spider calls `read_body` for every response it keeps.
"""

from __future__ import annotations

import re

from analysis.extract.charset import decode_body
from analysis.extract.sniff import is_binary
from analysis.extract import extract_html, extract_pdf, extract_text
from analysis.models import ExtractedPage

_HTML_SNIFF = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|div|p)\b", re.I | re.S)


class ContentError(Exception):
    """A body that cannot be read as the page it claims to be."""


def media_type(content_type: str | bytes | None) -> str:
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return (content_type or "").split(";", 1)[0].strip().lower()


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
    if is_binary(body, mtype):
        raise ContentError(f"binary content served as {mtype or 'unknown type'}")
    if mtype == "text/plain" and not _HTML_SNIFF.match(body[:1024]):
        text, _ = decode_body(body, content_type, html=False)
        return extract_text(text), "text"
    text, _ = decode_body(body, content_type)
    return extract_html(text, url), "html"
