"""Context rules (taxonomy.json ``requires`` / ``exclude``, pattern ``requires``) compiled once.

A rule names a cue label and where it must stand relative to the claim: its
``scope``. The scopes are described in patterns/README.md. Compiling turns the
JSON dicts into tuples with the label strings built and the defaults filled in,
so the resolver reads fields instead of building strings per candidate.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

SCOPES = frozenset({"sentence", "window", "page", "unit", "near", "after", "items"})
# Scopes whose cue may also come from the page title or the words of the URL path.
TITLE_SCOPES = frozenset({"window", "page", "unit"})
DEFAULT_DISTANCE = 4  # tokens, for scopes near/after

_ids = itertools.count()


class Rule(NamedTuple):
    id: int  # unique per compiled rule: the key of per-page answer caches
    label: str  # the cue label asked for ("cue:regen")
    scope: str
    window: int  # sentences either side (scope window; 0 otherwise)
    distance: int  # tokens (scopes near/after)
    weak: str | None  # a weaker cue that also counts ("cue:treat-weak") ...
    partner: str | None  # ... when this cue stands in the same sentence
    weak_before: str | None  # a weak cue that counts only before the claim ("for": "stem cells for autism")
    next: str | None  # scope unit: the offer may sit in a following sentence if it has this cue ...
    next_unless: str | None  # ... and not this one (the offer is for something else: "knee pain")
    next_voice: str | None  # ... and, beyond the very next sentence, this one (the page's own voice)
    title_ok: bool  # the title or URL words can supply the cue
    local: bool  # scopes near/after: the answer depends on the match's own tokens


def compile_rule(rule: dict, *, allow_next: bool = True) -> Rule:
    scope = rule.get("scope", "sentence")
    if scope not in SCOPES:
        raise ValueError(f"unknown rule scope {scope!r} in {rule}")
    weak = rule.get("weak")
    nxt = rule.get("next") if allow_next else None
    unless = rule.get("next_unless") if nxt else None
    voice = rule.get("next_voice") if nxt else None
    return Rule(
        id=next(_ids),
        label="cue:" + rule["cue"],
        scope=scope,
        window=int(rule.get("window", 0)) if scope == "window" else 0,
        distance=int(rule.get("distance", DEFAULT_DISTANCE)),
        weak="cue:" + weak[0] if weak else None,
        partner="cue:" + weak[1] if weak else None,
        weak_before="cue:" + rule["weak_before"] if weak and rule.get("weak_before") else None,
        next="cue:" + nxt if nxt else None,
        next_unless="cue:" + unless if unless else None,
        next_voice="cue:" + voice if voice else None,
        title_ok=scope in TITLE_SCOPES,
        local=scope in ("near", "after"),
    )


def compile_rules(rules, *, allow_next: bool = True) -> tuple[Rule, ...]:
    return tuple(compile_rule(r, allow_next=allow_next) for r in rules)


# Rules are checked cheapest and most selective first (all must hold, so the order
# changes only the time): a cue near the match or in its sentence before a window.
_CHECK_ORDER = {"near": 0, "after": 0, "sentence": 1, "unit": 2, "items": 3, "window": 4, "page": 5}


def check_order(rules: tuple[Rule, ...]) -> tuple[tuple[int, Rule], ...]:
    """(position, rule) pairs in the order to check them."""
    return tuple(sorted(enumerate(rules), key=lambda pair: (_CHECK_ORDER[pair[1].scope], pair[1].window)))


def page_allows(rules: tuple[Rule, ...], labels, title_labels) -> bool:
    """Whether every rule's cue (or its weak stand-in) appears somewhere on the page;
    ``title_labels()`` (the labels of the title and URL words) is called only when a
    missing cue could come from there. Most candidates of most pages stop here."""
    for r in rules:  # the usual answer, found without building a list
        if r.label not in labels and not _weak_in(r, labels):
            break
    else:
        return True
    missing = [r for r in rules if r.label not in labels and not _weak_in(r, labels)]
    if not all(r.title_ok for r in missing):
        return False
    found = title_labels()
    return all(r.label in found for r in missing)


def _weak_in(rule: Rule, labels) -> bool:
    return bool(rule.weak) and (rule.weak in labels or rule.weak_before in labels)
