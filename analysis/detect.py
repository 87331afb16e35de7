"""Rule-based claim detector: spaCy blank pipeline + span ruler + context rules.

Pipeline per language (``spacy.blank("en")`` / ``spacy.blank("es")``):

1. ``sentencizer`` with newline as a boundary, so a heading line and each
   list item are sentences of their own;
2. ``span_ruler`` (``stemwatch_ruler``) loaded from the JSONL files in
   ``patterns/``: claim anchors labelled with a category id, and cues
   labelled ``cue:*`` (context), ``stance:*`` and ``kind:*``. Almost all
   are literal phrases matched on LOWER by one PhraseMatcher; a handful of
   merged token patterns cover numbers and abbreviations;
3. ``stemwatch_claims``: keeps an anchor only when its category's context
   (taxonomy.json ``requires``) is present in the sentence, its heading,
   the nearby sentences or the page title/URL, decides the stance
   (stance.py) and the page kind (pagekind.py), and writes the result to
   ``doc.spans["claims"]``.

No trained model, no lemmatizer (patterns list inflections), nothing
downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit

import spacy
from spacy.language import Language
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc, Span

from .lang import LanguageGuesser
from .models import CATEGORIES, Claim, PageAnalysis
from .pagekind import PageKindScorer
from .stance import OFFER, Cue, StanceRules
from .taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy

CODE_VERSION = "1.0"
SPANS_KEY = "claims"
MATCH_KEY = "sw_matches"
LANGS = ("en", "es")
PATTERN_FILES = ("claims", "context", "stance", "pagekind")
META = "sw_meta"  # doc.user_data key: url, title, cues of the page
KIND = "sw_page_kind"  # doc.user_data key: the page kind decided by the resolver
_CATEGORY_SET = frozenset(CATEGORIES)
# Same-length substitutions, so offsets in the normalised text are offsets in the original.
_NORMALIZE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "\u00a0": " ", "\u2010": "-", "\u2011": "-"})
_SLUG_SPLIT = re.compile(r"[-_/.+=?&%]+")
_EXTEND = 6  # tokens: how far a claim's text grows to take in the cue that completed it
_NO_EXTEND = frozenset({"cue:regen"})  # context, not part of what is claimed
_BULLET_WORDS = 12
_HEADING_LOOKBACK = 40

for _attr in ("sw_stance", "sw_cue", "sw_severity", "sw_sentence"):
    if not Span.has_extension(_attr):
        Span.set_extension(_attr, default=None)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: {e}") from e
    return rows


def pattern_rows(patterns_dir: Path, lang: str) -> list[dict]:
    """All ruler patterns for one language, checked: claim labels must be category ids."""
    rows = []
    for stem in PATTERN_FILES:
        path = patterns_dir / f"{stem}_{lang}.jsonl"
        if not path.exists():
            continue
        for row in read_jsonl(path):
            label = row["label"]
            if stem == "claims" and label not in _CATEGORY_SET:
                raise ValueError(f"{path}: unknown category {label!r}")
            rows.append(row)
    return rows


def patterns_version(patterns_dir: Path) -> str:
    h = hashlib.sha256(CODE_VERSION.encode())
    for path in sorted(patterns_dir.glob("*.json*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{CODE_VERSION}+{h.hexdigest()[:12]}"


@Language.factory("stemwatch_claims", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_resolver(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimResolver(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimResolver:
    """Turns ruler matches into claims with stance, and decides the page kind."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.nlp = nlp
        self.taxonomy = load_taxonomy(patterns_dir)
        self.kinds = PageKindScorer(patterns_dir / "pagekind.json")
        self.stance = StanceRules(patterns_dir / "stance.json", self.kinds.default_stance)
        self.extra_requires: dict[str, list[dict]] = {}
        for row in pattern_rows(patterns_dir, lang):
            if row["label"] in _CATEGORY_SET and row.get("requires"):
                self.extra_requires[row["id"]] = row["requires"]

    # -- page level -------------------------------------------------------
    def _context_labels(self, meta: dict) -> set[str]:
        """Cue labels found in the page title and the words of the URL path."""
        url = meta.get("url") or ""
        slug = _SLUG_SPLIT.sub(" ", unquote(urlsplit(url).path)) if url else ""
        text = f"{meta.get('title') or ''}\n{slug}".translate(_NORMALIZE).strip()
        if not text:
            return set()
        doc = self.nlp.get_pipe("stemwatch_ruler")(self.nlp.make_doc(text))
        return {s.label_ for s in doc.spans[MATCH_KEY] if s.label_.startswith("cue:")}

    def __call__(self, doc: Doc) -> Doc:
        meta = doc.user_data.get(META) or {}
        kind_hits: dict[str, set[str]] = defaultdict(set)
        anchors, cues = [], []
        for span in doc.spans[MATCH_KEY]:
            label = span.label_
            if label.startswith("kind:"):
                kind_hits[label[5:]].add(span.text.lower())
            elif label.startswith(("cue:", "stance:")):
                cues.append(Cue(label, span.start, span.end, span.text))
            else:
                anchors.append(span)
        page_kind = self.kinds.kind(kind_hits, meta.get("url", ""), meta.get("title", ""),
                                    meta.get("cues"))
        doc.user_data[KIND] = page_kind
        doc.spans[SPANS_KEY] = self._claims(doc, anchors, cues, page_kind, meta) if anchors else []
        return doc

    # -- claims -----------------------------------------------------------
    def _claims(self, doc, anchors, cues, page_kind, meta) -> list[Span]:
        page = _PageStructure(doc, meta)
        for c in cues:
            page.add_cue(c)
        title_labels = self._context_labels(meta)
        best: dict[tuple[str, int], Span] = {}
        for span in sorted(anchors, key=lambda s: (s.start, -s.end)):
            cat = span.label_
            si = page.sent_index(span.start)
            heading = page.heading_of(si)
            rules = list(self.taxonomy.categories[cat].requires) + self.extra_requires.get(span.id_, [])
            found = [page.find(r, si, heading, span.start, span.end, title_labels) for r in rules]
            if not all(found):
                continue
            excl = self.taxonomy.categories[cat].exclude
            if any(page.find(r, si, heading, span.start, span.end, title_labels) for r in excl):
                continue
            start, end = span.start, span.end
            for cue in found:
                if cue is not True and cue.label not in _NO_EXTEND and page.sent_index(cue.start) == si and \
                        max(cue.start - end, start - cue.end) <= _EXTEND:
                    start, end = min(start, cue.start), max(end, cue.end)
            sent_cues = page.cues_in(si) + (page.cues_in(heading) if heading is not None else [])
            support = {page.sent_index(c.start) for c in found if c is not True} - {si, heading}
            stance, cue_text = self.stance.decide(
                doc, cat, span.start, span.end, sent_cues, first_word=page.first_word(si),
                is_question=page.is_question(si), page_kind=page_kind,
                context_cues=[c for i in sorted(support) for c in page.cues_in(i)])
            key = (cat, si)
            kept = best.get(key)
            if kept is not None and (kept._.sw_stance == "promoted" or stance != "promoted"):
                continue
            claim = Span(doc, start, end, label=cat, span_id=span.id_)
            claim._.sw_stance = stance
            claim._.sw_cue = cue_text
            claim._.sw_severity = self.taxonomy.severity(cat, stance)
            claim._.sw_sentence = page.sentence_ranges(si, heading)
            best[key] = claim
        return sorted(best.values(), key=lambda s: s.start)


