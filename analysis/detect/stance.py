"""Stance of a matched claim from its context: negated, cautionary, reported or promoted.

The matched words say *what* is claimed; the words around them, and the kind
of page, say whether the page makes the claim. Hedges ("may help") are not
cues: a hedged promise is still promoted. The rules and their order are
StanceRules.RULES; their word lists and settings are patterns/stance.json.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path
from dataclasses import dataclass
from typing import NamedTuple

NEGATION = "stance:negation"
STRONG_NEGATION = "stance:negation-strong"
CAUTION = "stance:caution"
REPORTING = "stance:reporting"
RESEARCH = "stance:research"
OFFER = "stance:offer"
AFFIRM = "stance:affirm"
TESTIMONIAL = "stance:testimonial"
OWN_VOICE = "stance:own-voice"  # the page attributing to itself: "we believe", "ask about our"
IDIOM = "stance:idiom"  # phrases whose words are no stance cue: "claim your", "say goodbye to"
# Cues that still count when they sit in a sentence that only supplied the claim's context.
CONTEXT_LABELS = frozenset({STRONG_NEGATION, CAUTION, REPORTING, RESEARCH, OWN_VOICE, IDIOM})
# Voices that make attribution and research words the page's own, not someone else's.
_OWN_VOICES = frozenset({TESTIMONIAL, OWN_VOICE})
_NEGATIONS = frozenset({NEGATION, STRONG_NEGATION})
_ATTRIBUTIONS = frozenset({REPORTING, RESEARCH})
_DENIALS = frozenset({CAUTION, STRONG_NEGATION})
# Cues that keep an answer from affirming its question: it denies, warns, reports or describes research.
_ANSWER_DOUBTS = frozenset({NEGATION, STRONG_NEGATION, CAUTION, REPORTING, RESEARCH})


class Cue(NamedTuple):
    """A cue match. The detector passes plain (label, start, end) tuples, read by index."""
    label: str
    start: int  # token offsets
    end: int


def without_idioms(cues: list[Cue]) -> list[Cue]:
    """The cues that are neither an idiom nor inside one's words: "claim" in "Claim your
    free consultation" reports nothing, "say" in "say goodbye to knee pain" neither."""
    spans = [(c[1], c[2]) for c in cues if c[0] == IDIOM]
    return [c for c in cues if c[0] != IDIOM and not any(a <= c[1] and c[2] <= b for a, b in spans)]


def _inside_other_cues(cues: list[Cue]):
    """A test: does a cue lie inside the words of some cue that is not a plain negation?
    By the furthest end among cues starting at or before it (sorted once), so that a
    sentence with many cues costs n log n per claim, not n squared: a page without
    sentence ends made one sentence of thousands of cues."""
    others = sorted((c[1], c[2]) for c in cues if c[0] != NEGATION)
    starts = [a for a, _ in others]
    reach = list(accumulate((b for _, b in others), max))

    def covered(c: Cue) -> bool:
        i = bisect_right(starts, c[1])
        return i > 0 and reach[i - 1] >= c[2]
    return covered


class Decision(NamedTuple):
    """A claim's stance (None: not a claim), the words that decided it, and the rule that fired."""
    stance: str | None
    cue: str
    rule: str


@dataclass(frozen=True)
class _Claim:
    """What the stance rules read of one claim, gathered once by StanceRules.decide."""
    doc: object
    category: str
    start: int
    end: int
    pattern: str
    first: int
    sent_end: int
    is_question: bool
    page_kind: str
    own: list  # the sentence's cues (and its context's), before negations are set aside
    kept: list  # the cues that count
    labels: frozenset
    opener: str
    conceded: int | None
    widened: int | None
    heading_end: int | None
    denial: str  # the stance a denial gives on this page kind: negated or cautionary

    def of(self, label: str):
        return (c for c in self.kept if c[0] == label) if label in self.labels else ()

    def text(self, cue) -> str:
        return self.doc[cue[1]:cue[2]].text


