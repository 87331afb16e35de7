"""Datasette's CSV, neutralised for spreadsheets as it streams.

Datasette offers no hook to change the cells of its CSV (its .csv format is handled
before any output renderer), so the plugin's asgi_wrapper passes each CSV response
through a CsvRewriter: records are cut at the line ends that fall outside quotes, each
complete record is read with the csv module, and a record with a cell that would start
a formula is written again with that cell's leading apostrophe. Every other record goes
out byte for byte. Only the record being cut is held, however long the stream.
"""

from __future__ import annotations

import codecs
import csv
import io
import re

from analysis.display import spreadsheet_safe_text

# Where a cell can start with a formula character: at the start of the record, or after
# a comma or a line break, bare or just inside the opening quote. A cheap test that lets
# most records through (a bare "\r" after a comma is the line end; a cell starting with
# "\r" is always quoted). Two patterns: one that starts with a character class is ten
# times faster to search than one with "^" or a look-behind in it.
_FORMULA_CELL = r'(?:[=+\-@\t]|"[=+\-@\t\r])'
_AFTER_A_SEPARATOR = re.compile(r"[,\r\n]" + _FORMULA_CELL)
_AT_THE_START = re.compile(_FORMULA_CELL)


def _split_end(raw: str) -> tuple[str, str]:
    for end in ("\r\n", "\n", "\r"):
        if raw.endswith(end):
            return raw[: -len(end)], end
    return raw, ""  # the last record of a stream may have no line end


def _read(line: str) -> list[list[str]]:
    limit = csv.field_size_limit()
    if len(line) > limit:
        # a page's whole text is one cell; the limit is the csv module's, shared by the
        # process, so it is put back at once
        csv.field_size_limit(len(line))
    try:
        return list(csv.reader(io.StringIO(line, newline="")))
    finally:
        if len(line) > limit:
            csv.field_size_limit(limit)


def safe_record(raw: str) -> str:
    """One CSV record (with its line end, if any), with every cell that would start a
    spreadsheet formula given a leading apostrophe; unchanged if none would."""
    if not (_AT_THE_START.match(raw) or _AFTER_A_SEPARATOR.search(raw)):
        return raw
    line, end = _split_end(raw)
    rows = _read(line)  # not strict: the csv module reads any text, as a spreadsheet would
    safe = [[spreadsheet_safe_text(cell) for cell in row] for row in rows]
    if safe == rows:
        return raw
    out = io.StringIO(newline="")
    # written with csv's own line end, which quotes a cell holding "\r" or "\n", then
    # given the record's own. More than one row only from text csv.writer did not write
    # (Datasette's error text after a failed row, a bare "\r" in it).
    csv.writer(out).writerows(safe)
    return out.getvalue()[:-2] + end


class CsvRewriter:
    """Feed the bytes of a CSV body as they come; get back the neutralised bytes of the
    records completed so far. close() gives the rest."""

    def __init__(self, charset: str = "utf-8"):
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        self.charset = charset
        # surrogateescape: bytes the charset cannot decode go out as they came
        self._decoder = codecs.getincrementaldecoder(charset)(errors="surrogateescape")
        self._record: list[str] = []  # the pieces of the record not yet ended
        self._quoted = False  # whether the text fed so far ends inside a quoted cell

    def feed(self, data: bytes) -> bytes:
        return self._encode(self._records(self._decoder.decode(data)))

    def close(self) -> bytes:
        done = self._records(self._decoder.decode(b"", final=True))
        rest, self._record = "".join(self._record), []
        return self._encode(done + (safe_record(rest) if rest else ""))

    def _records(self, text: str) -> str:
        out = []
        *lines, last = text.split("\n")
        for line in lines:
            self._add(line + "\n")
            # with doubled quotes inside quoted cells, an even count of quotes since the
            # record began means this line end is outside quotes: the record ends here
            if not self._quoted:
                out.append(safe_record("".join(self._record)))
                self._record = []
        if last:
            self._add(last)
        return "".join(out)

    def _add(self, piece: str):
        self._record.append(piece)
        if piece.count('"') % 2:
            self._quoted = not self._quoted

    def _encode(self, text: str) -> bytes:
        return text.encode(self.charset, errors="surrogateescape")
