"""Stance of a matched claim from its context: negated, cautionary, reported or promoted.

The matched words say *what* is claimed; the words around them, and the kind
of page, say whether the page makes the claim. Hedges ("may help") are not
cues: a hedged promise is still promoted. The rules' knobs live in
patterns/stance.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

NEGATION = "stance:negation"
STRONG_NEGATION = "stance:negation-strong"
CAUTION = "stance:caution"
REPORTING = "stance:reporting"
RESEARCH = "stance:research"
OFFER = "stance:offer"
# Cues that still count when they sit in a sentence that only supplied the claim's context.
CONTEXT_LABELS = frozenset({STRONG_NEGATION, CAUTION, REPORTING, RESEARCH})


class Cue(NamedTuple):
    label: str
    start: int  # token offsets
    end: int


class StanceRules:
    def __init__(self, config_path: str | Path, default_stance: dict[str, str]):
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.window = cfg["negation_window"]
        self.breaks = frozenset(cfg["clause_breaks"])
        self.negated_kinds = frozenset(cfg["negated_on_kinds"])
        self.question_stance = cfg["question_stance"]
        self.sentence_negators = frozenset(cfg["sentence_negators"])
        self.research_not_excusing = frozenset(cfg["research_does_not_excuse"])
        self.default_stance = default_stance

    def decide(self, doc, category: str, start: int, end: int, cues: list[Cue], *,
               first_word: str = "", is_question: bool = False, page_kind: str = "other",
               context_cues: list[Cue] = ()) -> tuple[str, str]:
        """(stance, cue text) for the claim at tokens [start, end).

        cues: the cues of the claim's sentence (and heading); context_cues: those of
        sentences that supplied the claim's context.
        """
        outside = [c for c in cues if c.end <= start or c.start >= end]
        outside += [c for c in context_cues if c.label in CONTEXT_LABELS]
        # "no" inside "no proof" is part of a caution cue, not a denial of its own
        longer = [c for c in outside if c.label != NEGATION]
        outside = [c for c in outside if c.label != NEGATION or not any(
            o.start <= c.start and c.end <= o.end for o in longer)]
        denial = "negated" if page_kind in self.negated_kinds else "cautionary"
        if first_word in self.sentence_negators and start > 0:
            return denial, first_word
        for c in outside:
            if c.label == STRONG_NEGATION:
                return denial, doc[c.start:c.end].text
        for c in outside:
            if c.label == NEGATION and c.end <= start and start - c.end <= self.window \
                    and not self._broken(doc, c.end, start):
                return denial, doc[c.start:c.end].text
        checks = [(CAUTION, "cautionary"), (REPORTING, "reported")]
        if category not in self.research_not_excusing:
            checks.append((RESEARCH, "reported"))
        for label, stance in checks:
            for c in outside:
                if c.label == label:
                    return stance, doc[c.start:c.end].text
        if is_question and not any(c.label == OFFER for c in cues):
            return self.question_stance, "question"
        stance = self.default_stance.get(page_kind, "promoted")
        return stance, ("" if stance == "promoted" else f"page kind: {page_kind}")

    def _broken(self, doc, i: int, j: int) -> bool:
        return any(doc[k].lower_ in self.breaks for k in range(i, j))
