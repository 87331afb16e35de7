"""``stemwatch_ruler``: the claim and cue phrases of one language in one PhraseMatcher.

spaCy's span_ruler builds a Span for every match and a SpanGroup per doc, which
cost more than the matching itself, and most candidates are dropped by the
context rules; so this component leaves the plain ``(key, start, end)`` match
tuples in ``doc.user_data[MATCHES]`` for ``stemwatch_claims`` to sort out. The
cue phrases (``context_``, ``stance_``, ``pagekind_<lang>.jsonl``) share the
pass: one walk over the tokens instead of two (measured: 34 against 52 us a page).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from analysis.detect.pattern_files import claim_patterns, cue_phrases, pattern_options
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy

MATCHES = "sw_matches"  # doc.user_data key: every (key, start, end) match of the ruler


def claim_phrases(patterns_dir: Path, lang: str) -> dict[tuple[str, str], list[str]]:
    """Claim phrases by (category, pattern id); the matcher key is ``category|id``."""
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in claim_patterns(patterns_dir, lang):
        by_key[(row["label"], row["id"])].append(row["pattern"])
    return by_key


class PhraseKey(NamedTuple):
    """What a match of one phrase means: a phrase can be a claim pattern, a cue of
    several labels and a page-kind cue at once, and gets one matcher key for all of it
    (PhraseMatcher spends about 3,500 instructions per match, more than on the tokens)."""
    cues: tuple[str, ...]  # context and stance cue labels
    kinds: tuple[tuple[str, str], ...]  # (page kind, phrase)
    claims: tuple[tuple[str, str], ...]  # (category, pattern id)


class PhraseTable:
    """Every claim and cue phrase of one language, read from the files and tokenised once.

    The ruler and the resolver each want the phrases grouped by a different subset of
    their meanings (``keys``); building each grouping from the files cost about 70 ms,
    four times per language when a Detector started. The resolver takes the ruler's
    table (``ClaimMatcher.table``)."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.patterns_dir, self.lang = Path(patterns_dir), lang
        entries: list[tuple[str, tuple]] = []  # (phrase, action)
        for (label, pid), phrases in claim_phrases(self.patterns_dir, lang).items():
            entries += [(p, ("claim", label, pid)) for p in phrases]
        self.cue_phrases = cue_phrases(self.patterns_dir, lang)
        for key, phrases in self.cue_phrases.items():
            label, _, phrase = key.partition("|")
            action = ("kind", label[5:], phrase) if phrase else ("cue", label)
            entries += [(p, action) for p in phrases]
        # lower-cased tokens -> (the phrase as a Doc, every action of a phrase with these tokens)
        self.phrases: dict[tuple[str, ...], tuple[Doc, set]] = {}
        for doc, (_, action) in zip(nlp.tokenizer.pipe([p for p, _ in entries]), entries):
            if len(doc):
                self.phrases.setdefault(tuple(t.lower_ for t in doc), (doc, set()))[1].add(action)
        self.sentence_labels = _sentence_cue_labels(self.patterns_dir, lang, self._words_of)

    def _words_of(self, label: str) -> list[tuple[str, ...]]:
        """The lower-cased tokens of a cue label's phrases."""
        action = ("cue", label)
        return [words for words, (_, actions) in self.phrases.items() if action in actions]

    def keys(self, *, claims: bool = True, kinds: bool = True, cue_label=lambda label: True,
             prefix: str = "sw") -> dict[str, tuple[list[Doc], PhraseKey]]:
        """Matcher key -> (its phrases as Docs, their meaning): phrases are grouped by the
        set of everything they mean, so that each matched span yields one match;
        ``claims``, ``kinds`` and ``cue_label(label)`` choose what to include. Keys are short
        (``prefix`` and a number, the same for the same files): PhraseMatcher decodes and
        hashes the key string of every match."""
        def wanted(action):
            kind = action[0]
            return claims if kind == "claim" else kinds if kind == "kind" else cue_label(action[1])

        groups: dict[tuple, list[Doc]] = {}  # sorted actions -> phrases
        for doc, actions in self.phrases.values():
            chosen = tuple(sorted(a for a in actions if wanted(a)))
            if chosen:
                groups.setdefault(chosen, []).append(doc)
        return {f"{prefix}{i}": (docs, PhraseKey(cues=tuple(a[1] for a in actions if a[0] == "cue"),
                                                 kinds=tuple(a[1:] for a in actions if a[0] == "kind"),
                                                 claims=tuple(a[1:] for a in actions if a[0] == "claim")))
                for i, (actions, docs) in enumerate(groups.items())}


def _sentence_cue_labels(patterns_dir: Path, lang: str, words_of) -> frozenset[str]:
    """Cue labels that rules use only as weak cues ("for", "patients": they count only
    beside a partner cue in the claim's own sentence) or as the voice of a later offer
    sentence ("we", "our": offer option next_voice), so they are matched only in
    the sentence that needs them, not over the page: they are among a page's most
    frequent matches and are rarely read. A label stays page-wide if a negation cue
    lies inside one of its phrases (the stance decision sets aside a negation inside
    another cue's words). ``words_of(label)``: the lower-cased tokens of its phrases."""
    taxonomy = load_taxonomy(patterns_dir)
    rules = [r for c in taxonomy.categories.values() for r in (*c.requires, *c.exclude)]
    rules += [r for o in pattern_options(patterns_dir, lang).values() for r in o.get("requires", [])]
    offers = [r.get("offer") or {} for r in rules]
    weak = {o["weak"][0] for o in offers if o.get("weak")} | {o["next_voice"] for o in offers if o.get("next_voice")} \
        | {o["weak_before"] for o in offers if o.get("weak") and o.get("weak_before")}
    used = {r["cue"] for r in rules} | {o["weak"][1] for o in offers if o.get("weak")} \
        | {o[k] for o in offers for k in ("next", "next_unless") if o.get(k)}
    labels = {"cue:" + w for w in weak - used}
    negations = words_of("stance:negation")
    for label in list(labels):
        for words in words_of(label):
            if any(words[i:i + len(n)] == n for n in negations for i in range(len(words))):
                labels.discard(label)
    return frozenset(labels)


@Language.factory("stemwatch_ruler", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_matcher(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimMatcher(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimMatcher:
    """Literal phrases matched on LOWER: every pattern is a phrase (token-Matcher
    patterns cost ten times more per word)."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.table = table = PhraseTable(nlp, patterns_dir, lang)
        lazy = table.sentence_labels
        self.keys = table.keys(cue_label=lambda label: label not in lazy)
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for key, (docs, _) in self.keys.items():
            self.matcher.add(key, docs)

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[MATCHES] = self.matcher(doc)
        return doc
