"""Score the detector against a labelled corpus, next to a plain keyword baseline.

Corpus format (JSON lines): id, url, lang, page_kind (or null), text,
promoted (categories the passage itself promotes), mentioned, disputed
(categories not scored either way).

Scoring is passage-level for the ``promoted`` stance: the set of categories
with at least one promoted claim against the ``promoted`` labels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from analysis.models import CATEGORIES, PAGE_KINDS
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def load_corpus(path: str | Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON: {e}") from e
                rows.append(_checked(row, f"{path}:{n}"))
    return rows


def _checked(row, where: str) -> dict:
    """The row, if its fields are what the scores rely on: a mistyped label would
    otherwise drop out of every count without a word."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    if not isinstance(row.get("text"), str):
        raise ValueError(f"{where}: no 'text' field" if "text" not in row else f"{where}: 'text' is not a string")
    for field in ("promoted", "mentioned", "disputed"):
        labels = row.get(field) or []
        if not isinstance(labels, list):
            raise ValueError(f"{where}: '{field}' must be a list of category ids")
        unknown = [c for c in labels if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"{where}: unknown category {unknown[0]!r} in '{field}' "
                             f"(known: {', '.join(CATEGORIES)})")
    kind = row.get("page_kind")
    if kind is not None and kind not in PAGE_KINDS:
        raise ValueError(f"{where}: unknown page_kind {kind!r} (known: {', '.join(PAGE_KINDS)})")
    return row


class KeywordBaseline:
    """A category is 'promoted' when one of its keywords is anywhere in a sentence."""

    def __init__(self, patterns_dir: str | Path | None = None):
        path = Path(patterns_dir or DEFAULT_PATTERNS_DIR) / "baseline.json"
        keywords = json.loads(path.read_text(encoding="utf-8"))["keywords"]
        self.regexes = {
            cat: re.compile("|".join(
                re.escape(w) if not w[0].isalnum() else r"\b" + re.escape(w) for w in words), re.I)
            for cat, words in keywords.items()
        }

    def promoted(self, text: str) -> set[str]:
        found = set()
        for sentence in _SENTENCES.split(text):
            for cat, rx in self.regexes.items():
                if rx.search(sentence):
                    found.add(cat)
        return found


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f}


def score(rows: list[dict], predictions: list[set[str]]) -> dict:
    """Per-category and micro P/R/F1 for promoted, and the false-alarm rate."""
    counts = {c: [0, 0, 0] for c in CATEGORIES}
    negatives = alarms = 0
    for row, pred in zip(rows, predictions):
        disputed = set(row.get("disputed") or ())
        gold = set(row.get("promoted") or ()) - disputed
        pred = set(pred) - disputed
        for c in CATEGORIES:
            if c in pred and c in gold:
                counts[c][0] += 1
            elif c in pred:
                counts[c][1] += 1
            elif c in gold:
                counts[c][2] += 1
        if not row.get("promoted"):
            negatives += 1
            alarms += bool(pred)
    per_cat = {c: _prf(*v) for c, v in counts.items()}
    micro = _prf(*(sum(v[i] for v in counts.values()) for i in range(3)))
    return {"categories": per_cat, "micro": micro, "negatives": negatives, "false_alarms": alarms,
            "false_alarm_rate": alarms / negatives if negatives else 0.0}


