"""Page kind (clinic, news, academic, regulator, advocacy, other) from cues.

Scores come from data (patterns/pagekind.json): phrase cues matched in the
text by the cue phrase matcher (labels ``kind:<kind>``), regexes on the URL and the
title, and the structural cues extract.py collects (forms, tel: links,
prices, <article>, bylines...).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

from analysis.models import PAGE_KINDS


class PageKindScorer:
    def __init__(self, config_path: str | Path):
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.phrase_weight = cfg["phrase_weight"]
        # phrase labels that score for another kind ("kind:advertising" for clinic, with its own weight)
        self.phrase_kinds = cfg.get("phrase_kinds", {})
        unknown = set(self.phrase_kinds.values()) - set(PAGE_KINDS)
        if unknown:
            raise ValueError(f"{config_path}: phrase_kinds names unknown page kinds {sorted(unknown)}")
        self.max_per_kind = cfg["max_per_kind"]
        self.min_score = cfg["min_score"]
        self.offer_min_score = cfg.get("offer_min_score")  # see kind_with_offers
        self.url_rules = [(r["kind"], r.get("part", "url"), re.compile(r["pattern"], re.I), r["weight"])
                          for r in cfg["url"]]
        self.title_rules = [(r["kind"], re.compile(r["pattern"]), r["weight"]) for r in cfg["title"]]
        # regexes on the lines at the top of the text (a byline), for pages read as text
        self.line_rules = [(r["kind"], re.compile(r["pattern"], re.M), r["weight"]) for r in cfg.get("lines", [])]
        self.lines_within = cfg.get("lines_within", 1500)
        # URL rules on the whole URL or its path, in file order (host rules: _host_scores)
        self._url_path_rules = [(kind, part == "url", rx, weight) for kind, part, rx, weight in self.url_rules
                                if part != "host"]
        self.structured = cfg["structured"]
        self.default_stance = cfg["default_stance"]
        unknown = {r[0] for r in self.url_rules + self.title_rules} - set(PAGE_KINDS)
        if unknown:
            raise ValueError(f"{config_path}: unknown page kinds {sorted(unknown)}")

    def scores(self, phrase_hits: dict[str, set[str]], url: str = "", title: str = "",
               cues: dict | None = None, text: str = "") -> dict[str, float]:
        """phrase_hits: kind -> distinct cue phrases (lower-cased) found in the text."""
        scores = dict.fromkeys(PAGE_KINDS, 0.0)
        for kind, phrases in phrase_hits.items():
            target = self.phrase_kinds.get(kind, kind)
            if target in scores:  # a phrase label of no kind counts for none
                scores[target] += self.phrase_weight.get(kind, 1.0) * min(len(phrases), self.max_per_kind)
        if url:
            for kind, weight in self._url_scores(url):
                scores[kind] += weight
        if title:
            for kind, rx, weight in self.title_rules:
                if rx.search(title):
                    scores[kind] += weight
        if text and self.line_rules:
            top = text[:self.lines_within]
            for kind, rx, weight in self.line_rules:
                if rx.search(top):
                    scores[kind] += weight
        if cues:
            for key, rule in self.structured.items():
                value = _cue_value(cues, key)
                if value:
                    scores[rule["kind"]] += rule["weight"] * min(value, rule["cap"])
        return scores

    def _url_scores(self, url: str) -> list[tuple[str, float]]:
        url = (unquote(url) if "%" in url else url).lower()
        rest = url.partition("//")[2] if "//" in url else url
        slash, path = rest.partition("/")[1:]
        path = (slash + path).split("?")[0].split("#")[0]
        return self._host_scores(url_host(url)) + [(kind, weight) for kind, whole, rx, weight in self._url_path_rules
                                                   if rx.search(url if whole else path)]

    @lru_cache(maxsize=4096)
    def _host_scores(self, host: str) -> list[tuple[str, float]]:
        """Host rules, cached: a crawl visits many pages of few sites."""
        return [(kind, weight) for kind, part, rx, weight in self.url_rules if part == "host" and rx.search(host)]

    def kind_with_offers(self, phrase_hits, url="", title="", cues=None, text="") -> str:
        """The kind of a page of kind other that promotes a claim: clinic if its clinic
        score reaches ``offer_min_score`` (a single cue such as "our patients"), since
        the promise itself is the strongest sign of a seller; otherwise still other
        (a patient's blog post, a forum)."""
        scores = self.scores(phrase_hits, url, title, cues, text)
        return "clinic" if self.offer_min_score is not None and scores["clinic"] >= self.offer_min_score else "other"

    def kind(self, phrase_hits, url="", title="", cues=None, text="") -> str:
        scores = self.scores(phrase_hits, url, title, cues, text)
        best = max(scores, key=scores.get)
        return best if scores[best] >= self.min_score else "other"


def url_host(url: str) -> str:
    """The lower-cased host of a URL, without user info or port; a URL without "//" is
    taken to start with its host ("example.org/page")."""
    rest = url.partition("//")[2] if "//" in url else url
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return netloc.rpartition("@")[2].split(":", 1)[0].lower()


def _cue_value(cues: dict, key: str) -> float:
    if key == "og_type_article":
        return 1.0 if str(cues.get("og_type", "")).lower() == "article" else 0.0
    value = cues.get(key)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return 1.0 if value else 0.0
