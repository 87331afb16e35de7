"""Page language: the declared <html lang> when there is one, else a stopword count."""

from __future__ import annotations

import json
import re
from pathlib import Path

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# bytes.translate table: ASCII letters to lower case, every other byte to a space
_ASCII_LETTERS = bytes(c | 0x20 if chr(c).isascii() and chr(c).isalpha() else 0x20 for c in range(256))
_CHARS_PER_WORD = 12  # a prefix this many characters per word wanted holds them on most pages


class LanguageGuesser:
    def __init__(self, config_path: str | Path):
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.default = cfg["default"]
        self.max_tokens = cfg["max_tokens"]
        self.min_hits = cfg["min_hits"]
        self.stopwords = {lang: frozenset(words) for lang, words in cfg["stopwords"].items()}
        # the same words as bytes, for ASCII text (_first_words)
        self.ascii_stopwords = {lang: frozenset(w.encode() for w in words if w.isascii())
                                for lang, words in self.stopwords.items()}

    def guess(self, text: str, declared: str = "", supported: tuple[str, ...] = ("en", "es")) -> str:
        declared = (declared or "").split("-")[0].split("_")[0].lower()
        if declared in supported:
            return declared
        words, stopwords = self._first_words(text)
        counts = {lang: sum(map(stop.__contains__, words)) for lang, stop in stopwords.items()}
        ranked = sorted(counts.values(), reverse=True)
        best = max(counts, key=counts.get)
        if counts[best] >= self.min_hits and (len(ranked) < 2 or ranked[0] > ranked[1]) and best in supported:
            return best
        return self.default

    def _first_words(self, text: str) -> tuple[list, dict[str, frozenset]]:
        """The first max_tokens words, lower-cased, and the stopword sets to count them in.

        Found in C: a Python loop per word cost more than detecting the page's claims.
        An ASCII text, the usual page, is split as bytes after a translation that
        lower-cases letters and blanks everything else: the same words as _WORD finds."""
        n = self.max_tokens
        end = min(len(text), n * _CHARS_PER_WORD)
        while True:
            prefix = text[:end]
            if prefix.isascii():
                words, stopwords = prefix.encode("ascii").translate(_ASCII_LETTERS).split(), self.ascii_stopwords
            else:
                words, stopwords = list(map(str.lower, _WORD.findall(prefix))), self.stopwords
            # fewer words than wanted, or the last one possibly cut at end: the whole text
            if len(words) > n or end == len(text):
                return words[:n], stopwords
            end = len(text)
