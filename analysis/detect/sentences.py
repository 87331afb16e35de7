"""Newline-aware sentence splitting on the page text, mapped to spaCy tokens.

A sentence ends at a newline (a heading line and each list item are sentences
of their own), or at . ! ? (plus closing quotes and brackets) followed by a
space or tab and anything but a lower-case letter; not after a few
abbreviations ("e.g.", "Dr.").
"""

from __future__ import annotations

import re
from itertools import accumulate
from operator import sub

import numpy
from spacy.attrs import IDX, SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from analysis.detect.pattern_files import load_markers

CLOSING = ".!?\"')]\u201d\u2019"
ABBREVIATIONS = load_markers()["abbreviations"]  # patterns/markers.json
# No sentence is longer: a longer stretch without an ender is cut after a clause mark
# or at a space. Real sentences stay far below (about 170 words).
MAX_SENTENCE_CHARS = 1000
_NOT_START = numpy.iinfo(numpy.uint64).max  # -1 as spaCy stores it: "not a sentence start"


def _lower_case_class() -> str:
    """Every lower-case character of the Basic Multilingual Plane as regex ranges
    (``str.islower``; Python's re has no Unicode categories)."""
    ranges, first, last = [], None, None
    for cp in range(0x10000):
        if chr(cp).islower():
            if first is not None and cp == last + 1:
                last = cp
                continue
            if first is not None:
                ranges.append((first, last))
            first = last = cp
    ranges.append((first, last))
    return "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in ranges)


def _not_abbreviation() -> str:
    """Lookbehinds refusing a dot that ends an abbreviation, one per abbreviation length
    (a lookbehind's alternatives must share a width), ASCII case-insensitive."""
    by_width: dict[int, list[str]] = {}
    for a in ABBREVIATIONS:
        by_width.setdefault(len(a), []).append(re.escape(a))
    return "(?ai:" + "".join(f"(?<!{'|'.join(v)})" for v in by_width.values()) + ")"


_CLOSER = "[" + re.escape("".join(sorted(CLOSING))) + "]"
# After the ender: closing quotes and brackets, blanks, then a character that is neither
# blank nor lower case (the sentence's first).
_TAIL = _CLOSER + "*[ \t]+(?=[^ \t])(?![" + _lower_case_class() + "])"
# One pattern per ender, the whole match captured so that re.split returns the pieces and
# the separators, whose lengths add up to the cut offsets (no Python loop per sentence).
# A dot right after a dot and up to two closers ("..", ".'.") is part of the first
# one's run, and so is never a sentence end of its own.
_ENDS = {
    ".": re.compile("(\\." + _not_abbreviation() + "(?<!\\.\\.)(?<!\\." + _CLOSER + "\\.)(?<!\\." + _CLOSER * 2
                    + "\\.)" + _TAIL + ")"),
    "!": re.compile("(!" + _TAIL + ")"),
    "?": re.compile("(\\?" + _TAIL + ")"),
}


def sentence_cuts(text: str, lo: int = 0, hi: int | None = None) -> list[int]:
    """Character offsets where sentences start (besides lo), within text[lo:hi] taken as
    a text of its own (callers pass line starts), sorted.

    re.split with one regex per ender and the offsets summed in C: a Python loop over
    the sentence ends cost three times as much (measured in instructions).
    """
    n = len(text) if hi is None else hi
    seg = text[lo:n] if lo or n < len(text) else text
    find = seg.find
    cuts = []
    i = find("\n")
    while i >= 0:
        cuts.append(i + 1)
        i = find("\n", i + 1)
    for ch, rx in _ENDS.items():
        if ch in seg:
            parts = rx.split(seg)
            if len(parts) > 1:
                cuts += list(accumulate(map(len, parts)))[1::2]
    cuts.sort()
    # the longest stretch between cuts, found in C: most pages have none too long
    if len(seg) > MAX_SENTENCE_CHARS and max(map(sub, cuts + [len(seg)], [0] + cuts)) > MAX_SENTENCE_CHARS:
        cuts = _cut_long(seg, cuts)
    return [c + lo for c in cuts] if lo else cuts


def _cut_long(seg: str, cuts: list[int]) -> list[int]:
    """Extra cuts inside stretches longer than MAX_SENTENCE_CHARS, after the last clause
    mark (, ; :) before each limit, else at the last space: text with no sentence ends (a
    scraped menu, a hostile page) would otherwise make one huge sentence, and work per
    claim grows with its sentence."""
    out, start = [], 0
    for end in cuts + [len(seg)]:
        while end - start > MAX_SENTENCE_CHARS:
            limit = start + MAX_SENTENCE_CHARS
            cut = max(seg.rfind(", ", start + 1, limit), seg.rfind("; ", start + 1, limit),
                      seg.rfind(": ", start + 1, limit))
            if cut > start:
                start = cut + 2  # after the mark and its space
            else:
                cut = seg.rfind(" ", start + 1, limit)
                start = cut + 1 if cut > start else limit  # no space: cut the "word"
            out.append(start)
        if end < len(seg):
            out.append(end)
        start = end
    return out


def token_starts(idx, cuts: list[int], n_tokens: int) -> list[int]:
    """Sentence-start token indices for character cuts: 0, then the first token at or
    after each cut (``idx``: the tokens' character offsets, ``doc.to_array(IDX)``).

    The cuts go in as an array of idx's own dtype (uint64): a list of Python ints
    would make numpy cast all of idx to float64 first, three times the cost."""
    found = idx.searchsorted(numpy.array(cuts, dtype=idx.dtype)).tolist()
    return [0] + sorted({t for t in found if 0 < t < n_tokens})


def doc_text(doc: Doc) -> str:
    """The doc's text, from its context when the caller put it there.

    ``Doc.text`` rebuilds the string token by token, which costs more than
    tokenising; the Detector passes the text along in ``doc._context``.
    """
    ctx = doc._context
    if isinstance(ctx, dict):
        text = ctx.get("text")
        if text is None:
            text = ctx["text"] = doc.text
        return text
    return doc.text


def sentence_starts(doc: Doc, text: str | None = None) -> list[int]:
    """Token indices where the doc's sentences start."""
    return token_starts(doc.to_array(IDX), sentence_cuts(doc_text(doc) if text is None else text), len(doc))


def set_sentences(doc: Doc, starts: list[int]) -> None:
    """Write sentence starts to the doc in one call (token.is_sent_start re-scans the doc per token)."""
    flags = numpy.full((len(doc), 1), _NOT_START, dtype="uint64")
    flags[starts, 0] = 1
    doc.from_array([SENT_START], flags)


@Language.factory("stemwatch_sentences")
def make_sentence_splitter(nlp: Language, name: str):
    """Newline-aware sentence splitting as a component, for pipelines that want every doc
    segmented; the detector's own pipeline segments only pages with candidates."""
    return split_sentences


def split_sentences(doc: Doc) -> Doc:
    if len(doc):
        set_sentences(doc, sentence_starts(doc))
    return doc
