"""Bytes to text the way browsers do: BOM, declared charset, UTF-8, detection, Windows-1252.

Shared by the crawler (response bodies) and ``stemwatch scan`` (files on disk), so
that a page reads the same whichever way it arrives.
"""

from __future__ import annotations

from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

# charset_normalizer names of single-byte encodings for Latin scripts.
LATIN_FAMILY = {
    "ascii", "latin_1", "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "iso8859_2", "iso8859_3",
    "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16",
    "mac_roman", "mac_latin2", "mac_iceland", "mac_turkish", "cp850", "cp437",
}


def decode_body(body: bytes, content_type: str = "", html: bool = True) -> tuple[str, str]:
    """(text, encoding): charset from the BOM, the Content-Type header or a
    <meta> tag; else UTF-8 if it decodes, else charset detection, else
    Windows-1252 (what browsers use for undeclared Latin-1 pages)."""
    declared = (
        read_bom(body)[0]
        or http_content_type_encoding(content_type or None)
        or (html_body_declared_encoding(body) if html else None)
    )
    if declared:
        enc, text = html_to_unicode(f"charset={declared}", body)
        return text, enc
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    enc = None
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(body[:65536]).best()
        enc = best.encoding if best else None
    except Exception:  # detection is a best effort
        enc = None
    if enc is None or enc in LATIN_FAMILY:
        # Single-byte Latin guesses are a coin toss between close cousins
        # (cp1250 vs cp1252); Windows-1252 is what undeclared Western pages
        # use and what browsers assume.
        try:
            return body.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    enc = resolve_encoding(enc or "cp1252") or "cp1252"
    return body.decode(enc, errors="replace"), enc
