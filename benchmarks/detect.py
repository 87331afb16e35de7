"""Detector speed against bare spaCy tokenisation, on the same synthetic pages, in the same run.

    .venv/bin/python benchmarks/detect.py [--pages 3000] [--words 300] [--seed 7]

Prints pages/s and words/s for spacy.blank("en") tokenisation alone, for
tokenisation plus the claim phrase matcher, for the full detector on one process,
their ratio (goal: >= 0.5), the full detector with n_process=2, and on pages that
declare no language (guessed from their words first). Pages mix
clinic-like and neutral sentences (--clinic-share to fix the mix; 0 gives
pages without claims). Every figure streams: results are dropped as they come,
as ``stemwatch scan`` and ``reanalyze`` do.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy  # noqa: E402

from analysis.detect import Detector  # noqa: E402

CLINIC = [
    "Our umbilical stem cell therapy can help patients with {disease}.",
    "Book a free consultation with our regenerative team today.",
    "Each amniotic injection contains millions of live stem cells.",
    "Stem cell injections regrow the cartilage in your {joint} without surgery.",
    "We have treated thousands of patients with a {pct}% success rate.",
    "Zero risk of rejection: donor cells need no matching.",
    "The cells transform into new {tissue} tissue where your body needs it.",
    "Our exosome lab is FDA registered and our protocol is IRB approved.",
    "Conditions we treat:\n{disease}\n{disease}\n{disease}",
    "Call us to schedule your appointment; financing is available.",
]
NEUTRAL = [
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "Rain is expected over the weekend, with temperatures falling to eight degrees.",
    "The library extends its opening hours during the examination period.",
    "Researchers at the university published a review of bridge maintenance methods.",
    "Our bakery opens at seven and sells bread, pastries and coffee.",
    "The train to the coast leaves every hour from platform four.",
    "Volunteers planted two hundred trees along the river path.",
    "The museum's new wing shows ceramics from the eighteenth century.",
    "Autism awareness week includes talks for parents and teachers.",
    "A knee injury kept the striker out of the team for a month.",
]
DISEASES = ["autism", "multiple sclerosis", "Parkinson's disease", "COPD", "heart failure", "ALS", "lupus"]
JOINTS = ["knee", "hip", "shoulder"]
TISSUES = ["heart", "nerve", "kidney"]


# Share of clinic-like sentences per page: most pages of a crawl (news, about pages, blogs,
# contact pages) hold no claim; a clinic's treatment page holds a claim every few sentences.
MIXED = (0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.3)


def make_pages(n: int, words: int, seed: int, shares=MIXED) -> list[dict]:
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        clinic_share = rng.choice(shares)
        parts, count = [], 0
        while count < words:
            tpl = rng.choice(CLINIC) if rng.random() < clinic_share else rng.choice(NEUTRAL)
            s = tpl.format(disease=rng.choice(DISEASES), joint=rng.choice(JOINTS),
                           tissue=rng.choice(TISSUES), pct=rng.randint(80, 99))
            parts.append(s)
            count += len(s.split())
            if rng.random() < 0.15:
                parts.append("\n")
        pages.append({"text": " ".join(parts).replace(" \n ", "\n"),
                      "url": f"https://site{i % 50}.example.org/page{i}", "title": "", "lang": "en"})
    return pages


def consume(items) -> None:
    deque(items, maxlen=0)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--words", type=int, default=300, help="approximate words per page")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds; best of each for the one-process figures")
    ap.add_argument("--clinic-share", type=float, default=None,
                    help="share of clinic-like sentences on every page (default: a mix from 0 to 0.3)")
    args = ap.parse_args(argv)

    shares = MIXED if args.clinic_share is None else (args.clinic_share,)
    pages = make_pages(args.pages, args.words, args.seed, shares)
    texts = [p["text"] for p in pages]
    blank = spacy.blank("en")
    n_words = sum(len(d) for d in blank.pipe(texts))  # spaCy tokens, the unit for every figure
    det = Detector()
    list(det.analyze_many(pages[:50]))  # warm up
    # Start-up (a one-file scan, each spawned worker), next to the blank pipelines it builds on.
    t_start = min(timed(Detector) for _ in range(3))
    t_blanks = min(timed(lambda: [spacy.blank(lang) for lang in det.nlps]) for _ in range(3))

    # Interleaved rounds, best of each: on a noisy machine a slow spell then hits both
    # sides instead of one.
    nlp = det.nlps["en"]
    # Every side streams, dropping each result as it comes (as scan and reanalyze do):
    # a list of 3,000 Docs made tokenisation 1.6 to 1.8 times slower here (fresh memory
    # for every Doc), which flattered the ratio by as much.
    runs = {"tok": lambda: consume(blank.pipe(texts, batch_size=64)),
            "ruler": lambda: consume(nlp.pipe(texts, batch_size=64, disable=["stemwatch_claims"])),
            "det": lambda: consume(det.analyze_many(pages, n_process=1, batch_size=64)),
            "det2": lambda: consume(det.analyze_many(pages, n_process=2, batch_size=64))}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run))
    t_tok, t_ruler, t_det, t_det2 = best["tok"], best["ruler"], best["det"], best["det2"]
    # Pages that declare no language (a scan of text files; HTML without lang): guessed first.
    undeclared = [dict(p, lang="") for p in pages]
    t_guess = timed(lambda: consume(det.analyze_many(undeclared, n_process=1, batch_size=64)))
    claims = sum(len(a.claims) for a in det.analyze_many(pages))

    print(f"{args.pages} synthetic pages, {n_words:,} tokens ({n_words / args.pages:.0f} per page), "
          f"{claims / args.pages:.1f} claims per page")
    print(f"{'':38} {'pages/s':>10} {'words/s':>12}")
    for name, t in (("spacy.blank('en') tokenisation", t_tok), ("tokenisation + claim phrase matcher", t_ruler),
                    ("full detector, n_process=1", t_det), ("full detector, n_process=2", t_det2),
                    ("  n_process=1, no language declared", t_guess)):
        print(f"{name:38} {args.pages / t:10,.0f} {n_words / t:12,.0f}")
    print(f"ratio detector / tokenisation (one process): {t_tok / t_det:.2f}  (goal >= 0.50)")
    print(f"start-up: Detector() {t_start:.2f} s; the blank pipelines alone ({', '.join(det.nlps)}) {t_blanks:.2f} s")


if __name__ == "__main__":
    main()