def evaluate(corpus_path: str | Path, detector) -> dict:
    """Run the detector and the keyword baseline on a corpus; return the report dict."""
    rows = load_corpus(corpus_path)
    baseline = KeywordBaseline(detector.patterns_dir)
    analyses = list(detector.analyze_many(
        {"text": r["text"], "url": r.get("url", ""), "title": r.get("title", ""),
         "lang": r.get("lang", ""), "cues": r.get("cues")} for r in rows))
    predicted = [{c.category for c in a.claims if c.stance == "promoted"} for a in analyses]
    base_pred = [baseline.promoted(r["text"]) for r in rows]
    kinds = [(r["page_kind"], a.page_kind) for r, a in zip(rows, analyses) if r.get("page_kind")]
    errors = []
    for row, a, pred in zip(rows, analyses, predicted):
        disputed = set(row.get("disputed") or ())
        gold = set(row.get("promoted") or ()) - disputed
        if gold != pred - disputed:
            errors.append({
                "id": row.get("id", ""), "url": row.get("url", ""), "page_kind": a.page_kind,
                "gold_page_kind": row.get("page_kind"), "missed": sorted(gold - pred),
                "extra": sorted(pred - disputed - gold), "text": row["text"],
                "claims": [c.to_dict() for c in a.claims],
            })
    return {
        "corpus": str(corpus_path),
        "passages": len(rows),
        "detector_version": detector.version,
        "trained_on_corpus": _trained_on(detector, corpus_path),
        "detector": score(rows, predicted),
        "baseline": score(rows, base_pred),
        "page_kind": {"scored": len(kinds), "correct": sum(g == p for g, p in kinds),
                      "accuracy": sum(g == p for g, p in kinds) / len(kinds) if kinds else 0.0},
        "errors": errors,
    }


def _trained_on(detector, corpus_path) -> bool:
    """Whether the detector's model learned from this very corpus file."""
    model_dir = getattr(detector, "model_dir", None)
    meta = Path(model_dir) / "meta.json" if model_dir else None
    if meta is None or not meta.exists():
        return False
    from analysis.detect.training import corpus_hash

    return json.loads(meta.read_text(encoding="utf-8")).get("corpus_sha256") == corpus_hash(corpus_path)


def format_report(report: dict, show_errors: bool = False) -> str:
    d, b = report["detector"], report["baseline"]
    lines = [
        f"Corpus: {report['corpus']} ({report['passages']} passages), detector {report['detector_version']}",
        "Stance 'promoted', passage level (disputed categories not scored).",
        *(["NOT A MEASURE: the detector's model was trained on this corpus; "
           "use --cv-by-domain K or --rules-only."] if report.get("trained_on_corpus") else []),
        "",
        f"{'':34} {'detector':^26} {'keyword baseline':^26}",
        f"{'category':34} {'P':>6} {'R':>6} {'F1':>6} {'n':>5} {'P':>6} {'R':>6} {'F1':>6} {'n':>5}",
    ]

    def row(name, x, y):
        gold = x["tp"] + x["fn"]
        return (f"{name:34} {x['precision']:6.2f} {x['recall']:6.2f} {x['f1']:6.2f} {gold:5d} "
                f"{y['precision']:6.2f} {y['recall']:6.2f} {y['f1']:6.2f} {gold:5d}")

    for c in CATEGORIES:
        lines.append(row(c, d["categories"][c], b["categories"][c]))
    lines.append(row("micro", d["micro"], b["micro"]))
    lines.append("")
    lines.append(f"False-alarm rate (passages with no promoted label that get a promoted flag): "
                 f"detector {d['false_alarm_rate']:.1%} ({d['false_alarms']}/{d['negatives']}), "
                 f"baseline {b['false_alarm_rate']:.1%} ({b['false_alarms']}/{b['negatives']})")
    pk = report["page_kind"]
    lines.append(f"Page-kind accuracy: {pk['accuracy']:.1%} ({pk['correct']}/{pk['scored']} passages with an agreed kind)")
    if show_errors:
        lines.append("")
        lines.append(f"Passages wrong ({len(report['errors'])}):")
        for e in report["errors"]:
            lines.append("")
            lines.append(f"- {e['id']} {e['url']}  page kind {e['page_kind']} (gold {e['gold_page_kind']})")
            if e["missed"]:
                lines.append(f"  missed: {', '.join(e['missed'])}")
            if e["extra"]:
                lines.append(f"  false alarm: {', '.join(e['extra'])}")
            for c in e["claims"]:
                cue = f" [{c['cue']}]" if c["cue"] else ""
                lines.append(f"    {c['stance']:10} {c['category']:32} {c['text']!r}{cue}")
            lines.append(f"  text: {e['text']}")
    return "\n".join(lines)
