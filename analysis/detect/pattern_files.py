"""Reading the detector's data files in patterns/: claim patterns, cue lists, their version.

The claim and cue files use spaCy's span-ruler JSONL format
(``{"label", "pattern", "id"}``, one phrase per line) plus a few options that
claim patterns may carry (see patterns/README.md).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from analysis.models import CATEGORIES

CODE_VERSION = "4.0"  # bump when detection code changes behaviour
CUE_FILES = ("context", "stance", "pagekind")
PATTERN_OPTIONS = ("requires", "case", "after_number", "not_alone", "not_followed_by")
_CATEGORY_SET = frozenset(CATEGORIES)


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


# What each option's value must be: a typo ("not_followed_by": "safe") would otherwise
# change matching silently ("a" in "safe").
_OPTION_CHECKS = {
    "requires": lambda v: isinstance(v, list) and all(isinstance(r, dict) and "cue" in r for r in v),
    "case": lambda v: v == "upper",
    "after_number": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    "not_alone": lambda v: isinstance(v, bool),
    "not_followed_by": lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v),
}


def pattern_options(patterns_dir: Path, lang: str) -> dict[str, dict]:
    """Options by pattern id; every line of one id must carry the same options."""
    options: dict[str, dict] = {}
    for row in claim_patterns(patterns_dir, lang):
        opts = {k: row[k] for k in PATTERN_OPTIONS if row.get(k)}
        for k, v in opts.items():
            if not _OPTION_CHECKS[k](v):
                raise ValueError(f"claims_{lang}.jsonl: pattern id {row['id']!r}: bad value for {k!r}: {v!r}")
        if opts:
            old = options.setdefault(row["id"], opts)
            if old != opts:
                raise ValueError(f"claims_{lang}.jsonl: pattern id {row['id']!r} has differing options")
    return options


def cue_patterns(patterns_dir: Path, lang: str) -> list[dict]:
    rows = []
    for stem in CUE_FILES:
        path = patterns_dir / f"{stem}_{lang}.jsonl"
        if path.exists():
            rows += read_jsonl(path)
    return rows


def cue_phrases(patterns_dir: Path, lang: str) -> dict[str, list[str]]:
    """Cue phrases by matcher key: the label, and for page-kind cues label|phrase, so
    that distinct phrases can be counted."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for row in cue_patterns(patterns_dir, lang):
        label, phrase = row["label"], row["pattern"]
        key = f"{label}|{phrase.lower()}" if label.startswith("kind:") else label
        by_key[key].append(phrase)
    return by_key


def patterns_version(patterns_dir: Path) -> str:
    """The code version plus a hash of every pattern file: stored with each result."""
    h = hashlib.sha256(CODE_VERSION.encode())
    for path in sorted(patterns_dir.glob("*.json*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{CODE_VERSION}+{h.hexdigest()[:12]}"


def load_markers(patterns_dir: Path | None = None) -> dict:
    """markers.json: the structure words (abbreviations, question and answer marks) and the
    cue labels with a part of their own (cue_roles)."""
    from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR

    path = Path(patterns_dir or DEFAULT_PATTERNS_DIR) / "markers.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        roles = data["cue_roles"]
        return {"abbreviations": tuple(data["abbreviations"]), "question_marks": tuple(data["question_marks"]),
                "answer_marks": frozenset(data["answer_marks"]),
                "context_only": frozenset(roles["context_only"]), "answer_affirms": tuple(roles["answer_affirms"]),
                "list_intro": roles["list_intro"]}
    except KeyError as e:
        raise ValueError(f"{path}: missing {e}") from None
