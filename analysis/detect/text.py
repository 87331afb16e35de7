"""Text helpers of the detector: page text normalised for tokenising, URL paths.

Pure functions; every substitution keeps the length, so an offset in the
normalised text is the same offset in the page text a claim points at.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Same-length substitutions, so offsets in the normalised text are offsets in the original.
NORMALIZE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                           "\u2013": "-", "\u2014": "-", "\u00a0": " ", "\u2010": "-", "\u2011": "-"})
# str.translate with a table calls back per character (100 us on a 2,000-character page
# holding one bullet or copyright sign); str.replace per character to replace runs in C.
_REPLACEMENTS = tuple((chr(k), v) for k, v in NORMALIZE.items())


# spaCy's tokenizer strips punctuation and symbols off a word one at a time, re-reading the
# rest each time: a run of them without a space ("!!!!...", a row of emoji) takes time
# quadratic in its length (16,000 "!" took 22 s, explosion/spaCy#1768). Such runs are
# broken with a space every AFFIX_RUN characters before tokenising.
AFFIX_RUN = 32
_AFFIX_RUN_RE = re.compile(r"[^\w\s]{%d,}" % (2 * AFFIX_RUN))
# bytes of UTF-8 text: 1 for word characters and whitespace, 0 for the rest (ASCII
# punctuation and every non-ASCII byte); a cheap test that no long run can be present
_KEEP = frozenset(b"0123456789_ \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
                  b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_RUN_BYTES = bytes(1 if b in _KEEP else 0 for b in range(256))
_RUN_MARK = b"\x00" * (2 * AFFIX_RUN)


def _break_run(m: re.Match) -> str:
    chars = list(m.group())
    spaces = range(AFFIX_RUN - 1, len(chars), AFFIX_RUN)
    chars[AFFIX_RUN - 1::AFFIX_RUN] = " " * len(spaces)
    return "".join(chars)


def normalize(text: str) -> str:
    """Same-length substitutions, so that offsets in the result are offsets in ``text``:
    typographic quotes and dashes to ASCII, and long runs of punctuation broken by spaces."""
    # every character replaced is non-ASCII: an ASCII text (the usual page) is its own result
    if not text.isascii():
        for char, replacement in _REPLACEMENTS:
            if char in text:
                text = text.replace(char, replacement)
    if text.encode("utf-8", "surrogatepass").translate(_RUN_BYTES).find(_RUN_MARK) >= 0:
        text = _AFFIX_RUN_RE.sub(_break_run, text)
    return text


def url_path(url: str) -> str:
    """``urlsplit(url).path``, without urlsplit for a plain ASCII http(s) URL with no
    query, fragment, brackets, spaces or control characters (a crawl's usual URL)."""
    if url.startswith(("http://", "https://")) and url.isascii() and url.isprintable() \
            and not any(ch in url for ch in " ?#[]"):
        rest = url[url.index("//") + 2:]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else ""
    return urlsplit(url).path


def match_span(sentence: str, text: str) -> tuple[int, int] | None:
    """Where a claim's matched words stand in its sentence, ignoring case; None if absent.
    The one rule for highlighting, in Datasette and in evidence reports alike."""
    if not sentence or not text:
        return None
    i = sentence.lower().find(text.lower())
    return (i, i + len(text)) if i >= 0 else None
