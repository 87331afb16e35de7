"""Page language: the declared <html lang> when there is one, else a stopword count."""

from __future__ import annotations

import json
import re
from pathlib import Path

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class LanguageGuesser:
    def __init__(self, config_path: str | Path):
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.default = cfg["default"]
        self.max_tokens = cfg["max_tokens"]
        self.min_hits = cfg["min_hits"]
        self.stopwords = {lang: frozenset(words) for lang, words in cfg["stopwords"].items()}

    def guess(self, text: str, declared: str = "", supported: tuple[str, ...] = ("en", "es")) -> str:
        declared = (declared or "").split("-")[0].split("_")[0].lower()
        if declared in supported:
            return declared
        counts = dict.fromkeys(self.stopwords, 0)
        for i, m in enumerate(_WORD.finditer(text)):
            if i >= self.max_tokens:
                break
            w = m.group().lower()
            for lang, words in self.stopwords.items():
                if w in words:
                    counts[lang] += 1
        ranked = sorted(counts.values(), reverse=True)
        best = max(counts, key=counts.get)
        if counts[best] >= self.min_hits and (len(ranked) < 2 or ranked[0] > ranked[1]) and best in supported:
            return best
        return self.default
