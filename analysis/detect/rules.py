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


class Offer(NamedTuple):
    """The offer rule (scope ``unit``, key ``offer``): where a condition's offer may stand
    besides its own sentence, and which weaker words count as one. One rule uses it,
    disease-cure's offer cue; patterns/README.md describes each option."""
    weak: str | None = None  # a weaker cue that also counts ("cue:treat-weak") ...
    partner: str | None = None  # ... when this cue stands in the same sentence
    weak_before: str | None = None  # a weak cue that counts only before the claim ("for": "stem cells for autism")
    next: str | None = None  # the offer may sit in a following sentence if it has this cue ...
    next_unless: str | None = None  # ... and not this one (the offer is for something else: "knee pain")
    next_voice: str | None = None  # ... and, beyond the very next sentence, this one (the page's own voice)


NO_OFFER = Offer()
OFFER_OPTIONS = frozenset({"weak", "weak_before", "next", "next_unless", "next_voice"})


class Rule(NamedTuple):
    id: int  # unique per compiled rule: the key of per-page answer caches
    label: str  # the cue label asked for ("cue:regen")
    scope: str
    window: int  # sentences either side (scope window; 0 otherwise)
    distance: int  # tokens (scopes near/after)
    offer: Offer  # scope unit: the offer rule's options (NO_OFFER for every other rule)
    title_ok: bool  # the title or URL words can supply the cue
    local: bool  # scopes near/after: the answer depends on the match's own tokens


def compile_offer(options: dict, *, allow_next: bool = True) -> Offer:
    unknown = set(options) - OFFER_OPTIONS
    if unknown:
        raise ValueError(f"unknown offer option(s) {sorted(unknown)} (known: {sorted(OFFER_OPTIONS)})")
    weak = options.get("weak")
    if weak is not None and not (isinstance(weak, list) and len(weak) == 2):
        raise ValueError(f"offer option 'weak' must be [weak cue, partner cue], not {weak!r}")
    nxt = options.get("next") if allow_next else None

    def cue(name, value):
        return "cue:" + value if value else None

    return Offer(
        weak=cue("weak", weak[0] if weak else None),
        partner=cue("partner", weak[1] if weak else None),
        weak_before=cue("weak_before", options.get("weak_before") if weak else None),
        next=cue("next", nxt),
        next_unless=cue("next_unless", options.get("next_unless") if nxt else None),
        next_voice=cue("next_voice", options.get("next_voice") if nxt else None),
    )


def compile_rule(rule: dict, *, allow_next: bool = True) -> Rule:
    scope = rule.get("scope", "sentence")
    if scope not in SCOPES:
        raise ValueError(f"unknown rule scope {scope!r} in {rule}")
    stray = OFFER_OPTIONS & set(rule)
    if stray:
        raise ValueError(f"{sorted(stray)} belong inside the offer rule's 'offer' (scope unit), in {rule}")
    if "offer" in rule and scope != "unit":
        raise ValueError(f"'offer' is the unit scope's rule; scope {scope!r} takes none, in {rule}")
    return Rule(
        id=next(_ids),
        label="cue:" + rule["cue"],
        scope=scope,
        window=int(rule.get("window", 0)) if scope == "window" else 0,
        distance=int(rule.get("distance", DEFAULT_DISTANCE)),
        offer=compile_offer(rule.get("offer") or {}, allow_next=allow_next) if scope == "unit" else NO_OFFER,
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
    offer = rule.offer
    return bool(offer.weak) and (offer.weak in labels or offer.weak_before in labels)