class _PageStructure:
    """Sentences, lines, headings and cues of one doc, computed on demand."""

    def __init__(self, doc: Doc, meta: dict):
        self.doc = doc
        self.sents = list(doc.sents)
        self.starts = [s.start for s in self.sents]
        self.cues: dict[int, list[Cue]] = defaultdict(list)
        cues = meta.get("cues") or {}
        self.headings = {h.strip().lower() for h in cues.get("headings", ()) if isinstance(h, str)}
        self._heading_cache: dict[int, int | None] = {}

    def add_cue(self, cue: Cue):
        self.cues[self.sent_index(cue.start)].append(cue)

    def cues_in(self, si: int) -> list[Cue]:
        return self.cues.get(si, [])

    def sent_index(self, token_i: int) -> int:
        return bisect_right(self.starts, token_i) - 1

    # lines and headings
    def _ends_line(self, si: int) -> bool:
        return si == len(self.sents) - 1 or "\n" in self.sents[si][-1].text

    def _whole_line(self, si: int) -> bool:
        return (si == 0 or self._ends_line(si - 1)) and self._ends_line(si)

    def _words(self, si: int) -> list:
        return [t for t in self.sents[si] if not t.is_space]

    def _is_heading(self, si: int) -> bool:
        if not self._whole_line(si):
            return False
        words = self._words(si)
        if not words:
            return False
        if words[-1].text == ":":
            return True
        return self.sents[si].text.strip().lower() in self.headings

    def _is_item(self, si: int) -> bool:
        return self._whole_line(si) and 0 < len(self._words(si)) <= _BULLET_WORDS

    def heading_of(self, si: int) -> int | None:
        """The heading line a list item sits under ("Conditions we treat:" for "Autism")."""
        if si in self._heading_cache:
            return self._heading_cache[si]
        found = None
        if self._is_item(si) and not self._is_heading(si):
            j = si - 1
            while j >= 0 and si - j <= _HEADING_LOOKBACK:
                if self._is_heading(j):
                    found = j
                    break
                if not self._is_item(j):
                    break
                j -= 1
        self._heading_cache[si] = found
        return found

    def first_word(self, si: int) -> str:
        words = self._words(si)
        return words[0].lower_ if words else ""

    def is_question(self, si: int) -> bool:
        words = self._words(si)
        return bool(words) and words[-1].text == "?"

    def sentence_ranges(self, si: int, heading: int | None) -> list[tuple[int, int]]:
        ids = [heading, si] if heading is not None else [si]
        out = []
        for i in ids:
            words = self._words(i)
            out.append((words[0].idx, words[-1].idx + len(words[-1].text)) if words
                       else (self.sents[i].start_char, self.sents[i].end_char))
        return out

    # requirement lookup: returns the Cue found, True for a title/URL hit, or None
    def find(self, rule: dict, si: int, heading: int | None, start: int, end: int, title_labels):
        label = "cue:" + rule["cue"]
        scope = rule.get("scope", "sentence")
        if scope in ("near", "after"):
            d = rule.get("distance", 4)
            for c in self.cues_in(si):
                if c.label != label:
                    continue
                if c.start >= end and c.start - end <= d:
                    return c
                if scope == "near" and c.end <= start and start - c.end <= d:
                    return c
            return None
        window = rule.get("window", 0) if scope == "window" else 0
        order = [si] + [i for k in range(1, window + 1) for i in (si - k, si + k)]
        if heading is not None:  # a list item also has its heading's context
            order += [heading] + [i for k in range(1, window + 1) for i in (heading - k, heading + k)]
        for i in order:
            for c in self.cues.get(i, ()):
                if c.label == label:
                    return c
        if scope == "window" and label in title_labels:
            return True
        return None


