"""``stemwatch_claims``: turns the ruler's matches into claims with a stance, and decides the page kind.

For every page: the page kind from the page-kind cues (pagekind.py). On a page
with a claim candidate whose required cues appear somewhere (rules.page_allows),
the text around the candidates is split into sentences (page_index.py) and a
candidate is kept only when its category's context (taxonomy.json ``requires``)
stands where each rule's scope says: the sentence, its heading, nearby
sentences, the page, or the page title and URL words. A disease needs its offer
in its own unit (sentence, heading + item, bare list under a page that names the
offer, or a later sentence of its paragraph naming the product). Menu labels
(``not_alone``) are dropped; the stance is decided from the context (stance.py),
for an offer made in a later sentence from that sentence too. Kept claims go to
``doc.spans["claims"]``; their stance, cue, severity and sentence ranges to
``doc.user_data[INFO]``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache, partial
from pathlib import Path
from urllib.parse import unquote

from spacy.attrs import IDX
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from analysis.detect.matcher import MATCHES, PhraseTable
from analysis.detect.page_index import MISSING, PageIndex
from analysis.detect.pagekind import PageKindScorer, url_host
from analysis.detect.pattern_files import load_markers, pattern_options
from analysis.detect.rules import Rule, check_order, compile_rules, page_allows
from analysis.detect.sentences import doc_text
from analysis.detect.stance import Decision, StanceRules
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy
from analysis.detect.text import normalize, url_path

SPANS_KEY = "claims"
KIND = "sw_page_kind"  # doc.user_data key: the page kind
# doc.user_data key: per doc.spans["claims"] span, (start char, end char, category, pattern id,
# stance, stance cue, severity, [(start char, end char) of its sentence, heading first])
INFO = "sw_claims"
RAW = "sw_raw"  # doc.user_data key: (cues, claim candidates) as matched, before any rule
_SLUG_SPLIT = re.compile(r"[\W\d_]+")  # URL path to words; digits dropped (page ids are not words)
_MARKERS = load_markers()
ANSWER_MARKS = _MARKERS["answer_marks"]  # "A: Yes." on a Q&A page
_EXTEND = 6  # tokens: how far a claim's text grows to take in the cue that completed it
_NO_EXTEND = _MARKERS["context_only"]  # context, not part of what is claimed
def load_host_rules(path: Path) -> tuple[tuple[str, re.Pattern], ...]:
    """(label, compiled regex) pairs of patterns/hosts.json; none if the file is absent."""
    if not path.exists():
        return ()
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return tuple((label, re.compile(rx)) for label, rx in data["labels"].items())
    except (KeyError, AttributeError, re.error) as e:
        raise ValueError(f"{path}: 'labels' must map cue labels to regexes ({e})") from None


@Language.factory("stemwatch_claims", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_resolver(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimResolver(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimResolver:
    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.nlp = nlp
        self.taxonomy = load_taxonomy(patterns_dir)
        self.kinds = PageKindScorer(patterns_dir / "pagekind.json")
        self.stance = StanceRules(patterns_dir / "stance.json", self.kinds.default_stance)
        self.options = pattern_options(patterns_dir, lang)
        self.host_rules = load_host_rules(patterns_dir / "hosts.json")
        strings = nlp.vocab.strings
        # The ruler's keys, and the keys of this component's own matcher (cue phrases only,
        # for the title and URL words and for pipelines without the ruler).
        ruler = nlp.get_pipe("stemwatch_ruler") if "stemwatch_ruler" in nlp.pipe_names else None
        if ruler is not None and (ruler.table.patterns_dir, ruler.table.lang) == (Path(patterns_dir), lang):
            table, ruler_keys = ruler.table, ruler.keys
        else:
            table = PhraseTable(nlp, patterns_dir, lang)
            ruler_keys = table.keys(cue_label=lambda label: label not in table.sentence_labels)
        self.table = table
        own_keys = table.keys(claims=False, prefix="swc")
        # Weak cues, matched in a sentence only when a rule asks there (PhraseTable.sentence_labels).
        self.sentence_labels = lazy = table.sentence_labels
        sentence_keys = table.keys(claims=False, kinds=False, prefix="sws", cue_label=lambda label: label in lazy)
        self.keys = {strings[k]: meaning for k, (_, meaning) in
                     {**ruler_keys, **own_keys, **sentence_keys}.items()}
        self.sentence_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for key, (docs, _) in sentence_keys.items():
            self.sentence_matcher.add(key, docs)
        # tokens: a cue starting in a sentence may run past its end
        self.sentence_cue_len = max([len(d) for docs, _ in sentence_keys.values() for d in docs], default=1)
        # Keys whose phrase is one cue label and nothing else: the usual match, one lookup.
        self.single_cue = {k: m.cues[0] for k, m in self.keys.items()
                           if len(m.cues) == 1 and not m.kinds and not m.claims}
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for key, (docs, _) in own_keys.items():
            self.matcher.add(key, docs)
        claim_ids = sorted({c for m in self.keys.values() for c in m.claims})
        # Rules per (category, pattern id): the category's plus the pattern's own.
        categories = self.taxonomy.categories
        own = {cat: compile_rules(c.requires) for cat, c in categories.items()}
        self.rules: dict[tuple[str, str], tuple[Rule, ...]] = {
            (label, pid): own[label] + compile_rules(self.options.get(pid, {}).get("requires", []))
            for label, pid in claim_ids}
        self.checks = {key: check_order(rules) for key, rules in self.rules.items()}
        self.excludes = {cat: compile_rules(c.exclude, allow_next=False) for cat, c in categories.items()}

    def __call__(self, doc: Doc) -> Doc:
        meta = doc._context if isinstance(doc._context, dict) else {}
        matches = doc.user_data.pop(MATCHES, None)
        if matches is None:  # no stemwatch_ruler before this component: cues only
            matches = self.matcher(doc)
        single, keys = self.single_cue, self.keys
        cues, candidates = [], []  # (label, start, end); (start, end, category, pattern id)
        kind_hits: dict[str, set[str]] = defaultdict(set)
        for key, start, end in matches:
            label = single.get(key)
            if label is not None:
                cues.append((label, start, end))
                continue
            meaning = keys[key]
            for label in meaning.cues:
                cues.append((label, start, end))
            for kind, phrase in meaning.kinds:
                kind_hits[kind].add(phrase)
            for label, pid in meaning.claims:
                candidates.append((start, end, label, pid))
        doc.user_data[RAW] = (cues, candidates)  # for the learned stage, when there is one
        page_kind = doc.user_data[KIND] = self.kinds.kind(kind_hits, meta.get("url", ""), meta.get("title", ""),
                                                          meta.get("cues"), meta.get("text", ""))
        kept = []
        if candidates:
            labels = {c[0] for c in cues} | self.sentence_labels  # those count as present
            title_labels = _Once(lambda: self._context_labels(meta))
            candidates = self._possible(candidates, labels, title_labels)
            if candidates:
                kept = self._claims(doc, candidates, cues, labels, title_labels, page_kind, meta)
        if page_kind == "other" and any(c[4][0] == "promoted" for c in kept):  # a seller's promise
            page_kind = doc.user_data[KIND] = self.kinds.kind_with_offers(
                kind_hits, meta.get("url", ""), meta.get("title", ""), meta.get("cues"), meta.get("text", ""))
        spans = [Span(doc, c[0], c[1], label=c[2], span_id=c[3]) for c in kept]
        doc.spans[SPANS_KEY] = spans
        doc.user_data[INFO] = [(s.start_char, s.end_char, c[2], c[3]) + c[4] for s, c in zip(spans, kept)]
        return doc

    def _context_labels(self, meta: dict) -> frozenset[str]:
        """Cue labels found in the page title, the words of the URL path and the host."""
        url = meta.get("url") or ""
        slug = _SLUG_SPLIT.sub(" ", unquote(url_path(url))) if url else ""
        found = self._labels_in(normalize(f"{meta.get('title') or ''}\n{slug}").strip())
        host = url_host(url) if "//" in url else ""  # a relative URL names no host
        return found | self._host_labels(host) if host else found

    @lru_cache(maxsize=4096)
    def _host_labels(self, host: str) -> frozenset[str]:
        """Labels of patterns/hosts.json whose regex the host matches (a crawl visits many
        pages of few sites)."""
        return frozenset(label for label, rx in self.host_rules if rx.search(host))

    @lru_cache(maxsize=8192)
    def _labels_in(self, text: str) -> frozenset[str]:
        if not text:
            return frozenset()
        keys = self.keys
        return frozenset(label for k, _, _ in self.matcher(self.nlp.make_doc(text))
                         for label in keys[k].cues if label.startswith("cue:"))

    def _possible(self, candidates: list[tuple], labels: set[str], title_labels) -> list[tuple]:
        """Drop candidates whose required cues appear nowhere on the page: most pages stop here."""
        ok: dict[tuple[str, str], bool] = {}
        rules = self.rules
        out = []
        for c in candidates:
            key = c[2:]
            allowed = ok.get(key)
            if allowed is None:
                allowed = ok[key] = page_allows(rules[key], labels, title_labels)
            if allowed:
                out.append(c)
        return out

    def _sentence_cues(self, doc: Doc, start: int, end: int) -> list[tuple]:
        """(label, start, end) of the sentence-level cues starting in tokens [start, end)."""
        keys = self.keys
        span = doc[start:min(len(doc), end + self.sentence_cue_len - 1)]
        return [(label, a, b) for k, a, b in self.sentence_matcher(span) if a < end for label in keys[k].cues]

    def _pattern_start(self, doc: Doc, start: int, end: int, opts: dict) -> int | None:
        """The claim's start token after the pattern's own checks, or None if they fail."""
        if opts.get("case") == "upper" and not doc[start:end].text.isupper():
            return None
        if end < len(doc) and doc[end].lower_ in opts.get("not_followed_by", ()):
            return None  # "100% safe", "100% natural": not a rate of success
        n = opts.get("after_number")
        if n:
            for i in range(start - 1, max(start - n, 0) - 1, -1):
                if doc[i].like_num:
                    return i
            return None
        return start

    def _claims(self, doc, candidates, cues, labels, title_labels, page_kind, meta) -> list[tuple]:
        """(start, end, category, pattern id, info) of the claims kept, by start."""
        text = doc_text(doc)
        idx = doc.to_array(IDX)
        last = max([c[1] for c in candidates])
        claimed = bytearray(len(doc))  # tokens inside some candidate: their words are never stance cues
        for a, b, _, _ in candidates:
            claimed[a:b] = b"\x01" * (b - a)
        html_cues = meta.get("cues") or {}
        headings = {h.strip().lower() for h in html_cues.get("headings", ()) if isinstance(h, str)}
        candidates.sort(key=lambda c: (c[0], -c[1]))
        sents: list[int] = []
        page = PageIndex(doc, text, idx, int(idx[min([c[0] for c in candidates])]),
                         int(idx[last]) if last < len(idx) else len(text), cues, claimed, labels,
                         title_labels, headings, candidates, sents,
                         self.sentence_labels, partial(self._sentence_cues, doc))
        sents += page.sentences_of([c[0] for c in candidates])
        best: dict[tuple[str, int], tuple] = {}
        options, checks, excludes = self.options, self.checks, self.excludes
        stance, severity = self.stance, self.taxonomy.severity
        answers, headings_of, openings = page.answers, page.headings_of, {}
        for (c_start, c_end, cat, pid), si in zip(candidates, sents):
            kept = best.get((cat, si))
            if kept is not None and kept[4][0] == "promoted":
                continue  # one claim per category and sentence
            if page.is_breadcrumb(si):
                continue  # navigation ("Living with MS > Treatments > Stem cells")
            opts = options.get(pid)
            start = c_start
            if opts is not None:  # most patterns have no options
                start = self._pattern_start(doc, c_start, c_end, opts)
                if start is None or (opts.get("not_alone") and page.is_label(si, c_start, c_end)):
                    continue  # a failed option, or a menu label or heading: not a promise
            heading = headings_of[si]
            if heading is MISSING:
                heading = page.heading_of(si)
            order = checks[(cat, pid)]
            found = [None] * len(order)  # the cue each rule found, in the rules' own order
            for i, rule in order:
                if rule.local:
                    f = page.near(rule, si, c_start, c_end)
                else:
                    f = answers.get((rule.id, si), MISSING)
                    if f is MISSING:
                        f = page.answer(rule, si, heading, cat)
                    if f and rule.offer.weak_before and f is not True and f[0] == rule.offer.weak_before and f[1] >= c_start:
                        f = None  # "Stem Cells and Autism: A Guide for Parents": "for" offers nothing
                if not f:
                    break
                found[i] = f
            else:
                f = True
            if not f or any(page.find(rule, si, heading, c_start, c_end) for rule in excludes[cat]):
                continue
            end = c_end
            support = set()  # other sentences whose cues completed the claim
            offer = None  # (sentence, cue) of an offer made in a following sentence (rule option next)
            for rule, cue in zip(self.rules[(cat, pid)], found):
                if cue is True:
                    continue
                ci = page.sent_index(cue[1])
                if ci == si:
                    if cue[0] not in _NO_EXTEND and max(cue[1] - end, start - cue[2]) <= _EXTEND:
                        start, end = min(start, cue[1]), max(end, cue[2])
                elif ci != heading:
                    support.add(ci)
                    if rule.offer.next and ci > si:
                        offer = (ci, cue)
            first, sent_end, question = page.facts(si)
            opening = openings.get(si)
            if opening is None:
                opening = openings[si] = stance.opening(doc, first, sent_end)
            decided, cue_text, _ = stance.decide(
                doc, cat, c_start, c_end,
                page.cues_in(si) + page.cues_in(heading) if heading is not None else page.cues_in(si),
                first=first, sent_end=sent_end, is_question=question, page_kind=page_kind, opening=opening,
                context_cues=[c for i in sorted(support) for c in page.cues_in(i)] if support else (),
                widened=start, pattern=pid, heading_end=page.last_word(heading) if heading is not None else None)
            if offer is not None and decided == "promoted":
                # the promise is made in the offer's sentence: its negation or question counts
                decided, cue_text, _ = self._offer_stance(doc, page, cat, offer, page_kind)
            answer = None
            if decided is None and question:  # an FAQ question: its answer may make the claim
                answer = page.line_after(si)
                if answer is not None and self._answer_byline(doc, page, answer):
                    answer = page.line_after(answer)  # "Answer from Dr. Lin, surgeon": the answer follows
                if answer is not None:
                    decided, cue_text, _ = self._answer_stance(doc, page, answer, page_kind)
            if decided is None or (kept is not None and decided != "promoted"):
                continue
            through = (offer[0] if offer is not None else answer if answer is not None
                       else si + 1 if si + 1 in support else si)
            best[(cat, si)] = (start, end, cat, pid,
                               (decided, cue_text, severity(cat, decided),
                                page.sentence_ranges(si, heading, through)))
        return sorted(best.values(), key=lambda claim: claim[0])

    def _offer_stance(self, doc, page, category, offer, page_kind) -> Decision:
        """The stance of an offer made in a sentence after the condition's ("Cerebral palsy
        need not be the end. Stem cell therapy cannot cure it."), decided on that sentence
        with its last offer word ("cure", not "therapy") as the claim: the condition it
        offers for, named by a pronoun or not at all, comes after the verb."""
        oi, cue = offer
        cue = [c for c in page.cues_in(oi) if c[0] == cue[0]][-1]
        first, sent_end, question = page.facts(oi)
        return self.stance.decide(doc, category, cue[1], cue[2], page.cues_in(oi), first=first,
                                  sent_end=sent_end, is_question=question, page_kind=page_kind)

    @staticmethod
    def _answer_byline(doc, page, ai: int) -> bool:
        """Sentence ai names who answers ("Answer from Dr. Lin, orthopedic surgeon",
        "Respuesta de la Dra. Carballo"): an answer mark opening a line without a
        sentence's end."""
        first, sent_end, _ = page.facts(ai)
        if first + 1 >= sent_end or doc[first].lower_ not in ANSWER_MARKS or doc[first + 1].text == ":":
            return False  # no mark, or "A: ..." answering on its own line
        return not page.sentence_text(ai).rstrip().endswith((".", "!", "?")) and page.line_after(ai) is not None

    def _answer_stance(self, doc, page, ai: int, page_kind: str) -> Decision:
        """The stance of a question claim decided by its answer, sentence ai (stance.answer_stance)."""
        first, sent_end, question = page.facts(ai)
        if first + 2 < sent_end and doc[first + 1].text == ":" and doc[first].lower_ in ANSWER_MARKS:
            first += 2  # "A: Yes." answers with its second word
        affirms = any(page.first(label, ai) is not None for label in _MARKERS["answer_affirms"])
        return self.stance.answer_stance(doc, page.cues_in(ai), first, sent_end, question, affirms, page_kind)


class _Once:
    """A value computed on first call, then remembered (the title and URL labels)."""
    __slots__ = ("_fn", "_value")

    def __init__(self, fn):
        self._fn, self._value = fn, None

    def __call__(self):
        if self._value is None:
            self._value = self._fn()
        return self._value
