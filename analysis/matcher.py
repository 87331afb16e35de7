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

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from .pattern_files import claim_patterns, cue_phrases
from .taxonomy import DEFAULT_PATTERNS_DIR

MATCHES = "sw_matches"  # doc.user_data key: every (key, start, end) match of the ruler


def claim_phrases(patterns_dir: Path, lang: str) -> dict[tuple[str, str], list[str]]:
    """Claim phrases by (category, pattern id); the matcher key is ``category|id``."""
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in claim_patterns(patterns_dir, lang):
        by_key[(row["label"], row["id"])].append(row["pattern"])
    return by_key


def claim_key(label: str, pid: str) -> str:
    return f"{label}|{pid}"


@Language.factory("stemwatch_ruler", default_config={"patterns_dir": "", "lang": "en"})
def make_claim_matcher(nlp: Language, name: str, patterns_dir: str, lang: str):
    return ClaimMatcher(nlp, Path(patterns_dir or DEFAULT_PATTERNS_DIR), lang)


class ClaimMatcher:
    """Literal phrases matched on LOWER: every pattern is a phrase (token-Matcher
    patterns cost ten times more per word)."""

    def __init__(self, nlp: Language, patterns_dir: Path, lang: str):
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for (label, pid), phrases in claim_phrases(patterns_dir, lang).items():
            self.matcher.add(claim_key(label, pid), list(nlp.tokenizer.pipe(phrases)))
        for key, phrases in cue_phrases(patterns_dir, lang).items():
            self.matcher.add(key, list(nlp.tokenizer.pipe(phrases)))

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[MATCHES] = self.matcher(doc)
        return doc