def _normalize(text: str) -> str:
    return text.translate(_NORMALIZE)


def build_pipeline(lang: str, patterns_dir: str | Path | None = None) -> Language:
    """spacy.blank(lang) + newline-aware sentencizer + span ruler + claim resolver."""
    patterns_dir = Path(patterns_dir or DEFAULT_PATTERNS_DIR)
    nlp = spacy.blank(lang)
    punct = list(Sentencizer.default_punct_chars) + ["\n", "\n\n", "\n\n\n", " \n", "\n "]
    nlp.add_pipe("sentencizer", config={"punct_chars": punct})
    ruler = nlp.add_pipe("span_ruler", name="stemwatch_ruler", config={
        "spans_key": MATCH_KEY, "phrase_matcher_attr": "LOWER", "overwrite": True, "validate": True})
    ruler.add_patterns([{"label": r["label"], "pattern": r["pattern"], "id": r["id"]}
                        for r in pattern_rows(patterns_dir, lang)])
    nlp.add_pipe("stemwatch_claims", config={"patterns_dir": str(patterns_dir), "lang": lang})
    return nlp


class Detector:
    """Flags stem-cell marketing claims in page text; see the module docstring."""

    def __init__(self, patterns_dir: str | Path | None = None):
        self.patterns_dir = Path(patterns_dir or DEFAULT_PATTERNS_DIR).resolve()
        self.version = patterns_version(self.patterns_dir)
        self.taxonomy = load_taxonomy(self.patterns_dir)
        self.languages = LanguageGuesser(self.patterns_dir / "lang.json")
        self.nlps = {lang: build_pipeline(lang, self.patterns_dir) for lang in LANGS
                     if (self.patterns_dir / f"claims_{lang}.jsonl").exists()}
        if "en" not in self.nlps:
            raise FileNotFoundError(f"{self.patterns_dir}: no claims_en.jsonl")

    def language(self, text: str, declared: str = "") -> str:
        return self.languages.guess(text, declared, tuple(self.nlps))

    def _make_doc(self, lang: str, text: str, url: str, title: str, cues: dict | None) -> Doc:
        doc = self.nlps[lang].make_doc(_normalize(text))
        doc.user_data[META] = {"url": url or "", "title": title or "", "cues": cues or {}}
        return doc

    def _result(self, doc: Doc, text: str, lang: str) -> PageAnalysis:
        claims = []
        for span in doc.spans[SPANS_KEY]:
            a, b = span.start_char, span.end_char
            claims.append(Claim(
                category=span.label_,
                stance=span._.sw_stance,
                text=text[a:b],
                sentence=" … ".join(text[x:y].strip() for x, y in span._.sw_sentence),
                start=a,
                end=b,
                pattern=span.id_,
                severity=span._.sw_severity,
                why=self.taxonomy.categories[span.label_].why,
                cue=span._.sw_cue or "",
            ))
        return PageAnalysis(page_kind=doc.user_data.get(KIND, "other"), lang=lang, claims=claims,
                            detector_version=self.version)

    def analyze(self, text: str, *, url: str = "", title: str = "", lang: str = "",
                cues: dict | None = None) -> PageAnalysis:
        text = text or ""
        lang = self.language(text, lang)
        nlp = self.nlps[lang]
        doc = nlp(self._make_doc(lang, text, url, title, cues))
        return self._result(doc, text, lang)

    def analyze_many(self, pages: Iterable[dict], *, n_process: int = 1,
                     batch_size: int = 32) -> Iterator[PageAnalysis]:
        """Analyse dicts with keys text, url, title, lang, cues; results in input order."""
        chunk: list[dict] = []
        chunk_size = max(batch_size * max(n_process, 1) * 4, 64)
        for page in pages:
            chunk.append(page)
            if len(chunk) >= chunk_size:
                yield from self._analyze_chunk(chunk, n_process, batch_size)
                chunk = []
        if chunk:
            yield from self._analyze_chunk(chunk, n_process, batch_size)

    def _analyze_chunk(self, pages: list[dict], n_process: int, batch_size: int):
        texts = [p.get("text") or "" for p in pages]
        langs = [self.language(t, p.get("lang", "")) for t, p in zip(texts, pages)]
        results: list[PageAnalysis | None] = [None] * len(pages)
        for lang, nlp in self.nlps.items():
            idx = [i for i, lg in enumerate(langs) if lg == lang]
            if not idx:
                continue
            docs = (self._make_doc(lang, texts[i], pages[i].get("url", ""), pages[i].get("title", ""),
                                   pages[i].get("cues")) for i in idx)
            n = n_process if len(idx) >= 2 * batch_size else 1
            for i, doc in zip(idx, nlp.pipe(docs, n_process=n, batch_size=batch_size)):
                results[i] = self._result(doc, texts[i], lang)
        yield from results


@lru_cache(maxsize=1)
def get_detector() -> Detector:
    """The process-wide detector (patterns are loaded once)."""
    return Detector()
