"""Cross-validation by site: the learned stage scored only on sites it did not learn from.

The corpus's sites are dealt into K folds (seeded shuffle, so a run can be
repeated). For each fold the learned stage is trained on the other K-1 folds
and the held fold is read three ways in the same run: the rules alone, the
rules with the learned stage, and the keyword baseline. Every passage is
predicted exactly once, by a model that never saw its site.

Reported per system: micro P/R/F1 over all held passages with a bootstrap 95%
interval (passages resampled), the mean and spread of the per-fold F1, the
false-alarm rate, per-category F1, English and Spanish apart, page-kind
accuracy; and the candidate recall of the held folds.
"""

from __future__ import annotations

import random
import statistics
import tempfile
from pathlib import Path

from analysis.detect.evaluate import KeywordBaseline, score
from analysis.detect.training import make_examples, site_of, train
from analysis.models import CATEGORIES

SYSTEMS = ("rules", "rules+model", "keyword")
BOOTSTRAP = 1000


def folds_by_domain(rows: list[dict], k: int, seed: int = 0) -> list[int]:
    """The fold of each row: all passages of one site in one fold."""
    if k < 2:
        raise ValueError("--cv-by-domain needs at least 2 folds")
    domains = sorted({site_of(r) for r in rows})
    if len(domains) < k:
        raise ValueError(f"{len(domains)} sites cannot make {k} folds")
    random.Random(seed).shuffle(domains)
    fold = {d: i % k for i, d in enumerate(domains)}
    return [fold[site_of(r)] for r in rows]


def _promoted(analysis) -> set[str]:
    return {c.category for c in analysis.claims if c.stance == "promoted"}


def _inputs(rows):
    return [{"text": r["text"], "url": r.get("url", ""), "lang": r.get("lang", "")} for r in rows]


def bootstrap(rows: list[dict], preds: list[set[str]], kinds: list | None, seed: int = 0,
              n: int = BOOTSTRAP) -> dict:
    """95% intervals of micro P, R, F1, the false-alarm rate and page-kind accuracy."""
    rng = random.Random(seed)
    m = len(rows)
    samples = {"precision": [], "recall": [], "f1": [], "false_alarm_rate": [], "page_kind": []}
    for _ in range(n):
        idx = [rng.randrange(m) for _ in range(m)]
        s = score([rows[i] for i in idx], [preds[i] for i in idx])
        for key in ("precision", "recall", "f1"):
            samples[key].append(s["micro"][key])
        samples["false_alarm_rate"].append(s["false_alarm_rate"])
        if kinds is not None:
            agreed = [kinds[i] for i in idx if kinds[i] is not None]
            samples["page_kind"].append(sum(g == p for g, p in agreed) / len(agreed) if agreed else 0.0)

    def interval(values):
        values = sorted(values)
        return [values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]]

    return {key: interval(v) for key, v in samples.items() if v}


