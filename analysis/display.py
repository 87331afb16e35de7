"""Text from web pages, made safe to show: in a terminal, in Datasette, in a report, in
a spreadsheet.

A page's text can hold terminal escape sequences (a hidden hyperlink, a window title),
other control characters, and bidirectional overrides that make "\u202eevorppa ADF" read as
"FDA approve". Shown text keeps its words and makes the rest visible; stored text is
never changed, so evidence stays what the page said.
"""

from __future__ import annotations

import re

# Bidirectional formatting characters, shown as a visible marker with their name.
BIDI = {
    "\u061c": "ALM", "\u200e": "LRM", "\u200f": "RLM", "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF",
    "\u202d": "LRO", "\u202e": "RLO", "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI",
}
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(BIDI) + "]")
# A cell a spreadsheet would run as a formula (OWASP: CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A negative number as Python's csv module writes an int or a float ("-3", "-2.5", "-1e-05").
_NEGATIVE_NUMBER = re.compile(r"-[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?")


def _shown(ch: str) -> str:
    if ch in BIDI:
        return f"[{BIDI[ch]}]"
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ESC becomes "␛"
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"  # a C1 control


def visible(text: str | None) -> str:
    """The text with every control character (but newline and tab) and every
    bidirectional override replaced by a visible stand-in."""
    if not text:
        return text or ""
    return _HIDDEN.sub(lambda m: _shown(m.group()), text)


def has_hidden(text: str) -> bool:
    return bool(_HIDDEN.search(text))


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet shows as text: one that would start a formula gets
    a leading apostrophe (OWASP's rule); other values are returned as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def spreadsheet_safe_text(cell: str) -> str:
    """spreadsheet_safe for a cell read back from CSV text, where a number and the text
    of a number look the same. A negative number is left as it is: a spreadsheet reads
    "-3" as the number -3 and runs nothing, and an apostrophe would turn every negative
    number into text. Anything else that starts a formula ("-2+3" too) gets the apostrophe."""
    if _NEGATIVE_NUMBER.fullmatch(cell):
        return cell
    return spreadsheet_safe(cell)
