"""Training the learned stage (learned.py) on a labelled corpus with ``spacy train``.

The examples are made by the rules themselves: every passage is read by the
rule pipeline, its candidates are built exactly as at run time, and each
candidate is labelled ``promoted`` when the gold labels say the passage
promotes its category. Disputed labels teach nothing and are left out; so is
a page kind the annotators did not agree on. The configs are data/model/*.cfg;
seeds are fixed, so the same corpus gives the same model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spacy.tokens import DocBin

from analysis.detect.claims import KIND
from analysis.detect.learned import (DECISIONS, DEFAULT_MODEL_DIR, KINDS, decide, feature_doc, features,
                                     load_candidate_cues)
from analysis.detect.text import normalize

CONFIGS = {"claims": DEFAULT_MODEL_DIR / "claims.cfg", "pagekind": DEFAULT_MODEL_DIR / "pagekind.cfg"}
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # candidates for the decision threshold
INNER_FOLDS = 3  # the inner cross-validation that chooses the decision and threshold


@dataclass(frozen=True)
class Example:
    text: str
    cats: dict[str, float]
    site: str = ""  # the passage's site: held-out folds never split one


@dataclass
class Examples:
    claims: list[Example]
    kinds: list[Example]
    gold_promoted: int  # (passage, category) pairs the gold labels promote
    candidates_found: int  # of those, how many became candidates


def corpus_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rule_features(detector, row: dict, candidate_cues: dict):
    """The learned stage's inputs for one labelled passage, read by the rules of ``detector``
    (a Detector without a model)."""
    text = row["text"]
    lang = detector.language(text, row.get("lang", ""))
    nlp = detector.nlps[lang]
    norm = normalize(text)
    doc = nlp.make_doc(norm)
    doc._context = {"url": row.get("url", ""), "title": "", "cues": {}, "text": norm}
    doc = nlp(doc)
    return features(doc, norm, row.get("url", ""), "", lang, doc.user_data.get(KIND, "other"), candidate_cues,
                    detector.taxonomy.categories)


def site_of(row: dict) -> str:
    """A labelled passage's site: its domain, else its URL's host, else its id."""
    from analysis.detect.pagekind import url_host

    return row.get("domain") or url_host(row.get("url", "")) or row.get("id", "")


def make_examples(rows: list[dict], detector) -> Examples:
    claims, kinds, gold, found = [], [], 0, 0
    candidate_cues = load_candidate_cues(detector.patterns_dir)
    for row in rows:
        feats = rule_features(detector, row, candidate_cues)
        promoted, disputed = set(row.get("promoted", ())), set(row.get("disputed", ()))
        seen = set()
        for cand in feats.candidates:
            seen.add(cand.category)
            if cand.category in disputed:
                continue
            claims.append(Example(cand.text, {"promoted": float(cand.category in promoted)}, site_of(row)))
        gold += len(promoted)
        found += len(promoted & seen)
        if row.get("page_kind") in KINDS:
            kinds.append(Example(feats.kind_text, {k: float(k == row["page_kind"]) for k in KINDS}))
    return Examples(claims, kinds, gold, found)


def _docbin(nlp, examples: list[Example], path: Path, feature_words: bool) -> None:
    db = DocBin(store_user_data=False)
    for ex in examples:
        doc = feature_doc(nlp.vocab, ex.text) if feature_words else nlp.make_doc(ex.text)
        doc.cats = ex.cats
        db.add(doc)
    db.to_disk(path)


def train_one(config: Path, train: list[Example], dev: list[Example], out: Path, seed: int, *,
              feature_words: bool = False) -> None:
    """``spacy train`` on the examples; the last model goes to ``out``. feature_words: the
    texts are candidates' feature words (learned.feature_doc), not page text."""
    import spacy
    from spacy.cli.train import train as spacy_train

    with tempfile.TemporaryDirectory(prefix="stemwatch-train-") as tmp:
        tmp = Path(tmp)
        blank = spacy.blank("en")
        _docbin(blank, train, tmp / "train.spacy", feature_words)
        _docbin(blank, dev or train[:1], tmp / "dev.spacy", feature_words)
        overrides = {"paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "dev.spacy"),
                     "system.seed": seed}
        quiet = logging.getLogger("spacy")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                spacy_train(config, tmp / "out", overrides=overrides, use_gpu=-1)
        finally:
            quiet.setLevel(level)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp / "out" / "model-last", out)
    # the saved config names the temporary training files: the model does not need them
    config_path = out / "config.cfg"
    saved = spacy.util.load_config(config_path)
    saved["paths"]["train"] = saved["paths"]["dev"] = None
    saved.to_disk(config_path)


