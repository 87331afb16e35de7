"""Where the detector's time goes: each stage of it switched on in turn, on the pages of
benchmarks/detect.py, next to bare spaCy tokenisation in the same run.

    .venv/bin/python benchmarks/detect_stages.py [--pages 3000] [--repeat 5] [--corpus site|site-joined|small]

Stages, each including the ones above it:
  tokenisation + phrase matcher   the resolver passes every doc through untouched
  + matches read, page kind       the resolver stops before its per-page index
  + sentence index of the page    PageIndex built, no candidate evaluated
  full detector                   context rules and stance for every candidate
The later stages are switched off by replacing one method for the measurement only;
they show how much of the time is left once a stage costs nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import spacy  # noqa: E402

from analysis.detect.detector import Detector  # noqa: E402
from analysis.detect.matcher import MATCHES  # noqa: E402
from analysis.detect.page_index import PageIndex  # noqa: E402
from analysis.detect.claims import ClaimResolver  # noqa: E402
from detect import Words, consume, make_pages, make_site_pages, timed  # noqa: E402


def _passthrough(self, doc):
    doc.user_data.pop(MATCHES, None)
    return doc


# (stage, {(class, method): replacement}) with every stage after the first adding work
STAGES = [
    ("tokenisation + phrase matcher", {(ClaimResolver, "__call__"): _passthrough}),
    ("+ matches read, page kind", {(ClaimResolver, "_claims"): lambda self, *args: []}),
    ("+ sentence index of the page", {(PageIndex, "sentences_of"): lambda self, tokens: []}),
    ("full detector", {}),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds, best of each")
    ap.add_argument("--corpus", choices=("site", "site-joined", "small"), default="site",
                    help="the site-like pages of benchmarks/detect.py, the same with lines joined, "
                         "or the small-vocabulary pages")
    args = ap.parse_args(argv)
    pages = (make_pages(args.pages, 300, 7) if args.corpus == "small" else
             make_site_pages(args.pages, 300, 7, vocabulary=Words(), line_breaks=args.corpus == "site"))
    texts = [p["text"] for p in pages]
    blank, det = spacy.blank("en"), Detector()
    consume(det.analyze_many(pages[:50]))
    nlp = det.nlps["en"]
    tok = {"spacy.blank('en') tokenisation": lambda: consume(blank.pipe(texts, batch_size=64)),
           "the detector's tokenizer alone": lambda: consume(nlp.pipe(texts, batch_size=64,
                                                                      disable=["stemwatch_ruler", "stemwatch_claims"]))}
    best = dict.fromkeys(tok, float("inf")) | {name: float("inf") for name, _ in STAGES}
    for _ in range(args.repeat):
        for name, run in tok.items():
            best[name] = min(best[name], timed(run))
        for name, stubs in STAGES:
            saved = {key: getattr(*key) for key in stubs}
            for (cls, method), replacement in stubs.items():
                setattr(cls, method, replacement)
            try:
                best[name] = min(best[name], timed(lambda: consume(det.analyze_many(pages, batch_size=64))))
            finally:
                for (cls, method), original in saved.items():
                    setattr(cls, method, original)
    base = best["the detector's tokenizer alone"]
    print(f"{args.pages} {args.corpus} pages; µs per page and ratio to the detector's own tokenizer alone")
    for name, t in best.items():
        print(f"{name:34} {t / args.pages * 1e6:8.1f} µs {base / t:6.2f}")


if __name__ == "__main__":
    main()
