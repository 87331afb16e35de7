"""The claim taxonomy as data: categories, stances and the severity rule.

Everything lives in patterns/taxonomy.json so that reviewers can read and
change the wording without touching code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from analysis.models import CATEGORIES, STANCES

DEFAULT_PATTERNS_DIR = Path(__file__).resolve().parents[2] / "patterns"


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    warning: str
    why: str
    severity_promoted: str = "medium"
    requires: tuple = ()
    exclude: tuple = ()


@dataclass(frozen=True)
class Taxonomy:
    categories: dict[str, Category]
    stances: dict[str, str]
    severity_rule: str = ""
    raw: dict = field(default_factory=dict, compare=False, hash=False)

    def severity(self, category: str, stance: str) -> str:
        """High/medium for a promoted claim (per category), low for any other stance."""
        if stance != "promoted":
            return "low"
        return self.categories[category].severity_promoted


def load_taxonomy(patterns_dir: str | Path | None = None) -> Taxonomy:
    """Read taxonomy.json and check it against the public category and stance ids."""
    path = Path(patterns_dir or DEFAULT_PATTERNS_DIR) / "taxonomy.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    cats = {}
    for c in data["categories"]:
        cats[c["id"]] = Category(
            id=c["id"],
            name=c["name"],
            warning=c["warning"],
            why=c["why"],
            severity_promoted=c.get("severity_promoted", "medium"),
            requires=tuple(c.get("requires", ())),
            exclude=tuple(c.get("exclude", ())),
        )
    stances = {s["id"]: s["meaning"] for s in data["stances"]}
    if set(cats) != set(CATEGORIES) or set(stances) != set(STANCES):
        raise ValueError(f"{path}: categories or stances differ from analysis.models")
    return Taxonomy(categories=cats, stances=stances, severity_rule=data.get("severity_rule", ""), raw=data)
