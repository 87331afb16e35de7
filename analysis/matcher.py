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

from .pattern_files import claim_patterns, cue_phrases, pattern_options
from .taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy

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


def phrase_keys(nlp: Language, patterns_dir: Path, lang: str, *, claims: bool = True, kinds: bool = True,
                cue_label=lambda label: True, prefix: str = "sw") -> dict[str, tuple[list[Doc], PhraseKey]]:
    """Matcher key -> (its phrases as Docs, their meaning): phrases are grouped by the
    set of everything they mean, so that each matched span yields one match;
    ``claims``, ``kinds`` and ``cue_label(label)`` choose what to include. Keys are short
    (``prefix`` and a number, the same for the same files): PhraseMatcher decodes and
    hashes the key string of every match."""
    entries: list[tuple[str, tuple]] = []  # (phrase, action)
    if claims:
        for (label, pid), phrases in claim_phrases(patterns_dir, lang).items():
            entries += [(p, ("claim", label, pid)) for p in phrases]
    for key, phrases in cue_phrases(patterns_dir, lang).items():
        label, _, phrase = key.partition("|")
        if phrase:
            if kinds:
                entries += [(p, ("kind", label[5:], phrase)) for p in phrases]
        elif cue_label(label):
            entries += [(p, ("cue", label)) for p in phrases]
    by_tokens: dict[tuple[str, ...], tuple[Doc, set]] = {}  # lower-cased tokens -> (phrase, actions)
    for doc, (_, action) in zip(nlp.tokenizer.pipe([p for p, _ in entries]), entries):
        if len(doc):
            by_tokens.setdefault(tuple(t.lower_ for t in doc), (doc, set()))[1].add(action)
    groups: dict[tuple, list[Doc]] = {}  # sorted actions -> phrases
    for doc, actions in by_tokens.values():
        groups.setdefault(tuple(sorted(actions)), []).append(doc)
    return {f"{prefix}{i}": (docs, PhraseKey(cues=tuple(a[1] for a in actions if a[0] == "cue"),
                                             kinds=tuple(a[1:] for a in actions if a[0] == "kind"),
                                             claims=tuple(a[1:] for a in actions if a[0] == "claim")))
            for i, (actions, docs) in enumerate(groups.items())}


def sentence_cue_labels(nlp: Language, patterns_dir: Path, lang: str) -> frozenset[str]:
    """Cue labels that rules use only as weak cues ("for", "patients": they count only
    beside a partner cue in the claim's own sentence), so they are matched only in
    the sentence that needs them, not over the page: they are among a page's most
    frequent matches and are rarely read. A label stays page-wide if a negation cue
    lies inside one of its phrases (the stance decision sets aside a negation inside
    another cue's words)."""
    taxonomy = load_taxonomy(patterns_dir)
    rules = [r for c in taxonomy.categories.values() for r in (*c.requires, *c.exclude)]
    rules += [r for o in pattern_options(patterns_dir, lang).values() for r in o.get("requires", [])]
    weak = {r["weak"][0] for r in rules if r.get("weak")}
    used = {r["cue"] for r in rules} | {r["weak"][1] for r in rules if r.get("weak")} \
        | {r["next"] for r in rules if r.get("next")}
    labels = {"cue:" + w for w in weak - used}
    phrases: dict[str, list[str]] = cue_phrases(patterns_dir, lang)
    negations = [tuple(t.lower_ for t in d) for d in nlp.tokenizer.pipe(phrases.get("stance:negation", []))]
    for label in list(labels):
        for doc in nlp.tokenizer.pipe(phrases.get(label, [])):
            words = tuple(t.lower_ for t in doc)
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
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        lazy = sentence_cue_labels(nlp, patterns_dir, lang)
        for key, (docs, _) in phrase_keys(nlp, patterns_dir, lang, cue_label=lambda label: label not in lazy).items():
            self.matcher.add(key, docs)

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[MATCHES] = self.matcher(doc)
        return doc
