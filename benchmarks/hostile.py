"""Detector and extraction time on hostile pages, next to a baseline on the same input in the same run.

    .venv/bin/python benchmarks/hostile.py [--scale 1.0]

Pages a crawl may meet: no sentence ends, endless lists, one huge "word", claim and
negation spam. Every line prints seconds for ``spacy.blank("en")`` tokenisation and
for the full detector, and their ratio; doubling --scale should double both (work
linear in page size). A page that stopped the detector for minutes (quadratic or
worse in its sentence length) shows up here as a ratio far below the others.
The second table does the same for HTML text extraction against lxml's parse alone:
deep unclosed elements, unclosed scripts and stray "<" in a document too deep to parse.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lxml.html  # noqa: E402
import spacy  # noqa: E402

from analysis.detect.detector import Detector  # noqa: E402
from analysis.extract import extract_html  # noqa: E402
from detect import timed  # noqa: E402

PAGES = {
    "no sentence ends, promoted": "our stem cell therapy cures autism and ",
    "no sentence ends, negated": "stem cells do not cure autism and ",
    "negated sentences": "Autism. Stem cells do not cure autism. ",
    "list, no product": "autism\n",
    "list under a heading": "ALS\nautism\n",
    "percent spam": "stem cell therapy 90% success ",
    "offer spam": "Lupus is bad and our stem cell therapy cannot help it, ",
    # runs of punctuation or symbols without a space: spaCy's own tokenizer is quadratic
    # in their length (the baseline column); the detector breaks them first
    "a run of '!'": "!",
    "a run of emoji": "\U0001f642",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="page size factor (1.0: about 200,000 characters)")
    args = ap.parse_args(argv)
    blank, det = spacy.blank("en"), Detector()
    blank.max_length = det.nlps["en"].max_length
    texts = {name: unit * int(200_000 * args.scale / len(unit)) for name, unit in PAGES.items()}
    runs = ("a run of '!'", "a run of emoji")

    def run_page(name, extra=0):  # kept short: the tokenisation baseline is quadratic in the run
        return PAGES[name] * (int(4_000 * args.scale) + extra) + " stem cells cure autism"
    for name in runs:
        texts[name] = run_page(name)
    texts["list under a heading"] = "Conditions we treat with stem cells:\n" + texts["list under a heading"]
    texts["one huge word"] = "x" * int(1_000_000 * args.scale)
    print(f"{'page':28} {'chars':>10} {'tokenise s':>11} {'detect s':>9} {'ratio':>6} {'claims':>7}")
    for name, text in texts.items():
        # a run is one "word", which the tokenizer caches once seen: each round gets its own length
        def variant(r):
            return run_page(name, r) if name in runs else text
        t_tok = min(timed(lambda: blank(variant(r))) for r in range(3))
        claims = []
        t_det = min(timed(lambda: claims.append(det.analyze(variant(r + 3), url="https://clinic.example.org/",
                                                            lang="en"))) for r in range(3))
        print(f"{name:28} {len(text):>10,} {t_tok:>11.3f} {t_det:>9.3f} {t_tok / t_det:>6.2f} {len(claims[-1].claims):>7}")

    deep = b"<div>" * 3000  # deeper than libxml2 parses: the tag-stripping fallback
    n = int(40_000 * args.scale)
    documents = {
        "unclosed divs, 2,000 deep": b"<div><p>stem cells cure autism</p>" * 2000,
        "too deep + unclosed scripts": deep + b"<script>x " * n,
        "too deep + stray <": deep + b"< x " * n,
        "too deep + comments": deep + b"<!-- x " * n,
        "many headings and lists": b"<h2>Autism</h2><ul><li>stem cells help</li></ul>" * n,
    }
    print(f"\n{'HTML':28} {'bytes':>10} {'lxml s':>11} {'extract s':>9} {'ratio':>6} {'chars':>9}")
    for name, html in documents.items():
        parser = lxml.html.HTMLParser(recover=True, huge_tree=True)
        t_parse = min(timed(lambda: lxml.html.document_fromstring(html, parser=parser)) for _ in range(3))
        pages = []
        t_ext = min(timed(lambda: pages.append(extract_html(html, "https://clinic.example.org/"))) for _ in range(3))
        print(f"{name:28} {len(html):>10,} {t_parse:>11.3f} {t_ext:>9.3f} {t_parse / t_ext:>6.2f} {len(pages[-1].text):>9,}")


if __name__ == "__main__":
    main()
