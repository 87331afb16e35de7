"""Sentences, lines, headings and cues of one page, and the context rules answered on them.

Built only for a page that has a plausible claim candidate. Positions are
token offsets of the spaCy doc; sentences are numbered in page order. Cues are
``(label, start, end)`` tuples in the phrase matcher's order (by start token).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from spacy.tokens import Doc

from analysis.detect.pattern_files import load_markers
from analysis.detect.rules import Rule
from analysis.detect.sentences import sentence_cuts, token_starts

REGION_MARGIN = 1500  # characters around the candidates that are segmented into sentences
HEADING_LOOKBACK = 40  # lines: how far above a list item its heading may stand
BULLET_WORDS = 12  # a list item holds at most this many words ...
MARKED_ITEM_WORDS = 40  # ... or this many after a bullet mark ("- ", "• ", "* ")
BULLET_MARKS = ("- ", "• ", "* ", "· ", "– ", "▪ ", "◦ ")
BREADCRUMB_MARKS = (" > ", " › ", " » ")  # two on one line make a trail of links ("/" also separates alternatives)
BREADCRUMB_CHARS = 200  # a trail of links is at most this long
HEADING_WORDS, HEADING_CHARS = 8, 80  # a heading line found by its form alone is at most this long
NEXT_OFFER_SENTENCES = 3  # rule option next: how far after a condition its offer may stand
STANCE_PREFIX = "stance:"
QUESTION_MARKS = load_markers()["question_marks"]  # a line so opened is a Q&A page's question
LIST_INTRO = load_markers()["list_intro"]  # words that introduce a list ("We treat"): the line heads it
_NONE: frozenset = frozenset()
MISSING = object()  # not in a cache (None is an answer)


class PageIndex:
    """Answers the context rules for the candidates of one page.

    Only the lines around the candidates, text[lo:hi] widened to whole lines plus a
    margin, are split into sentences: sentences further away cannot supply context
    (windows are a few sentences). Before and after that region the doc is one
    pseudo-sentence each, whose cues do not count. The boundaries stay here: writing
    them to the doc (set_sentences) would cost a tenth of the detection and nothing
    downstream reads doc.sents.
    """

    def __init__(self, doc: Doc, text: str, idx, lo: int, hi: int, cues: list[tuple], claimed: bytearray,
                 labels: set[str], title_labels, headings: set[str], candidates: list[tuple], sents: list[int],
                 sentence_labels: frozenset[str] = frozenset(), sentence_cues=None):
        """idx: the tokens' character offsets; [lo, hi): characters the candidates span;
        claimed: 1 for tokens inside some candidate (their words are never stance cues);
        labels: every cue label on the page; title_labels(): the labels of the page title
        and URL words (computed on first use); headings: lower-cased heading texts from
        the HTML; candidates: (start, end, category, ...) tuples, sents: their sentences
        (filled by the caller once the sentences are known); sentence_labels: the cue
        labels not among ``cues``, which sentence_cues(start, end) matches on demand in
        tokens [start, end)."""
        self.doc, self.text, self.labels = doc, text, labels
        self._title_fn, self._title = title_labels, None
        self.headings = headings
        self.candidates, self.candidate_sentences = candidates, sents
        self._candidate_sents: dict[str, set[int]] | None = None
        n = len(text)
        lo = text.rfind("\n", 0, max(0, lo - REGION_MARGIN)) + 1
        hi = text.find("\n", min(n, hi + REGION_MARGIN))
        hi = n if hi < 0 else hi + 1
        cuts = sentence_cuts(text, lo, hi)
        if lo > 0:
            cuts.insert(0, lo)
        if hi < n:
            cuts.append(hi)
        self.starts = starts = token_starts(idx, cuts, len(doc))
        bounds = idx.take(starts).tolist()
        self.n = len(starts)
        self.outside = set()
        if lo > 0:
            self.outside.add(0)
        if hi < n and bounds[-1] >= hi:
            self.outside.add(self.n - 1)
        bounds.append(n)
        self.bounds = bounds  # sentence si spans characters bounds[si]:bounds[si + 1]
        self.cues, self.claimed = cues, claimed
        self._cue_starts: list[int] | None = None
        self._by_sent: list[list | None] = [None] * self.n
        self._by_label: dict[str, dict[int, tuple]] = {}  # label -> {sentence: its first cue there}
        self._cues_of: dict[str, list[tuple]] | None = None
        self.sentence_labels, self._sentence_cues = sentence_labels, sentence_cues
        self._sentence_firsts: dict[int, dict[str, tuple]] = {}
        self._line_info: list[tuple | None] = [None] * self.n
        self.headings_of: list = [MISSING] * self.n  # heading_of answers, read directly by the resolver
        self._facts: list[tuple | None] = [None] * self.n
        self.answers: dict[tuple[int, int], object] = {}
        self._breadcrumbs: dict[int, bool] = {}

    # sentences
    def sentences_of(self, tokens: list[int]) -> list[int]:
        starts = self.starts
        return [bisect_right(starts, t) - 1 for t in tokens]

    def sent_index(self, token_i: int) -> int:
        return bisect_right(self.starts, token_i) - 1

    def sentence_text(self, si: int) -> str:
        return self.text[self.bounds[si]:self.bounds[si + 1]]

    # cues, looked up on demand: most of a page's cues are never read
    def cues_in(self, si: int) -> list[tuple]:
        """The cues of sentence si in matcher order, without the stance cues whose words lie
        inside some candidate; none in the pseudo-sentences outside the region."""
        got = self._by_sent[si]
        if got is None:
            got = []
            if si not in self.outside:
                starts = self._cue_starts
                if starts is None:
                    starts = self._cue_starts = [c[1] for c in self.cues]
                a = bisect_left(starts, self.starts[si])
                b = bisect_left(starts, self.starts[si + 1]) if si + 1 < self.n else len(starts)
                claimed = self.claimed
                got = [c for c in self.cues[a:b]
                       if not (claimed[c[1]] and claimed[c[2] - 1] and c[0].startswith(STANCE_PREFIX))]
            self._by_sent[si] = got
        return got

    def by_label(self, label: str) -> dict[int, tuple]:
        """{sentence: the first cue with this label there}, built on first use."""
        d = self._by_label.get(label)
        if d is None:
            groups = self._cues_of
            if groups is None:  # the page's cues by label, in one pass
                groups = self._cues_of = {}
                for c in self.cues:
                    g = groups.get(c[0])
                    if g is None:
                        groups[c[0]] = [c]
                    else:
                        g.append(c)
            d = self._by_label[label] = {}
            starts, outside = self.starts, self.outside
            for c in reversed(groups.get(label, ())):
                si = bisect_right(starts, c[1]) - 1
                if si not in outside:
                    d[si] = c
        return d

    def first(self, label: str, si: int):
        """The first cue with this label in sentence si, or None."""
        if label in self.sentence_labels:
            return self._matched_in(si).get(label)
        return self.by_label(label).get(si)

    def _matched_in(self, si: int) -> dict[str, tuple]:
        """{label: first cue} of the cues matched on demand in sentence si."""
        got = self._sentence_firsts.get(si)
        if got is None:
            got = self._sentence_firsts[si] = {}
            if si not in self.outside:
                end = self.starts[si + 1] if si + 1 < self.n else len(self.doc)
                for c in reversed(self._sentence_cues(self.starts[si], end)):
                    got[c[0]] = c
        return got

    def title_labels(self) -> frozenset[str]:
        if self._title is None:
            self._title = self._title_fn()
        return self._title

    def word_bounds(self, si: int) -> tuple[int, int]:
        """The sentence's first non-space token and its end (token offsets)."""
        first = self.starts[si]
        end = self.starts[si + 1] if si + 1 < self.n else len(self.doc)
        doc = self.doc
        while first < end and doc[first].is_space:
            first += 1
        return first, end

    def last_word(self, si: int) -> int:
        """The sentence's last token that is not white space."""
        first, end = self.facts(si)[:2]
        doc = self.doc
        while end - 1 > first and doc[end - 1].is_space:
            end -= 1
        return end - 1

    def is_question(self, si: int) -> bool:
        """The sentence asks: it ends in "?", or it stands on a line that a Q&A page marks as
        the question ("Q: My chiropractor says the shot will regrow cartilage. Is it worth
        it?"): the asker reports what they were told."""
        if self.sentence_text(si).rstrip().endswith("?"):
            return True
        a = self._line_span(si)[0]
        return self.text.startswith(QUESTION_MARKS, a)

    def facts(self, si: int) -> tuple[int, int, bool]:
        """(first word token, end token, is a question) of sentence si, computed once."""
        got = self._facts[si]
        if got is None:
            got = self._facts[si] = self.word_bounds(si) + (self.is_question(si),)
        return got

    def line_after(self, si: int) -> int | None:
        """The sentence opening the line after sentence si's, if si ends its line (a
        question's answer on an FAQ page)."""
        nxt = si + 1
        if nxt >= self.n or nxt in self.outside or not self._ends_line(si):
            return None
        return nxt

    def _sentences_with(self, category: str) -> set[int]:
        """The sentences holding a candidate of this category."""
        if self._candidate_sents is None:
            self._candidate_sents = {}
            for c, si in zip(self.candidates, self.candidate_sentences):
                self._candidate_sents.setdefault(c[2], set()).add(si)
        return self._candidate_sents.get(category, _NONE)

    def sentence_ranges(self, si: int, heading: int | None, through: int | None = None) -> list[tuple[int, int]]:
        """Character ranges of the claim's sentence, its heading first, then the sentences
        after it up to ``through`` (where the offer was made)."""
        out = []
        last = si if through is None else max(si, through)
        for i in ([heading] if heading is not None else []) + list(range(si, last + 1)):
            a = self.bounds[i]
            t = self.text[a:self.bounds[i + 1]]
            out.append((a + len(t) - len(t.lstrip()), a + len(t.rstrip())))
        return out

    # lines and headings
    def _ends_line(self, si: int) -> bool:
        if si == self.n - 1:
            return True
        a, k = self.bounds[si], self.bounds[si + 1] - 1
        text = self.text
        while k > a and text[k] in " \t":
            k -= 1
        return text[k] == "\n"

    def _whole_line(self, si: int) -> bool:
        return (si == 0 or self._ends_line(si - 1)) and self._ends_line(si)

    def _line(self, si: int) -> tuple[bool, bool]:
        """(is a list item, is a heading) for sentence si, computed once."""
        info = self._line_info[si]
        if info is None:
            item = heading = False
            if self._whole_line(si):
                text = self.sentence_text(si)
                line = text.strip()
                heading = bool(line) and (line.endswith(":") or line.lower() in self.headings
                                          or self._heads_prose(si, line) or self._heads_bullets(si, line)
                                          or self._introduces_list(si, line))
                words = len(text.split())
                item = 0 < words and (words <= BULLET_WORDS and len(text) < 200
                                      or words <= MARKED_ITEM_WORDS and line.startswith(BULLET_MARKS))
            elif self._ends_line(si) and self.sentence_text(si).rstrip().endswith(":"):
                # a paragraph's last sentence introducing the list below ("No product is
                # authorised. Products are advertised with claims that they:")
                heading = True
            info = self._line_info[si] = (item, heading)
        return info

    def _heads_prose(self, si: int, line: str) -> bool:
        """A short capitalised line without a sentence's closing punctuation, over a line
        of prose: a heading in text that has lost its markup ("Alzheimer's Disease" over
        "Stem cell therapy can improve memory."), as scanned text files and pages whose
        headings are styled paragraphs are."""
        if line[-1] in ".,;" or not line[0].isupper() or not self._title_form(si, line):
            return False
        if self._follows_item(si):
            return False  # the last item of a list ("Conditions we treat:" ... "COPD")
        nxt = self.sentence_text(si + 1).strip()
        words = len(nxt.split())
        # the next line is prose: a sentence that does not fill its line, or a long or
        # closed sentence (a list item is short and open: "Multiple sclerosis")
        return words > 0 and (not self._ends_line(si + 1) or words > BULLET_WORDS
                              or (words >= 4 and nxt.endswith((".", "!", "?"))))

    def _heads_bullets(self, si: int, line: str) -> bool:
        """A short line without closing punctuation over a bulleted line: the title of the
        list ("Conditions we treat" over "• COPD"), as text that lost its markup shows it."""
        if line[-1] in ".,;!?" or line.startswith(BULLET_MARKS) or not self._title_form(si, line):
            return False
        return self.sentence_text(si + 1).strip().startswith(BULLET_MARKS) and self._whole_line(si + 1)

    def _introduces_list(self, si: int, line: str) -> bool:
        """A short unpunctuated line ending in words that introduce a list ("We treat",
        "Conditions we treat": cue:list-intro) over a line of its own: the title of a list
        whose items carry no bullets, as extracted HTML lists show them."""
        if line[-1] in ".,;!?" or not self._title_form(si, line):
            return False
        cue = self.by_label(LIST_INTRO).get(si)
        return cue is not None and cue[2] - 1 == self.last_word(si) and self._whole_line(si + 1) \
            and not self._follows_item(si)  # a link in a menu ("Home", "Conditions We Treat", ...)

    def _follows_item(self, si: int) -> bool:
        """The line above is a short open line of its own, as a list item or a menu link is."""
        if si == 0 or si - 1 in self.outside or not self._whole_line(si - 1):
            return False
        prev = self.sentence_text(si - 1)
        return prev.count("\n") < 2 and not prev.rstrip().endswith((".", "!", "?")) \
            and len(prev.split()) <= BULLET_WORDS

    def _title_form(self, si: int, line: str) -> bool:
        """Short enough for a heading found by its form alone, with a sentence after it."""
        return len(line) <= HEADING_CHARS and len(line.split()) <= HEADING_WORDS \
            and si + 1 < self.n and si + 1 not in self.outside

    def heading_of(self, si: int) -> int | None:
        """The heading line a list item sits under ("Conditions we treat:" for "Autism")."""
        found = self.headings_of[si]
        if found is MISSING:
            found = None
            item, heading = self._line(si)
            if item and not heading:
                j = si - 1
                while j >= 0 and si - j <= HEADING_LOOKBACK:
                    item, heading = self._line(j)
                    if heading:
                        found = j
                        break
                    if not item:
                        break
                    j -= 1
            self.headings_of[si] = found
        return found

    def is_breadcrumb(self, si: int) -> bool:
        """The sentence's line is a trail of links ("Living with MS > Treatments > Stem
        cells"): navigation, whose words promise nothing."""
        found = self._breadcrumbs.get(si)
        if found is None:
            found = False
            sentence = self.sentence_text(si)  # a trail has no sentence ends: it is one sentence
            if any(mark in sentence for mark in BREADCRUMB_MARKS):
                a, b = self._line_span(si)
                line = self.text[a:b]
                found = len(line) <= BREADCRUMB_CHARS and any(line.count(mark) >= 2 for mark in BREADCRUMB_MARKS)
            self._breadcrumbs[si] = found
        return found

    def is_label(self, si: int, start: int, end: int, max_extra: int = 3) -> bool:
        """The sentence's line holds little but the match: a menu link or a
        heading ("Success Stories", "Read our patient stories")."""
        a, b = self._line_span(si)  # the whole line ("Real Patients. Real Results.")
        return b - a < 120 and len(self.text[a:b].split()) - (end - start) <= max_extra

    def _line_span(self, si: int) -> tuple[int, int]:
        """Character offsets of the whole line (or lines) that sentence si stands on."""
        text = self.text
        a = text.rfind("\n", 0, self.bounds[si] + 1) + 1
        b = text.find("\n", self.bounds[si + 1] - 1)
        return a, (b if b >= 0 else len(text))

    # rules
    def find(self, rule: Rule, si: int, heading: int | None, start: int, end: int, category: str = ""):
        """The cue a rule asks for (True for a title/URL or page-wide hit), or None.
        Answers that do not depend on the match's own tokens are cached per sentence."""
        if rule.local:
            return self.near(rule, si, start, end)
        found = self.answers.get((rule.id, si), MISSING)
        if found is MISSING:
            found = self.answer(rule, si, heading, category)
        return found

    def answer(self, rule: Rule, si: int, heading: int | None, category: str = ""):
        """find() for a rule that is not local, computed and put in the cache ``answers``
        (the resolver reads the cache itself: the lookup is the hot path)."""
        found = self.answers[(rule.id, si)] = self._find(rule, rule.scope, si, heading, category)
        return found

    def near(self, rule: Rule, si: int, start: int, end: int):
        """Scopes near/after: the cue within ``distance`` tokens after the match (or before, near)."""
        d, label, before = rule.distance, rule.label, rule.scope == "near"
        for c in self.cues_in(si):
            if c[0] != label:
                continue
            if c[1] >= end and c[1] - end <= d:
                return c
            if before and c[2] <= start and start - c[2] <= d:
                return c
        return None

    def _find(self, rule: Rule, scope: str, si: int, heading: int | None, category: str):
        label = rule.label
        if scope == "page":
            return True if label in self.labels or label in self.title_labels() else None
        if scope == "unit":
            # _has inlined for the sentence (the hot path: most unit rules stop here)
            by_label = self._by_label
            d = by_label.get(label)
            if d is None:
                d = self.by_label(label)
            c = d.get(si)
            if c is None and rule.offer.weak:
                p = by_label.get(rule.offer.partner)
                if p is None:
                    p = self.by_label(rule.offer.partner)
                if si in p:
                    c = self.first(rule.offer.weak, si)
            if c is None and heading is not None:
                c = self._find_unit(rule, si, heading)
            if c is None and rule.offer.next and category:
                c = self._next_offer(rule, si, category)
            if c is None and rule.offer.weak_before and si in self.by_label(rule.offer.partner):
                # last: the resolver keeps it only if it stands before the claim
                c = self.first(rule.offer.weak_before, si)
            return c
        d = self.by_label(label)
        if d:  # else no sentence has the cue: only the title can help
            # Searched in order: the sentence, its window (nearest first, before then after),
            # for a heading its list items, then the heading of a list item and its window.
            get = d.get
            c = get(si)
            if c is not None:
                return c
            window = rule.window
            for k in range(1, window + 1):
                c = get(si - k) or get(si + k)
                if c is not None:
                    return c
            if scope == "items" and self._line(si)[1]:  # a heading also speaks for its list
                j = si + 1
                while j < self.n and j - si <= HEADING_LOOKBACK:
                    item, is_heading = self._line(j)
                    if not item or is_heading:
                        break
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
        if scope == "window" and label in self.title_labels():
            return True
        return None

    def _has(self, si: int, rule: Rule):
        """The rule's cue in sentence si, or its weak cue when the partner cue stands there too."""
        c = self.first(rule.label, si)
        if c is None and rule.offer.weak and self.first(rule.offer.partner, si) is not None:
            c = self.first(rule.offer.weak, si)
            if c is None and rule.offer.weak_before:  # a heading stands before its items
                c = self.first(rule.offer.weak_before, si)
        return c

    def _find_unit(self, rule: Rule, si: int, heading: int):
        """Scope ``unit`` beyond the claim's own sentence (which _find has read): for a list
        item, its heading; for an item of a bare list (no closing punctuation) under a
        heading that names no offer ("Neurological" on a conditions page), the page title
        or URL words."""
        c = self._has(heading, rule)
        if c is not None:
            return c
        if rule.label in self.title_labels() and not self.sentence_text(si).rstrip().endswith((".", "!", "?")):
            return True
        return None

    def _next_offer(self, rule: Rule, si: int, category: str):
        """Rule option ``next``: one of the NEXT_OFFER_SENTENCES following sentences of the
        paragraph holds the offer and its product (both cues, the weak one not sufficing),
        none up to it names a condition of its own, the offer's sentence names no other
        target (``next_unless``: a joint, an injury, surgery), and beyond the very next
        sentence it speaks in the page's own voice (``next_voice``: we, our, you). A
        condition page introduces the disease and makes the offer a sentence or two later:
        "Cerebral palsy need not be the end. We have seen great improvements in children
        treated with stem cell therapy." A heading line ("Autism:") speaks for the
        paragraph under it. A paragraph of prose may also be answered by the first
        sentences of the next one, in the page's own voice, as condition pages write
        ("Lupus and Crohn's disease share one root problem. [new paragraph] Our infusions
        help retrain the immune system, so flare-ups become rarer.")."""
        j, last = si, si + NEXT_OFFER_SENTENCES
        crossings = 1 if self._ends_prose(si) else 0  # paragraph ends the search may pass
        own_paragraph = True  # no paragraph end passed yet
        if self._ends_line(si):
            if self._line(si)[1]:
                last += 1  # the heading's own line does not count
            elif crossings:
                crossings, own_paragraph = 0, False
            else:
                return None  # a line of its own that is neither heading nor prose (a list item, a title)
        with_category = self._sentences_with(category)
        while j < last:
            j += 1
            if j >= self.n or j in self.outside or j in with_category:
                return None
            if self._line(j)[1]:
                return None  # a heading: another section
            if self.first(rule.offer.next, j) is not None:
                c = self.first(rule.label, j)
                if c is not None:
                    if rule.offer.next_unless and self.first(rule.offer.next_unless, j) is not None:
                        return None  # an offer for something else ("for knee pain", "after surgery")
                    if (j == si + 1 and own_paragraph) or not rule.offer.next_voice \
                            or self.first(rule.offer.next_voice, j) is not None:
                        return c
                    # further away, only the page's own voice ("our", "we", "you") ties the
                    # offer to the condition: "Some clinics claim stem cells can help" does not
            if self._ends_line(j):
                if not crossings:
                    return None  # the paragraph ends
                crossings, own_paragraph = 0, False
        return None

    def _ends_prose(self, si: int) -> bool:
        """Sentence si's paragraph is prose: its line closes like a sentence and holds more
        words than a list item does."""
        a, b = self._line_span(si)
        line = self.text[a:b].rstrip()
        return line.endswith((".", "!")) and len(line.split()) > BULLET_WORDS
