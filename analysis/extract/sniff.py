"""Is a body binary? Decided as browsers decide it (the WHATWG MIME Sniffing Standard).

A page served as HTML is rendered as HTML whatever stray bytes it holds: a NUL in a
comment hides nothing from a reader, so it must hide nothing from the detector.
Only a body that opens with the signature of an image, a sound, a video, a font or
an archive (a file the server mislabelled) is binary whatever its label; a body
served as plain text, or with no usable type, is binary when its first 1,445 bytes
hold a "binary data byte" (the standard's test for text versus binary).
"""

from __future__ import annotations

HTML_TYPES = ("text/html", "application/xhtml+xml")
RESOURCE_HEADER = 1445  # bytes the standard reads
# Exact signatures of the standard's image, audio/video, font and archive tables.
_SIGNATURES = (
    b"\x00\x00\x01\x00", b"\x00\x00\x02\x00", b"BM", b"GIF87a", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
    b"\x1a\x45\xdf\xa3", b".snd", b"ID3", b"OggS\x00", b"MThd\x00\x00\x00\x06", b"fLaC",
    b"\x00\x01\x00\x00", b"OTTO", b"ttcf", b"wOFF", b"wOF2",
    b"\x1f\x8b\x08", b"PK\x03\x04", b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00", b"\x00asm", b"7z\xbc\xaf\x27\x1c",
)
_RIFF_KINDS = (b"WEBPVP", b"WAVE", b"AVI ")  # "RIFF" + 4 bytes of size + one of these
_BINARY_DATA_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\xef\xbb\xbf")
_UNKNOWN = ("", "unknown/unknown", "application/unknown", "*/*", "application/octet-stream")


def binary_signature(head: bytes) -> bool:
    """Whether the body opens as an image, a sound, a video, a font or an archive."""
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:].startswith(_RIFF_KINDS):
        return True
    if len(head) >= 12 and head[4:8] == b"ftyp":  # MP4 and its kin
        return True
    return False


def has_binary_data_bytes(head: bytes) -> bool:
    return not head.startswith(_BOMS) and not _BINARY_DATA_BYTES.isdisjoint(head[:RESOURCE_HEADER])


def is_binary(body: bytes, media_type: str = "") -> bool:
    """Binary rather than the text or HTML page it is served as (see the module docstring)."""
    head = body[:RESOURCE_HEADER]
    if not head:
        return False
    if binary_signature(head):
        return True
    if media_type in HTML_TYPES:
        return False
    if media_type == "text/plain" or media_type in _UNKNOWN:
        return has_binary_data_bytes(head)
    return False