def _split_dev(examples: list[Example], every: int = 10) -> tuple[list[Example], list[Example]]:
    """A tenth of the examples for spacy train to report on (the model kept is the last,
    so they choose nothing); the model itself learns from all of them."""
    return examples, [e for i, e in enumerate(examples) if not i % every]


def rules_promote(example_text: str) -> bool:
    """Whether the rules promoted the candidate's category (its feature words say so)."""
    return any(w.endswith("_rule_promoted") for w in example_text.split())


def choose_decision(config: Path, examples: list[Example], seed: int = 0,
                    folds: int = INNER_FOLDS) -> tuple[str, float]:
    """The decision rule (DECISIONS) and threshold with the best F1 over an inner
    cross-validation by site of the training examples: each fold scored by a model trained
    on the others. Never chosen on the data that is scored."""
    import random
    import tempfile

    import spacy

    sites = sorted({e.site for e in examples})
    random.Random(seed).shuffle(sites)
    fold_of = {site: i % folds for i, site in enumerate(sites)}
    scores: list[float] = []
    held: list[Example] = []
    with tempfile.TemporaryDirectory(prefix="stemwatch-inner-") as tmp:
        for f in range(folds):
            part = [e for e in examples if fold_of[e.site] == f]
            rest = [e for e in examples if fold_of[e.site] != f]
            if not part or not any(e.cats["promoted"] for e in rest):
                continue
            train_one(config, rest, part[:50], Path(tmp) / f"inner{f}", seed, feature_words=True)
            nlp = spacy.load(Path(tmp) / f"inner{f}")
            scores += [d.cats.get("promoted", 0.0) for d in nlp.pipe(feature_doc(nlp.vocab, e.text) for e in part)]
            held += part
    rules = [rules_promote(e.text) for e in held]
    gold = [e.cats["promoted"] > 0.5 for e in held]
    best, best_f1 = ("model", 0.5), -1.0
    for decision in DECISIONS:
        for t in THRESHOLDS:
            pred = [decide(decision, r, s, t) for r, s in zip(rules, scores)]
            tp = sum(p and g for p, g in zip(pred, gold))
            f1 = 2 * tp / (sum(pred) + sum(gold)) if tp else 0.0
            if f1 > best_f1 + 1e-9:
                best, best_f1 = (decision, t), f1
    return best


def train(rows: list[dict], out_dir: str | Path, detector, *, seed: int = 0,
          corpus_sha256: str = "", threshold: float | None = None, decision: str | None = None) -> dict:
    """Train both classifiers on ``rows`` into ``out_dir`` (claims/, pagekind/, meta.json).
    decision, threshold: how the score decides (learned.DECISIONS) and at what score; by
    default those with the best F1 in an inner cross-validation by site of ``rows``.
    Returns the meta written: corpus hash, seed, threshold, sizes, candidate recall."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ex = make_examples(rows, detector)
    if not ex.claims or not ex.kinds:
        raise ValueError("the corpus gives no candidates or no agreed page kinds to learn from")
    if decision is None or threshold is None:
        chosen, best = choose_decision(CONFIGS["claims"], ex.claims, seed)
        decision = decision or chosen
        threshold = best if threshold is None else threshold
    for name, examples in (("claims", ex.claims), ("pagekind", ex.kinds)):
        train_one(CONFIGS[name], *_split_dev(examples), out_dir / name, seed, feature_words=True)
    meta = {
        "corpus_sha256": corpus_sha256,
        "passages": len(rows),
        "seed": seed,
        "threshold": threshold,
        "decision": decision,
        "detector_rules": detector.version,
        "claim_examples": len(ex.claims),
        "claim_examples_promoted": sum(1 for e in ex.claims if e.cats["promoted"]),
        "page_kind_examples": len(ex.kinds),
        "candidate_recall": round(ex.candidates_found / ex.gold_promoted, 4) if ex.gold_promoted else None,
    }
    if out_dir.resolve() != DEFAULT_MODEL_DIR.resolve():  # the configs travel with the model they made
        for name, config in CONFIGS.items():
            shutil.copyfile(config, out_dir / f"{name}.cfg")
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta
