"""Rule-based claim detector: a spaCy blank pipeline, a claim phrase matcher and context rules.

Pipeline per language (``spacy.blank("en")`` / ``spacy.blank("es")``), all data
from ``patterns/``:

1. ``stemwatch_ruler`` (matcher.py): the claim phrases of ``claims_<lang>.jsonl``
   and the cue phrases (``context_``, ``stance_``, ``pagekind_<lang>.jsonl``) in one
   PhraseMatcher on LOWER;
2. ``stemwatch_claims`` (resolver.py): the page kind (pagekind.py), then for each
   claim candidate its category's context rules (rules.py, answered on the page's
   sentences, lines and headings by page_index.py) and its stance (stance.py);
   claims to ``doc.spans["claims"]``.

``stemwatch_sentences`` (sentences.py) is the newline-aware sentence splitter as a
component for other pipelines; the detector segments only pages with candidates.

Speed: every pattern is a literal phrase (token-Matcher patterns cost ten
times more per word); the few checks a phrase cannot express are pattern
options (``case``, ``after_number``, ``requires``) applied to candidates
only; pages without a plausible candidate are never segmented. The tokenizer
keeps spaCy's cache working on page text: no white-space special cases
(drop_whitespace_special_cases) and room for a crawl's words (TOKENIZER_CACHE).
No trained model, no lemmatizer (patterns list inflections), nothing downloaded
at run time.
"""

from __future__ import annotations

import os
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from analysis.detect import matcher as _matcher  # noqa: F401  (registers stemwatch_ruler)
from analysis.detect import sentences as _sentences  # noqa: F401  (registers stemwatch_sentences)
from analysis.detect import learned as _learned  # noqa: F401  (registers stemwatch_judge)
from analysis.detect.inputs import PageInput, as_input
from analysis.detect.learned import DEFAULT_MODEL_DIR
from analysis.detect.lang import LanguageGuesser
from analysis.models import Claim, PageAnalysis
from analysis.detect.pattern_files import patterns_version
from analysis.detect.claims import INFO, KIND
from analysis.detect.text import normalize
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy

LANGS = ("en", "es")
MAX_LENGTH = 5_000_000  # characters; spaCy's default of 1M refuses some long pages
# A longer page is analysed in pieces of at most this many characters, cut at line ends:
# memory stays bounded and no page is refused for its length.
PIECE_CHARS = 1_000_000
# Chunks (words with their punctuation) the tokenizer remembers; spaCy's default is 10,000
# and a full cache takes no more. Building the matcher tokenises thousands of pattern
# phrases into it, and a crawl meets far more distinct words than that: with the default,
# page text was tokenised afresh word by word. About 100 bytes an entry, bounded.
TOKENIZER_CACHE = 100_000


def build_pipeline(lang: str, patterns_dir: str | Path | None = None, model_dir: str | Path | None = None,
                   threshold: float | None = None) -> Language:
    """spacy.blank(lang) + claim phrase matcher (stemwatch_ruler) + claim resolver, and the
    learned stage (stemwatch_judge) when a trained model folder is given."""
    patterns_dir = Path(patterns_dir or DEFAULT_PATTERNS_DIR)
    nlp = spacy.blank(lang)
    nlp.max_length = MAX_LENGTH
    if lang != "en":  # split "90%" into "90" "%" as English does, so "%" patterns see the number
        suffixes = list(nlp.Defaults.suffixes or []) + [r"(?<=[0-9])%"]
        nlp.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search
    drop_whitespace_special_cases(nlp)
    nlp.tokenizer.max_cache_size = TOKENIZER_CACHE
    nlp.add_pipe("stemwatch_ruler", config={"patterns_dir": str(patterns_dir), "lang": lang})
    nlp.add_pipe("stemwatch_claims", config={"patterns_dir": str(patterns_dir), "lang": lang})
    if model_dir is not None:
        nlp.add_pipe("stemwatch_judge", config={"model_dir": str(model_dir), "patterns_dir": str(patterns_dir),
                                                "threshold": -1.0 if threshold is None else float(threshold)})
    return nlp


def drop_whitespace_special_cases(nlp: Language) -> None:
    """Remove the tokenizer's special cases for white space ("\\n", "\\t", " ", no-break
    space): without them a white-space run is still one token of the same text, but the
    tokenizer's cache keeps working. spaCy stops caching a doc's words for the rest of
    the doc once a special case has matched in it (explosion/spaCy#13950), and page text
    has a newline in its first line: on the labelled passages of data/eval tokenisation
    ran 2.4 to 2.8 times faster without them (benchmarks/detect.py). Special cases that
    split words ("don't", "e.g.") stay: they change the tokens."""
    rules = nlp.tokenizer.rules or {}
    kept = {orth: attrs for orth, attrs in rules.items() if not orth.isspace()}
    if len(kept) != len(rules):
        nlp.tokenizer.rules = kept