def cross_validate(rows: list[dict], k: int, rules_detector, *, seed: int = 0,
                   threshold: float | None = None, progress=None) -> dict:
    """The report of a K-fold cross-validation by site (see the module docstring)."""
    from analysis.detect.detector import Detector

    folds = folds_by_domain(rows, k, seed)
    baseline = KeywordBaseline(rules_detector.patterns_dir)
    preds = {s: [set() for _ in rows] for s in SYSTEMS}
    kinds = {s: [None for _ in rows] for s in ("rules", "rules+model")}
    fold_f1 = {s: [] for s in SYSTEMS}
    # candidates come from the rules alone, so their recall needs no fold
    every = make_examples(rows, rules_detector)
    decisions = []  # per fold, decision@threshold: chosen inside its training folds
    rules_out = list(rules_detector.analyze_many(_inputs(rows)))
    for i, a in enumerate(rules_out):
        preds["rules"][i] = _promoted(a)
        kinds["rules"][i] = a.page_kind
        preds["keyword"][i] = baseline.promoted(rows[i]["text"])
    with tempfile.TemporaryDirectory(prefix="stemwatch-cv-") as tmp:
        for f in range(k):
            held = [i for i, x in enumerate(folds) if x == f]
            train_rows = [rows[i] for i, x in enumerate(folds) if x != f]
            if progress:
                progress(f"fold {f + 1}/{k}: training on {len(train_rows)} passages, "
                         f"scoring {len(held)}")
            model_dir = Path(tmp) / f"fold{f}"
            meta = train(train_rows, model_dir, rules_detector, seed=seed, threshold=threshold)
            decisions.append(f"{meta['decision']}@{meta['threshold']:g}")
            det = Detector(rules_detector.patterns_dir, model_dir=model_dir)
            for i, a in zip(held, det.analyze_many(_inputs([rows[i] for i in held]))):
                preds["rules+model"][i] = _promoted(a)
                kinds["rules+model"][i] = a.page_kind
            for s in SYSTEMS:
                fold_f1[s].append(score([rows[i] for i in held], [preds[s][i] for i in held])["micro"]["f1"])
    gold_kinds = [r.get("page_kind") for r in rows]
    report = {"passages": len(rows), "sites": len(set(map(site_of, rows))), "folds": k, "seed": seed,
              "decisions": decisions, "detector_version": rules_detector.version,
              "candidate_recall": every.candidates_found / every.gold_promoted if every.gold_promoted else None, "systems": {}}
    for s in SYSTEMS:
        kind_pairs = [(g, p) if g else None for g, p in zip(gold_kinds, kinds[s])] if s in kinds else None
        agreed = [p for p in (kind_pairs or []) if p is not None]
        entry = score(rows, preds[s])
        entry["fold_f1_mean"] = statistics.mean(fold_f1[s])
        entry["fold_f1_sd"] = statistics.stdev(fold_f1[s]) if k > 1 else 0.0
        entry["ci95"] = bootstrap(rows, preds[s], kind_pairs, seed)
        entry["page_kind_accuracy"] = (sum(g == p for g, p in agreed) / len(agreed)) if agreed else None
        for lang in ("en", "es"):
            idx = [i for i, r in enumerate(rows) if r.get("lang") == lang]
            if idx:
                sub = score([rows[i] for i in idx], [preds[s][i] for i in idx])
                entry[lang] = {"passages": len(idx), "micro": sub["micro"],
                               "false_alarm_rate": sub["false_alarm_rate"]}
        report["systems"][s] = entry
    return report


def format_cv_report(report: dict) -> str:
    systems = report["systems"]
    lines = [
        f"Cross-validation by site: {report['passages']} passages from {report['sites']} sites, "
        f"{report['folds']} folds (seed {report['seed']}), decisions {', '.join(report['decisions'])}, "
        f"rules {report['detector_version']}.",
        "Stance 'promoted', passage level; every passage scored by a model that never saw its site.",
        f"Candidate recall (gold promoted categories that reach the model): {report['candidate_recall']:.3f}",
        "",
        f"{'':24}" + "".join(f"{s:>24}" for s in SYSTEMS),
    ]

    def line(name, values):
        lines.append(f"{name:24}" + "".join(f"{v:>24}" for v in values))

    def ci(entry, key, value):
        lo, hi = entry["ci95"][key]
        return f"{value:.2f} [{lo:.2f}-{hi:.2f}]"

    line("micro precision", [ci(systems[s], "precision", systems[s]["micro"]["precision"]) for s in SYSTEMS])
    line("micro recall", [ci(systems[s], "recall", systems[s]["micro"]["recall"]) for s in SYSTEMS])
    line("micro F1", [ci(systems[s], "f1", systems[s]["micro"]["f1"]) for s in SYSTEMS])
    line("F1 per fold, mean (sd)", [f"{systems[s]['fold_f1_mean']:.2f} ({systems[s]['fold_f1_sd']:.2f})"
                                    for s in SYSTEMS])
    line("false alarms", [f"{ci(systems[s], 'false_alarm_rate', systems[s]['false_alarm_rate'])}"
                          for s in SYSTEMS])
    line("page-kind accuracy", [ci(systems[s], "page_kind", systems[s]["page_kind_accuracy"])
                                if systems[s]["page_kind_accuracy"] is not None else "-" for s in SYSTEMS])
    for lang in ("en", "es"):
        if lang in systems["rules"]:
            line(f"F1 {lang} ({systems['rules'][lang]['passages']})",
                 [f"{systems[s][lang]['micro']['f1']:.2f}" for s in SYSTEMS])
            line(f"false alarms {lang}", [f"{systems[s][lang]['false_alarm_rate']:.1%}" for s in SYSTEMS])
    lines.append("")
    lines.append("F1 per category (gold promoted):")
    for c in CATEGORIES:
        gold = systems["rules"]["categories"][c]["tp"] + systems["rules"]["categories"][c]["fn"]
        line(f"{c[:19]} ({gold})", [f"{systems[s]['categories'][c]['f1']:.2f}" for s in SYSTEMS])
    return "\n".join(lines)