class StanceRules:
    """The stance rules of patterns/stance.json, tried in the order of RULES."""

    RULES = ("strong-negation", "caution", "negating-opener", "near-negation", "attribution",
             "question", "page-kind")

    def __init__(self, config_path: str | Path, default_stance: dict[str, str]):
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.window = cfg["negation_window"]
        self.breaks = frozenset(cfg["clause_breaks"])
        self.negated_kinds = frozenset(cfg["negated_on_kinds"])
        self.question_stance = cfg["question_stance"]
        self.affirmative_answers = frozenset(cfg.get("affirmative_answers", ()))
        self.sentence_negators = frozenset(cfg["sentence_negators"])
        self.concessives = frozenset(cfg["concessives"])
        self.research_not_excusing = frozenset(cfg["research_does_not_excuse"])
        self.default_stance = default_stance
        self._rules = tuple((name, getattr(self, "_" + name.replace("-", "_"))) for name in self.RULES)

    def concession_end(self, doc, first: int, limit: int, opener: str | None = None) -> int | None:
        """End of an opening concessive clause ("While there is no cure, ...") or None.
        opener: the lower-cased first word when the caller has it already."""
        if first >= limit:
            return None
        if (doc[first].lower_ if opener is None else opener) not in self.concessives:
            return None
        for k in range(first + 1, min(limit, first + 40)):
            if doc[k].text == ",":
                return k
        return None

    def opening(self, doc, first: int, sent_end: int) -> tuple[str, int | None]:
        """(the sentence's lower-cased first word, the end of its opening concessive clause
        or None): what decide needs of a sentence, the same for every claim in it."""
        opener = doc[first].lower_ if first < sent_end else ""
        return opener, self.concession_end(doc, first, sent_end, opener)

    def decide(self, doc, category: str, start: int, end: int, cues: list[Cue], *,
               first: int, sent_end: int, is_question: bool = False, page_kind: str = "other",
               context_cues: list[Cue] = (), opening: tuple[str, int | None] | None = None,
               widened: int | None = None, pattern: str = "",
               heading_end: int | None = None) -> Decision:
        """The Decision for the claim at tokens [start, end): the first of RULES that fires.
        Before the rules run, cues that are no cue here are set aside: cues inside the
        claim's own words ("no risk of rejection" is the claim), idioms and the cues inside
        them ("claim your", "nothing short of"), negations inside an opening concession
        ("While there is no cure for ALS, ...") and cautions inside an affirming idiom
        ("avoid risky surgery").

        cues: the (label, start, end) cues of the claim's sentence (and heading), without
        those inside other claims' words; first/sent_end: the sentence's first word token
        and end; context_cues: cues of sentences that supplied the claim's context;
        opening: the sentence's ``opening()``, when the caller has it already; widened: the
        start of the claim's text when it was widened to take in its offer words; pattern:
        the claim's pattern id (research_does_not_excuse names categories and pattern ids);
        heading_end: the last token of the heading of a list item, whose negation denies
        every item ("Conditions we do not treat:").
        """
        own = [c for c in cues if not (c[1] < end and c[2] > start)]
        if context_cues:
            extra = [c for c in context_cues if c[0] in CONTEXT_LABELS]
            if any(c[0] in _ATTRIBUTIONS for c in own):
                # its own sentence names the source: "The clinic's website says its cells
                # regrow cartilage" reports, whatever a sentence before calls the clinic
                extra = [c for c in extra if c[0] not in _DENIALS]
            own += extra
        opener, conceded = self.opening(doc, first, sent_end) if opening is None else opening
        labels = frozenset(c[0] for c in own)
        if IDIOM in labels:
            own = without_idioms(own)
            labels = frozenset(c[0] for c in own)
        kept = own
        if not labels.isdisjoint(_NEGATIONS):  # only negations are ever set aside
            covered = _inside_other_cues(own)
            kept = []
            for c in own:
                label = c[0]
                if label == NEGATION and covered(c):
                    continue  # "no" in "no proof", "nothing" in "nothing short of"
                if label in _NEGATIONS and conceded is not None and first <= c[1] and c[2] <= conceded:
                    continue  # "While there is no cure for ALS, our protocol ..."
                kept.append(c)
            labels = frozenset(c[0] for c in kept)
        if AFFIRM in labels and CAUTION in labels:  # "risky" in "avoid risky surgery" warns of the surgery
            affirms = [(c[1], c[2]) for c in kept if c[0] == AFFIRM]
            kept = [c for c in kept if not (c[0] == CAUTION and any(a <= c[1] and c[2] <= b for a, b in affirms))]
            labels = frozenset(c[0] for c in kept)
        ctx = _Claim(doc, category, start, end, pattern, first, sent_end, is_question, page_kind,
                     own, kept, labels, opener, conceded, widened, heading_end,
                     "negated" if page_kind in self.negated_kinds else "cautionary")
        for name, rule in self._rules:
            found = rule(ctx)
            if found is not None:
                return Decision(found[0], found[1], name)
        raise AssertionError("the page-kind rule always decides")

    # The rules, in the order they are tried: the first that fires decides the stance.
    # Each takes the claim's context (_Claim) and returns (stance, cue text) or None.

    def _strong_negation(self, c: "_Claim"):
        """A strong negation anywhere in the sentence: "we do not claim to cure"."""
        for cue in c.of(STRONG_NEGATION):
            return c.denial, c.text(cue)
        return None

    def _caution(self, c: "_Claim"):
        """A caution cue: "beware of", "so-called"."""
        for cue in c.of(CAUTION):
            return "cautionary", c.text(cue)
        return None

    def _negating_opener(self, c: "_Claim"):
        """The sentence opens with a negator ("No therapy is approved for ..."), unless
        punctuation follows it ("No: there is no risk ..." answers a question), it opens a
        concession, or an affirming idiom starts there ("no longer")."""
        doc, first = c.doc, c.first
        if c.opener in self.sentence_negators and c.start > first and c.conceded is None and \
                not (first + 1 < c.sent_end and doc[first + 1].is_punct) and \
                not any(cue[0] == AFFIRM and cue[1] == first for cue in c.own):
            return c.denial, doc[first].text
        return None

    def _near_negation(self, c: "_Claim"):
        """A negation ending at most negation_window tokens before the matched words (or
        before the offer words the claim was widened to: "not able to offer stem cell
        therapy for diabetes", or the heading of its list: "Conditions we do not treat:"),
        with no clause break between."""
        near = (c.start,) if c.widened is None or c.widened >= c.start else (c.start, c.widened)
        if c.heading_end is not None:
            near += (c.heading_end,)
        for cue in c.of(NEGATION):
            if any(cue[2] <= s and s - cue[2] <= self.window and not self._broken(c.doc, cue[2], s)
                   for s in near):
                return c.denial, c.text(cue)
        return None

    def _attribution(self, c: "_Claim"):
        """A reporting cue, then a research cue, unless a patient or the page itself speaks
        (testimonial, own voice). Research does not excuse the categories and pattern ids of
        research_does_not_excuse, whose claims are themselves appeals to research."""
        if not c.labels.isdisjoint(_OWN_VOICES):
            return None
        appeal = c.category in self.research_not_excusing or c.pattern in self.research_not_excusing
        for label in ((REPORTING,) if appeal else (REPORTING, RESEARCH)):
            for cue in c.of(label):
                return "reported", c.text(cue)
        return None

    def _question(self, c: "_Claim"):
        """A question without an offer cue is no claim (question_stance null drops it; its
        answer may still make one: answer_stance)."""
        if c.is_question and OFFER not in c.labels:
            return self.question_stance, "question"
        return None

    def _page_kind(self, c: "_Claim"):
        """No cue decided: the page kind's default stance (pagekind.json)."""
        return self._default(c.page_kind)

    def _default(self, page_kind: str) -> tuple[str, str]:
        stance = self.default_stance.get(page_kind, "promoted")
        return stance, ("" if stance == "promoted" else f"page kind: {page_kind}")

    def answer_stance(self, doc, cues: list[Cue], first: int, sent_end: int, is_question: bool,
                      affirms: bool, page_kind: str = "other") -> Decision:
        """(stance, cue text) of a question whose answer affirms it ("Can stem cells help my
        son's autism?" / "Many families see improvements ..."): the answer opens with a yes
        or holds an outcome or offer word (``affirms``) and has no negation, caution,
        attribution or research cue. The page kind's default stance then decides, as for
        any claim without a cue (an explainer on a news page reports); otherwise None: the
        question stays no claim."""
        if is_question or first >= sent_end or doc[first].lower_ in self.sentence_negators:
            return Decision(None, "question", "question")
        if any(c[0] in _ANSWER_DOUBTS for c in without_idioms(cues)):
            return Decision(None, "question", "question")
        if not (affirms or doc[first].lower_ in self.affirmative_answers):
            return Decision(None, "question", "question")
        return Decision(*self._default(page_kind), "answer")

    def _broken(self, doc, i: int, j: int) -> bool:
        return any(doc[k].lower_ in self.breaks for k in range(i, j))