class Detector:
    """Flags stem-cell marketing claims in page text; see the module docstring.

    model_dir: a trained model folder (``stemwatch train``); the default is the one the
    project ships, data/model/, when it holds a model; None: the rules alone.
    threshold: the score at which the learned stage holds a category promoted (default:
    the one recorded with the model)."""

    def __init__(self, patterns_dir: str | Path | None = None, model_dir: str | Path | None | bool = True,
                 threshold: float | None = None):
        self.patterns_dir = Path(patterns_dir or DEFAULT_PATTERNS_DIR).resolve()
        if model_dir is True:
            model_dir = DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "meta.json").exists() else None
        self.model_dir = Path(model_dir).resolve() if model_dir else None
        self.threshold = threshold
        self.version = patterns_version(self.patterns_dir)
        self.taxonomy = load_taxonomy(self.patterns_dir)
        self.languages = LanguageGuesser(self.patterns_dir / "lang.json")
        self.nlps = {lang: build_pipeline(lang, self.patterns_dir, self.model_dir, threshold) for lang in LANGS
                     if (self.patterns_dir / f"claims_{lang}.jsonl").exists()}
        if self.model_dir is not None:
            judge = self.nlps["en"].get_pipe("stemwatch_judge").judge if "en" in self.nlps else None
            if judge is not None:
                self.threshold = judge.threshold
                self.version += f"+model.{judge.version}.{judge.decision}@{judge.threshold:g}"
        if "en" not in self.nlps:
            raise FileNotFoundError(f"{self.patterns_dir}: no claims_en.jsonl")

    def language(self, text: str, declared: str = "") -> str:
        return self.languages.guess(text, declared, tuple(self.nlps))

    def _result(self, doc: Doc, text: str, lang: str) -> PageAnalysis:
        categories = self.taxonomy.categories
        claims = [Claim(category=c[2], stance=c[4], text=text[c[0]:c[1]],
                        sentence=" … ".join(text[x:y] for x, y in c[7]), start=c[0], end=c[1], pattern=c[3],
                        severity=c[6], why=categories[c[2]].why, cue=c[5] or "",
                        score=c[8] if len(c) > 8 else None)
                  for c in doc.user_data.get(INFO, ())]
        return PageAnalysis(page_kind=doc.user_data.get(KIND, "other"), lang=lang, claims=claims,
                            detector_version=self.version)

    def analyze(self, text: str, *, url: str = "", title: str = "", lang: str = "",
                cues: dict | None = None) -> PageAnalysis:
        text = text or ""
        if len(text) > PIECE_CHARS:
            return self._analyze_pieces(text, url=url, title=title, lang=lang, cues=cues)
        lang = self.language(text, lang)
        nlp = self.nlps[lang]
        norm = normalize(text)
        doc = nlp.make_doc(norm)
        doc._context = {"url": url or "", "title": title or "", "cues": cues or {}, "text": norm}
        return self._result(nlp(doc), text, lang)

    def _analyze_pieces(self, text: str, **page) -> PageAnalysis:
        """A very long page, piece by piece (pieces(): cut at line ends), its claims' offsets
        in the whole text; the page kind and language are the first piece's (its top)."""
        first, claims = None, []
        for start, end in pieces(text, PIECE_CHARS):
            part = self.analyze(text[start:end], **page)
            first = first or part
            for c in part.claims:
                c.start, c.end = c.start + start, c.end + start
                claims.append(c)
        return PageAnalysis(page_kind=first.page_kind, lang=first.lang, claims=claims,
                            detector_version=self.version)

    def analyze_many(self, pages: Iterable, *, n_process: int = 1,
                     batch_size: int = 32) -> Iterator[PageAnalysis]:
        """Analyse pages (PageInput, StoredPage or dicts with the same keys); results in
        input order. With n_process > 1 the batches go to the detector pool (pool.py).

        spaCy's own ``nlp.pipe(n_process=...)`` ships every Doc back through
        to_bytes/from_bytes, which costs about 2 ms a page, fifteen times the detection
        itself (measured with benchmarks/detect.py), so the pool sends back
        PageAnalysis objects instead.
        """
        if n_process <= 1:
            yield from self._pipe(map(as_input, pages), batch_size)
            return
        from analysis.detect.pool import DetectorPool

        with DetectorPool(n_process, detector=self) as pool:
            yield from pool.imap(pages, batch_size)

    def _pipe(self, pages: Iterable[PageInput], batch_size: int) -> Iterator[PageAnalysis]:
        """English pages stream through one ``nlp.pipe``; a page in another language travels
        through it as an empty placeholder and is analysed with its own pipeline, so order
        is kept without buffering."""
        pending: deque[tuple[PageInput, str]] = deque()

        def feed():
            for page in pages:
                lang = self.language(page.text, page.lang) if len(page.text) <= PIECE_CHARS else "pieces"
                pending.append((page, lang))
                norm = normalize(page.text) if lang == "en" else ""
                yield norm, {"url": page.url, "title": page.title, "cues": page.cues, "text": norm}

        for doc, _ in self.nlps["en"].pipe(feed(), as_tuples=True, batch_size=batch_size):
            page, lang = pending.popleft()
            if lang == "en":
                yield self._result(doc, page.text, lang)
            else:
                yield self.analyze(page.text, url=page.url, title=page.title, cues=page.cues,
                                   lang=page.lang if lang == "pieces" else lang)


def pieces(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive pieces of at most ``size`` characters, each ending after
    a newline when there is one in its second half, else after a space, else at ``size``."""
    out, start = [], 0
    while len(text) - start > size:
        limit = start + size
        cut = text.rfind("\n", start + size // 2, limit)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, limit)
        end = cut + 1 if cut >= 0 else limit
        out.append((start, end))
        start = end
    out.append((start, len(text)))
    return out


@lru_cache(maxsize=1)
def get_detector() -> Detector:
    """The process-wide detector (patterns and model are loaded once)."""
    return Detector(threshold=env_threshold())


def env_threshold() -> float | None:
    """The learned stage's threshold set by the environment (STEMWATCH_THRESHOLD, 0 to 1)."""
    value = os.environ.get("STEMWATCH_THRESHOLD", "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        raise ValueError(f"STEMWATCH_THRESHOLD={value!r} is not a number between 0 and 1") from None
