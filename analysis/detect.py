"""Rule-based claim detector: spaCy blank pipeline + claim phrase matcher + context rules.

Pipeline per language (``spacy.blank("en")`` / ``spacy.blank("es")``):

1. ``stemwatch_ruler`` (ClaimMatcher) loaded from ``patterns/claims_<lang>.jsonl``:
   literal phrases labelled with a category id, matched on LOWER by one
   PhraseMatcher, written to ``doc.user_data["sw_candidates"]`` as plain tuples
   (no Span objects: most candidates are dropped); the same matcher, in the same
   pass, matches the cue lists (``context_``, ``stance_`` and ``pagekind_<lang>.jsonl``)
   and leaves those matches in ``doc.user_data["sw_cue_matches"]``;
2. ``stemwatch_claims``: takes the cue matches (or matches the cue lists with its own
   PhraseMatcher when no ruler ran) and decides the page kind (pagekind.py).
   On a page with a plausible candidate it splits the text into sentences (newline-aware: a heading line and each list item are
   sentences of their own), keeps a candidate only when its category's context (taxonomy.json
   ``requires``) is present in the sentence, its heading, the nearby
   sentences or the page title/URL (each rule's scope says which; a disease
   needs its offer in its own unit: sentence, heading+item, bare list under a
   page that names the offer, or the next sentence naming the product), drops
   menu labels (``not_alone``), decides its stance (stance.py), and
   writes the claims kept to ``doc.spans["claims"]``. The same splitter is
   registered as the ``stemwatch_sentences`` component for other pipelines.

Speed: every pattern is a literal phrase (token-Matcher patterns cost ten
times more per word); the few checks a phrase cannot express are pattern
options (``case``, ``after_number``, ``requires``) applied to candidates
only; pages without a plausible candidate are never segmented. No trained
model, no lemmatizer (patterns list inflections), nothing downloaded at run
time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict, deque
from functools import lru_cache, partial
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple
from urllib.parse import unquote, urlsplit

import numpy
import spacy
from spacy.attrs import IDX, SENT_START
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from .lang import LanguageGuesser
from .models import CATEGORIES, Claim, PageAnalysis
from .pagekind import PageKindScorer
from .stance import Cue, StanceRules
from .taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy

CODE_VERSION = "2.2"  # bump when detection code changes behaviour
SPANS_KEY = "claims"
LANGS = ("en", "es")
CUE_FILES = ("context", "stance", "pagekind")
KIND = "sw_page_kind"  # doc.user_data key: the page kind decided by the resolver
CANDIDATES = "sw_candidates"  # doc.user_data key: Candidate tuples from the stemwatch_ruler
CUE_MATCHES = "sw_cue_matches"  # doc.user_data key: all the ruler's matches (key, start, end), cues included
INFO = "sw_claims"  # doc.user_data key: [stance, cue, severity, sentence ranges] per doc.spans["claims"] span
MAX_LENGTH = 5_000_000  # characters; spaCy's default of 1M refuses some long pages
_CATEGORY_SET = frozenset(CATEGORIES)
# Same-length substitutions, so offsets in the normalised text are offsets in the original.
_NORMALIZE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "\u00a0": " ", "\u2010": "-", "\u2011": "-"})
_SLUG_SPLIT = re.compile(r"[\W\d_]+")  # URL path to words; digits dropped (page ids are not words)
_EXTEND = 6  # tokens: how far a claim's text grows to take in the cue that completed it
_NO_EXTEND = frozenset({"cue:regen"})  # context, not part of what is claimed
_BULLET_WORDS = 12
_HEADING_LOOKBACK = 40
_REGION_MARGIN = 1500  # characters around the candidates that are segmented into sentences
# A sentence ends at a newline, or at . ! ? (plus closing quotes) followed by space and
# anything but a lower-case letter; not after a few abbreviations.
_CLOSING = ".!?\"')]\u201d\u2019"
_ABBREV = ("e.g.", "i.e.", " dr.", " mr.", " mrs.", " ms.", " vs.", " st.", " no.", " fig.", " dra.", " sra.")
# Every abbreviation has a space 3 or 4 characters before its final dot, or a dot 2 before:
# a cheap test before the lower-casing one.
_NOT_START = numpy.iinfo(numpy.uint64).max  # -1 as spaCy stores it: "not a sentence start"


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


def claim_patterns(patterns_dir: Path, lang: str) -> list[dict]:
    """Claim patterns of one language, checked: labels must be category ids."""
    path = patterns_dir / f"claims_{lang}.jsonl"
    rows = read_jsonl(path)
    for row in rows:
        if row["label"] not in _CATEGORY_SET:
            raise ValueError(f"{path}: unknown category {row['label']!r}")
    return rows


def cue_patterns(patterns_dir: Path, lang: str) -> list[dict]:
    rows = []
    for stem in CUE_FILES:
        path = patterns_dir / f"{stem}_{lang}.jsonl"
        if path.exists():
            rows += read_jsonl(path)
    return rows


def patterns_version(patterns_dir: Path) -> str:
    h = hashlib.sha256(CODE_VERSION.encode())
    for path in sorted(patterns_dir.glob("*.json*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{CODE_VERSION}+{h.hexdigest()[:12]}"


def _url_path(url: str) -> str:
    """``urlsplit(url).path``, without urlsplit for a plain ASCII http(s) URL with no
    query, fragment, brackets, spaces or control characters (a crawl's usual URL)."""
    if url.startswith(("http://", "https://")) and url.isascii() and url.isprintable() \
            and not any(ch in url for ch in " ?#[]"):
        rest = url[url.index("//") + 2:]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else ""
    return urlsplit(url).path


def _normalize(text: str) -> str:
    # every character replaced is non-ASCII: an ASCII text (the usual page) is its own result
    return text if text.isascii() else text.translate(_NORMALIZE)


def _doc_text(doc: Doc) -> str:
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
    """Token indices where sentences start: after every newline, and after . ! ?
    followed by a space and anything but a lower-case letter.

    str.find over the text and one searchsorted over token offsets: no Python
    loop over tokens.
    """
    return _to_tokens(doc, _sentence_cuts(_doc_text(doc) if text is None else text))[0]


def _sentence_cuts(text: str, lo: int = 0, hi: int | None = None) -> list[int]:
    """Character offsets where sentences start (besides 0), within text[lo:hi].

    str.find over the few break characters: twice as fast as one regex pass over the
    text (measured: 22 against 44 us for a 2,000-character page).
    """
    n = len(text) if hi is None else hi
    find = text.find
    cuts = []
    i = find("\n", lo, n)
    while i >= 0:
        cuts.append(i + 1)
        i = find("\n", i + 1, n)
    for ch in ".!?":
        i = find(ch, lo, n)
        while i >= 0:
            j = i + 1
            while j < n and text[j] in _CLOSING:
                j += 1
            if j < n and text[j] in " \t":
                while j < n and text[j] in " \t":
                    j += 1
                if j < n and not text[j].islower() and not (
                        ch == "." and (text[i - 2:i - 1] == "." or " " in text[max(0, i - 4):i - 2])
                        and text[max(0, i - 4):i + 1].lower().endswith(_ABBREV)):
                    cuts.append(j)
            i = find(ch, j, n)
    cuts.sort()
    return cuts


def _to_tokens(doc: Doc, cuts: list[int], idx=None) -> tuple[list[int], list[int]]:
    """Sentence-start token indices for character cuts, and those tokens' character offsets."""
    if idx is None:
        idx = doc.to_array(IDX)
    n = len(doc)
    starts = [0] + sorted({t for t in numpy.searchsorted(idx, cuts).tolist() if 0 < t < n})
    return starts, idx[starts].tolist()


def set_sentences(doc: Doc, starts: list[int]) -> None:
    """Write sentence starts to the doc in one call (token.is_sent_start re-scans the doc per token)."""
    flags = numpy.full((len(doc), 1), _NOT_START, dtype="uint64")
    flags[starts, 0] = 1
    doc.from_array([SENT_START], flags)


@Language.factory("stemwatch_sentences")
def make_sentence_splitter(nlp: Language, name: str):
    """Newline-aware sentence splitting as a component, for pipelines that want every doc
    segmented; the detector's own pipeline segments lazily (see ClaimResolver)."""
    return split_sentences


def split_sentences(doc: Doc) -> Doc:
    if len(doc):
        set_sentences(doc, sentence_starts(doc))
    return doc


_MISSING = object()
_NO_OPTIONS: dict = {}
_new_cue = partial(tuple.__new__, Cue)  # Cue from a (label, start, end) tuple, without Cue.__new__


class Candidate(NamedTuple):
    """A claim-pattern match before the context rules: token offsets, category, pattern id."""
    start: int
    end: int
    label: str
    id: str


_new_candidate = partial(tuple.__new__, Candidate)  # Candidate from a 4-tuple, without Candidate.__new__


@Language.factory("stemwatch_ruler", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_matcher(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimMatcher(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimMatcher:
    """The claim phrases in one PhraseMatcher on LOWER; candidates go to
    ``doc.user_data[CANDIDATES]`` as plain tuples. (spaCy's span_ruler builds a Span per
    match and a SpanGroup per doc, which cost more than the matching itself.)

    The same matcher also holds the cue phrases (``context_``, ``stance_``,
    ``pagekind_<lang>.jsonl``, keyed as ClaimResolver keys them): one pass over the
    tokens instead of two (measured: 34 against 52 us a page). All matches go to
    ``doc.user_data[CUE_MATCHES]``, where the resolver takes them instead of matching
    again (it knows no claim key, so it passes over those)."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.keys: dict[int, tuple[str, str]] = {}
        by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
        for row in claim_patterns(patterns_dir, lang):
            by_key[(row["label"], row["id"])].append(row["pattern"])
        for (label, pid), phrases in by_key.items():
            key = f"{label}|{pid}"
            self.matcher.add(key, list(nlp.tokenizer.pipe(phrases)))
            self.keys[nlp.vocab.strings[key]] = (label, pid)
        for key, phrases in _cue_phrases(patterns_dir, lang).items():
            self.matcher.add(key, list(nlp.tokenizer.pipe(phrases)))

    def __call__(self, doc: Doc) -> Doc:
        keys = self.keys
        matches = self.matcher(doc)
        doc.user_data[CANDIDATES] = [_new_candidate((start, end) + keys[key]) for key, start, end in matches
                                     if key in keys and end > start]
        doc.user_data[CUE_MATCHES] = matches  # the resolver passes over the claim keys
        return doc


def _cue_phrases(patterns_dir: Path, lang: str) -> dict[str, list[str]]:
    """Cue phrases by matcher key: the label, and for page-kind cues label|phrase, so
    that distinct phrases can be counted."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for row in cue_patterns(patterns_dir, lang):
        label, phrase = row["label"], row["pattern"]
        key = f"{label}|{phrase.lower()}" if label.startswith("kind:") else label
        by_key[key].append(phrase)
    return by_key


@Language.factory("stemwatch_claims", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_resolver(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimResolver(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimResolver:
    """Turns ruler candidates into claims with stance, and decides the page kind."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.nlp = nlp
        self.taxonomy = load_taxonomy(patterns_dir)
        self.kinds = PageKindScorer(patterns_dir / "pagekind.json")
        self.stance = StanceRules(patterns_dir / "stance.json", self.kinds.default_stance)
        self.options: dict[str, dict] = {}
        self._rule_cache: dict[tuple[str, str], list[dict]] = {}
        for row in claim_patterns(patterns_dir, lang):
            opts = {k: row[k] for k in ("requires", "case", "after_number", "not_alone") if row.get(k)}
            if opts:
                old = self.options.setdefault(row["id"], opts)
                if old != opts:
                    raise ValueError(f"claims_{lang}.jsonl: pattern id {row['id']!r} has differing options")
        # One PhraseMatcher for every cue; page-kind phrases keep a key of their own so
        # that distinct phrases can be counted.
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.keys: dict[int, tuple[str, str]] = {}
        self.cue_keys: dict[int, str] = {}  # matcher key -> cue label
        self.kind_keys: dict[int, tuple[str, str]] = {}  # matcher key -> (page kind, phrase)
        for key, phrases in _cue_phrases(patterns_dir, lang).items():
            self.matcher.add(key, list(nlp.tokenizer.pipe(phrases)))
            label, _, phrase = key.partition("|")
            self.keys[nlp.vocab.strings[key]] = (label, phrase)
            if phrase:
                self.kind_keys[nlp.vocab.strings[key]] = (label[5:], phrase)
            else:
                self.cue_keys[nlp.vocab.strings[key]] = label

    def _context_labels(self, meta: dict) -> frozenset[str]:
        """Cue labels found in the page title and the words of the URL path (once per page)."""
        labels = meta.get("_title_labels")
        if labels is None:
            url = meta.get("url") or ""
            slug = _SLUG_SPLIT.sub(" ", unquote(_url_path(url))) if url else ""
            labels = meta["_title_labels"] = self._labels_in(
                f"{meta.get('title') or ''}\n{slug}".translate(_NORMALIZE).strip())
        return labels

    @lru_cache(maxsize=8192)
    def _labels_in(self, text: str) -> frozenset[str]:
        if not text:
            return frozenset()
        found = (self.keys[k][0] for k, _, _ in self.matcher(self.nlp.make_doc(text)))
        return frozenset(label for label in found if label.startswith("cue:"))

    def __call__(self, doc: Doc) -> Doc:
        meta = doc._context if isinstance(doc._context, dict) else {}
        kind_hits: dict[str, set[str]] = defaultdict(set)
        kind_keys, cue_keys = self.kind_keys, self.cue_keys
        matches = doc.user_data.pop(CUE_MATCHES, None)
        if matches is None:  # no stemwatch_ruler before this component
            matches = self.matcher(doc)
        candidates = doc.user_data.pop(CANDIDATES, None)
        cues = []  # (label, start, end) of every cue match, in matcher order
        if candidates:
            for key, start, end in matches:
                label = cue_keys.get(key)
                if label is not None:
                    cues.append((label, start, end))
                else:
                    hit = kind_keys.get(key)
                    if hit is not None:
                        kind_hits[hit[0]].add(hit[1])
        else:
            for key, start, end in matches:
                hit = kind_keys.get(key)
                if hit is not None:
                    kind_hits[hit[0]].add(hit[1])
        page_kind = self.kinds.kind(kind_hits, meta.get("url", ""), meta.get("title", ""), meta.get("cues"))
        doc.user_data[KIND] = page_kind
        kept = []
        if candidates:
            labels = {c[0] for c in cues}
            candidates = self._possible(candidates, labels, meta)
            if candidates:
                kept = self._claims(doc, candidates, cues, labels, page_kind, meta)
        doc.spans[SPANS_KEY] = [span for span, _ in kept]
        doc.user_data[INFO] = [info for _, info in kept]
        return doc

    def _possible(self, candidates: list[Candidate], labels: set[str], meta: dict) -> list[Candidate]:
        """Drop candidates whose required cues appear nowhere on the page: most pages stop here."""
        ok: dict[tuple[str, str], bool] = {}
        out = []
        for span in candidates:
            key = span[2:]
            if key not in ok:
                rules = self._rules(span.label, span.id)
                missing = [r for r in rules if "cue:" + r["cue"] not in labels
                           and not (r.get("weak") and "cue:" + r["weak"][0] in labels)]
                if missing and all(r.get("scope") in ("window", "page", "unit") for r in missing):
                    title_labels = self._context_labels(meta)
                    missing = [r for r in missing if "cue:" + r["cue"] not in title_labels]
                ok[key] = not missing
            if ok[key]:
                out.append(span)
        return out

    def _rules(self, label: str, pid: str) -> list[dict]:
        """A pattern's requirements: its category's plus its own (cached)."""
        key = (label, pid)
        rules = self._rule_cache.get(key)
        if rules is None:
            rules = self._rule_cache[key] = list(self.taxonomy.categories[label].requires) + \
                self.options.get(pid, {}).get("requires", [])
        return rules

    def _pattern_ok(self, doc: Doc, span: Candidate, opts: dict) -> int | None:
        """The claim's start token after the pattern's own checks, or None if they fail."""
        if opts.get("case") == "upper" and not doc[span.start:span.end].text.isupper():
            return None
        n = opts.get("after_number")
        if n:
            for i in range(span.start - 1, max(span.start - n, 0) - 1, -1):
                if doc[i].like_num:
                    return i
            return None
        return span.start

    def _claims(self, doc, candidates, cues, labels, page_kind, meta) -> list[Span]:
        idx = doc.to_array(IDX)
        last = max([c[1] for c in candidates])
        page = _PageStructure(doc, meta, int(idx[min([c[0] for c in candidates])]),
                              int(idx[last]) if last < len(idx) else len(_doc_text(doc)), idx)
        claimed = bytearray(len(doc))  # tokens inside some candidate: their words are never stance cues
        for a, b, _, _ in candidates:
            claimed[a:b] = b"\x01" * (b - a)
        page.add_cues(cues, claimed, labels)
        candidates = sorted(candidates, key=lambda s: (s[0], -s[1]))
        sents = (numpy.searchsorted(page.starts, [c[0] for c in candidates], side="right") - 1).tolist()
        candidate_sents = page.candidate_sents
        for span, si in zip(candidates, sents):
            got = candidate_sents.get(span[2])
            if got is None:
                candidate_sents[span[2]] = {si}
            else:
                got.add(si)
        title_labels = None
        best: dict[tuple[str, int], tuple[Span, list]] = {}
        options, categories = self.options, self.taxonomy.categories
        for span, si in zip(candidates, sents):
            cat = span[2]
            kept = best.get((cat, si))
            if kept is not None and kept[1][0] == "promoted":
                continue  # one claim per category and sentence
            opts = options.get(span[3])
            if opts is None:  # most patterns have no options
                opts, start = _NO_OPTIONS, span[0]
            else:
                start = self._pattern_ok(doc, span, opts)
                if start is None:
                    continue
            if title_labels is None:  # the title and URL are matched only if a rule needs them
                title_labels = _LazyLabels(lambda: self._context_labels(meta))
            heading = page.heading_of(si)
            if opts.get("not_alone") and page.is_label(si, span.start, span.end):
                continue  # a menu label or heading, not a promise
            rules = self._rules(cat, span.id)
            found = []
            for r in rules:
                f = page.find(r, si, heading, span.start, span.end, title_labels, cat)
                if not f:
                    break
                found.append(f)
            else:
                f = True
            if not f:
                continue
            exclude = categories[cat].exclude
            if exclude and any(page.find(r, si, heading, span.start, span.end, title_labels)
                               for r in exclude):
                continue
            end = span.end
            for cue in found:
                if cue is not True and cue.label not in _NO_EXTEND and page.sent_index(cue.start) == si \
                        and max(cue.start - end, start - cue.end) <= _EXTEND:
                    start, end = min(start, cue.start), max(end, cue.end)
            sent_cues = page.cues_in(si) + (page.cues_in(heading) if heading is not None else [])
            support = {page.sent_index(c.start) for c in found if c is not True} - {si, heading}
            first, sent_end = page.word_bounds(si)
            stance, cue_text = self.stance.decide(
                doc, cat, span.start, span.end, sent_cues, first=first, sent_end=sent_end,
                is_question=page.is_question(si), page_kind=page_kind,
                context_cues=[c for i in sorted(support) for c in page.cues_in(i)])
            if stance is None or (kept is not None and stance != "promoted"):
                continue
            best[(cat, si)] = (Span(doc, start, end, label=cat, span_id=span.id),
                               [stance, cue_text, self.taxonomy.severity(cat, stance),
                                page.sentence_ranges(si, heading, si + 1 in support)])
        return sorted(best.values(), key=lambda pair: pair[0].start)


class _LazyLabels:
    """A label set computed on the first membership test."""
    __slots__ = ("_fn", "_labels")

    def __init__(self, fn):
        self._fn, self._labels = fn, None

    def __contains__(self, label: str) -> bool:
        if self._labels is None:
            self._labels = self._fn()
        return label in self._labels


class _PageStructure:
    """Sentences, lines, headings and cues of one doc, computed on demand from the text."""

    def __init__(self, doc: Doc, meta: dict, lo: int, hi: int, idx=None):
        """Segments only the lines around the candidates, text[lo:hi] widened to whole lines
        plus a margin: sentences further away cannot supply context (windows are a few
        sentences). Before and after that region the doc is one pseudo-sentence each.
        The boundaries stay here: writing them to the doc (set_sentences) would cost a
        tenth of the detection and nothing downstream reads doc.sents."""
        self.doc = doc
        self.text = text = _doc_text(doc)
        n = len(text)
        lo = text.rfind("\n", 0, max(0, lo - _REGION_MARGIN)) + 1
        hi = text.find("\n", min(n, hi + _REGION_MARGIN))
        hi = n if hi < 0 else hi + 1
        cuts = _sentence_cuts(text, lo, hi)
        self.outside = set()
        if lo > 0:
            cuts.insert(0, lo)
        if hi < n:
            cuts.append(hi)
        self.starts, bounds = _to_tokens(doc, cuts, idx)
        if lo > 0:
            self.outside.add(0)
        if hi < n and bounds[-1] >= hi:
            self.outside.add(len(self.starts) - 1)
        bounds.append(n)
        self.chars = list(zip(bounds, bounds[1:]))
        self.cues: dict[int, list[Cue]] = {}
        cues = meta.get("cues") or {}
        self.candidate_sents: dict[str, set[int]] = {}
        self.headings = {h.strip().lower() for h in cues.get("headings", ()) if isinstance(h, str)}
        self._heading_cache: dict[int, int | None] = {}
        self._find_cache: dict[tuple, Cue | bool | None] = {}
        self.by_label: dict[str, dict[int, Cue]] = {}  # label -> sentence -> its first cue there

    def add_cues(self, cues: list[tuple[str, int, int]], claimed: bytearray, labels: set[str]):
        """Files the page's cues by sentence, and by label the first cue of each sentence
        (context cues only: the rules ask for ``cue:`` labels, the stance decision reads
        the sentence's list). A stance cue whose words lie inside some candidate
        (``claimed`` tokens) is dropped. ``cues``: (label, start, end) tuples, made Cues
        as they are filed; ``labels``: every cue label of the page."""
        self.labels = labels
        where = numpy.searchsorted(self.starts, [c[1] for c in cues], side="right").tolist()
        outside = self.outside
        by_sent, by_label = self.cues, self.by_label
        new_cue = _new_cue
        for i, cue in zip(where, cues):
            i -= 1
            if i in outside:
                continue
            label = cue[0]
            if label.startswith("stance:"):  # rules ask for cue: labels only; no by_label entry
                if claimed[cue[1]] and claimed[cue[2] - 1]:
                    continue
                cue = new_cue(cue)
            else:
                cue = new_cue(cue)
                d = by_label.get(label)
                if d is None:
                    by_label[label] = {i: cue}
                elif i not in d:
                    d[i] = cue
            got = by_sent.get(i)
            if got is None:
                by_sent[i] = [cue]
            else:
                got.append(cue)

    def cues_in(self, si: int) -> list[Cue]:
        return self.cues.get(si, [])

    def sent_index(self, token_i: int) -> int:
        return bisect_right(self.starts, token_i) - 1

    def _text(self, si: int) -> str:
        a, b = self.chars[si]
        return self.text[a:b]

    # lines and headings
    def _ends_line(self, si: int) -> bool:
        if si == len(self.starts) - 1:
            return True
        a, k = self.chars[si]
        text = self.text
        k -= 1
        while k > a and text[k] in " \t":
            k -= 1
        return text[k] == "\n"

    def _whole_line(self, si: int) -> bool:
        return (si == 0 or self._ends_line(si - 1)) and self._ends_line(si)

    def _is_heading(self, si: int) -> bool:
        if not self._whole_line(si):
            return False
        line = self._text(si).strip()
        return bool(line) and (line.endswith(":") or line.lower() in self.headings)

    def _is_item(self, si: int) -> bool:
        if not self._whole_line(si):
            return False
        a, b = self.chars[si]
        return b - a < 200 and 0 < len(self._text(si).split()) <= _BULLET_WORDS

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

    def word_bounds(self, si: int) -> tuple[int, int]:
        """The sentence's first non-space token and its end (token offsets)."""
        first = self.starts[si]
        end = self.starts[si + 1] if si + 1 < len(self.starts) else len(self.doc)
        while first < end and self.doc[first].is_space:
            first += 1
        return first, end

    def is_question(self, si: int) -> bool:
        return self._text(si).rstrip().endswith("?")

    def sentence_ranges(self, si: int, heading: int | None, with_next: bool = False) -> list[tuple[int, int]]:
        out = []
        for i in ([heading, si] if heading is not None else [si]) + ([si + 1] if with_next else []):
            a, b = self.chars[i]
            t = self.text[a:b]
            out.append((a + len(t) - len(t.lstrip()), a + len(t.rstrip())))
        return out

    def _has(self, si: int, label: str, weak: list | None) -> Cue | None:
        """The cue ``label`` in sentence si, or a weak cue that counts there because its
        partner cue stands in the same sentence (``weak``: [weak label, partner label])."""
        by_label = self.by_label
        d = by_label.get(label)
        c = d.get(si) if d is not None else None
        if c is None and weak:
            partner = by_label.get(weak[1])
            if partner is not None and si in partner:
                d = by_label.get(weak[0])
                c = d.get(si) if d is not None else None
        return c

    def _find_unit(self, label: str, weak, si: int, heading: int | None, title_labels):
        """Scope ``unit``: the claim's own sentence; for a list item, its heading; for an
        item of a bare list (no closing punctuation) under a heading that names no offer
        ("Neurological" on a conditions page), the page title or URL words."""
        weak = ["cue:" + w for w in weak] if weak else None
        c = self._has(si, label, weak)
        if c is not None:
            return c
        if heading is None:
            return None
        c = self._has(heading, label, weak)
        if c is not None:
            return c
        if label in title_labels and not self._text(si).rstrip().endswith((".", "!", "?")):
            return True
        return None

    def next_offer(self, rule: dict, si: int, category: str) -> Cue | None:
        """Rule option ``next``: the following sentence of the same paragraph holds the
        offer and its product (both cues, the weak one not sufficing) but names no condition
        of its own: "Cerebral palsy need not be the end. We have seen great improvements
        in children treated with stem cell therapy." """
        j = si + 1
        if j >= len(self.starts) or j in self.outside or self._ends_line(si) \
                or j in self.candidate_sents.get(category, ()):
            return None
        d = self.by_label.get("cue:" + rule["next"])
        if d is None or j not in d:
            return None
        d = self.by_label.get("cue:" + rule["cue"])
        return d.get(j) if d is not None else None

    def is_label(self, si: int, start: int, end: int, max_extra: int = 3) -> bool:
        """The sentence's line holds little but the match: a menu link or a
        heading ("Success Stories", "Read our patient stories")."""
        text = self.text
        a, b = self.chars[si]
        a = text.rfind("\n", 0, a + 1) + 1  # the whole line ("Real Patients. Real Results.")
        b = text.find("\n", b - 1)
        line = text[a:] if b < 0 else text[a:b]
        return len(line) < 120 and len(line.split()) - (end - start) <= max_extra

    def find(self, rule: dict, si: int, heading: int | None, start: int, end: int, title_labels,
             category: str = ""):
        """The cue a requirement asks for (True for a title/URL hit), or None."""
        scope = rule.get("scope", "sentence")
        if scope in ("near", "after"):
            return self._find(rule, scope, si, heading, start, end, title_labels, category)
        key = (id(rule), si, heading, category)  # the answer does not depend on the match
        found = self._find_cache.get(key, _MISSING)
        if found is _MISSING:  # (most lookups miss: .get, not try/except KeyError)
            found = self._find_cache[key] = self._find(rule, scope, si, heading, start, end,
                                                       title_labels, category)
        return found

    def _find(self, rule: dict, scope: str, si: int, heading: int | None, start: int, end: int,
              title_labels, category: str):
        label = "cue:" + rule["cue"]
        if scope == "page":
            return True if label in self.labels or label in title_labels else None
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
        if scope == "unit":
            found = self._find_unit(label, rule.get("weak"), si, heading, title_labels)
            if found is None and rule.get("next") and category:
                found = self.next_offer(rule, si, category)
            return found
        d = self.by_label.get(label)
        if d is not None:  # else no sentence has the cue: only the title can help
            # Searched in order: the sentence, its window (nearest first, before then after),
            # for a heading its list items, then the heading of a list item and its window.
            get = d.get
            c = get(si)
            if c is not None:
                return c
            window = rule.get("window", 0) if scope == "window" else 0
            for k in range(1, window + 1):
                c = get(si - k) or get(si + k)
                if c is not None:
                    return c
            if scope == "items" and self._is_heading(si):  # a heading also speaks for its list
                j = si + 1
                while j < len(self.starts) and j - si <= _HEADING_LOOKBACK and self._is_item(j) \
                        and not self._is_heading(j):
                    c = get(j)
                    if c is not None:
                        return c
                    j += 1
            if heading is not None:  # a list item also has its heading's context
                c = get(heading)
                if c is not None:
                    return c
                for k in range(1, window + 1):
                    c = get(heading - k) or get(heading + k)
                    if c is not None:
                        return c
        if scope == "window" and label in title_labels:
            return True
        return None


def build_pipeline(lang: str, patterns_dir: str | Path | None = None) -> Language:
    """spacy.blank(lang) + sentence splitter + claim phrase matcher (stemwatch_ruler) + claim resolver."""
    patterns_dir = Path(patterns_dir or DEFAULT_PATTERNS_DIR)
    nlp = spacy.blank(lang)
    nlp.max_length = MAX_LENGTH
    if lang != "en":  # split "90%" into "90" "%" as English does, so "%" patterns see the number
        suffixes = list(nlp.Defaults.suffixes or []) + [r"(?<=[0-9])%"]
        nlp.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search
    nlp.add_pipe("stemwatch_ruler", config={"patterns_dir": str(patterns_dir), "lang": lang})
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

    def _result(self, doc: Doc, text: str, lang: str) -> PageAnalysis:
        claims = []
        for span, (stance, cue, severity, ranges) in zip(doc.spans[SPANS_KEY], doc.user_data.get(INFO, ())):
            a, b = span.start_char, span.end_char
            claims.append(Claim(
                category=span.label_,
                stance=stance,
                text=text[a:b],
                sentence=" … ".join(text[x:y] for x, y in ranges),
                start=a,
                end=b,
                pattern=span.id_,
                severity=severity,
                why=self.taxonomy.categories[span.label_].why,
                cue=cue or "",
            ))
        return PageAnalysis(page_kind=doc.user_data.get(KIND, "other"), lang=lang, claims=claims,
                            detector_version=self.version)

    def analyze(self, text: str, *, url: str = "", title: str = "", lang: str = "",
                cues: dict | None = None) -> PageAnalysis:
        text = text or ""
        lang = self.language(text, lang)
        nlp = self.nlps[lang]
        norm = _normalize(text)
        doc = nlp.make_doc(norm)
        doc._context = {"url": url or "", "title": title or "", "cues": cues or {}, "text": norm}
        return self._result(nlp(doc), text, lang)

    def analyze_many(self, pages: Iterable[dict], *, n_process: int = 1,
                     batch_size: int = 32) -> Iterator[PageAnalysis]:
        """Analyse dicts with keys text, url, title, lang, cues; results in input order.

        With n_process > 1, batches go to a pool of worker processes, each running
        ``nlp.pipe`` on its batch and sending back PageAnalysis objects. spaCy's own
        ``nlp.pipe(n_process=...)`` ships every Doc back through to_bytes/from_bytes,
        which costs about 2 ms a page, fifteen times the detection itself (measured
        with benchmarks/detect.py), so it would make more processes slower.
        """
        if n_process <= 1:
            yield from self._pipe(pages, batch_size)
            return
        global _POOL_DETECTOR
        _POOL_DETECTOR = self  # inherited by forked workers; rebuilt from patterns_dir otherwise
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        batches = _batched(pages, batch_size)
        with ctx.Pool(n_process, initializer=_init_worker, initargs=(str(self.patterns_dir),)) as pool:
            while True:
                window = list(itertools.islice(batches, n_process * 4))
                if not window:
                    break
                for results in pool.map(_analyze_batch, [(b, batch_size) for b in window]):
                    yield from results

    def _pipe(self, pages: Iterable[dict], batch_size: int) -> Iterator[PageAnalysis]:
        """English pages stream through one ``nlp.pipe``; a page in another language travels
        through it as an empty placeholder and is analysed with its own pipeline, so order
        is kept without buffering."""
        pending: deque[tuple[str, str, dict]] = deque()

        def feed():
            for page in pages:
                text = page.get("text") or ""
                lang = self.language(text, page.get("lang") or "")
                meta = {"url": page.get("url") or "", "title": page.get("title") or "",
                        "cues": page.get("cues") or {}}
                pending.append((text, lang, meta))
                norm = _normalize(text) if lang == "en" else ""
                yield norm, dict(meta, text=norm)

        for doc, _ in self.nlps["en"].pipe(feed(), as_tuples=True, batch_size=batch_size):
            text, lang, meta = pending.popleft()
            if lang == "en":
                yield self._result(doc, text, lang)
            else:
                yield self.analyze(text, lang=lang, **meta)


_POOL_DETECTOR: Detector | None = None


def _init_worker(patterns_dir: str):
    global _POOL_DETECTOR
    if _POOL_DETECTOR is None or str(_POOL_DETECTOR.patterns_dir) != patterns_dir:
        _POOL_DETECTOR = Detector(patterns_dir)


def _analyze_batch(args) -> list[PageAnalysis]:
    pages, batch_size = args
    return list(_POOL_DETECTOR._pipe(pages, batch_size))


def _batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(itertools.islice(it, max(size, 1))):
        yield batch


@lru_cache(maxsize=1)
def get_detector() -> Detector:
    """The process-wide detector (patterns are loaded once)."""
    return Detector()
