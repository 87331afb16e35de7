"""Detector speed against bare spaCy tokenisation, on the same generated pages, in the same run.

    .venv/bin/python benchmarks/detect.py [--pages 3000] [--words 300] [--seed 7] [--corpus all|real|site|site-joined|small]

Prints pages/s and words/s for spacy.blank("en") tokenisation alone, for the
detector's own tokenizer alone, for tokenisation plus the claim phrase matcher,
for the full detector on one process and with n_process=2, and on pages that
declare no language (guessed from their words first); then the detector's speed
as a ratio to spacy.blank("en") tokenisation (the goal: >= 0.5) and to its own
tokenizer (the same tokens, without the white-space special cases that stop
spaCy's cache, detect.drop_whitespace_special_cases, and with a cache of
detect.TOKENIZER_CACHE chunks instead of spaCy's 10,000: building the matcher
fills the default one with pattern words).

First, pages of twelve real-page passages each (make_corpus_pages, from
data/corpus/): the wording the detector meets on the web. Then three generated
corpora, sentences clinic-like or neutral (--clinic-share fixes the mix; 0
gives pages without claims):

- site-like pages (make_site_pages): laid out as the extractor writes a web page,
  one block per line, neutral sentences drawn from English word frequencies so
  that as many distinct words appear as on the labelled passages of data/eval;
  new pages every round. This is the text a crawl gives the detector. The same
  pages with their lines joined by spaces show how much of the figure comes from
  the line breaks (spaCy's cache stops at a newline; the detector's tokenizer does not).
- small-vocabulary pages (make_pages): twenty sentence templates, 190 distinct
  tokens, the same pages every round. Every word sits in the tokenizer's cache,
  so tokenisation runs five to ten times faster than on page text and the ratio
  shows its worst case.

Every figure streams: results are dropped as they come, as ``stemwatch scan`` and
``reanalyze`` do.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import random
import re
import resource
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy  # noqa: E402

from analysis.detect.detector import Detector  # noqa: E402

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
    """Small-vocabulary pages: sentences from the twenty templates above, a paragraph
    break after one in seven. Every word is in the tokenizer's cache after the first
    pages, so tokenisation runs far faster than on page text (the ratio's worst case)."""
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        clinic_share = rng.choice(shares)
        parts, count = [], 0
        while count < words:
            tpl = rng.choice(CLINIC) if rng.random() < clinic_share else rng.choice(NEUTRAL)
            s = _fill(rng, tpl)
            parts.append(s)
            count += len(s.split())
            if rng.random() < 0.15:
                parts.append("\n")
        pages.append({"text": " ".join(parts).replace(" \n ", "\n"),
                      "url": f"https://site{i % 50}.example.org/page{i}", "title": "", "lang": "en"})
    return pages


def _fill(rng: random.Random, template: str) -> str:
    return template.format(disease=rng.choice(DISEASES), joint=rng.choice(JOINTS),
                           tissue=rng.choice(TISSUES), pct=rng.randint(80, 99))


def _clinic(rng: random.Random) -> str:
    return _fill(rng, rng.choice(CLINIC))


_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)?|[0-9]{1,4}")


class Words:
    """English words drawn by their frequency in web text: the unigram probabilities
    of spacy-lookups-data (en_lexeme_prob), kept to words and numbers, the ``top`` most
    frequent. With the default of 5,000, pages drawn from them hold as many distinct
    tokens as the labelled page passages of data/eval do (at 10k, 30k and 60k tokens:
    2,163, 4,081 and 5,464 against 2,351, 4,157 and 5,741), so a tokenizer's cache meets
    new words about as often as on page text; the templates of make_pages give 190."""

    def __init__(self, top: int = 5000):
        import spacy_lookups_data
        path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lexeme_prob.json.gz"
        with gzip.open(path, "rt", encoding="utf-8") as f:
            probs = json.load(f)
        words = sorted((w for w in probs if _WORD.fullmatch(w) and w.lower() != "n't"), key=probs.get, reverse=True)
        self.words = words[:top]
        self.cum = list(itertools.accumulate(math.exp(probs[w]) for w in self.words))

    def draw(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum, k=k)

    def sentence(self, rng: random.Random) -> str:
        words = self.draw(rng, rng.randint(6, 28))
        for i in range(1, len(words) - 1):
            if rng.random() < 0.07:
                words[i] += ","
        return " ".join(words)[:1].upper() + " ".join(words)[1:] + rng.choice(".....?!")

    def title(self, rng: random.Random, lo: int, hi: int) -> str:
        return " ".join(w[:1].upper() + w[1:] for w in self.draw(rng, rng.randint(lo, hi)))


def make_site_pages(n: int, words: int, seed: int, shares=MIXED, vocabulary: Words | None = None,
                    line_breaks: bool = True) -> list[dict]:
    """Pages laid out as the extractor writes a web page, one block per line: a menu of
    short links, headings, paragraphs of one to six sentences, bulleted lists, a footer;
    sentences are clinic-like (the share per page drawn from ``shares``) or drawn from
    English word frequencies (Words). ``line_breaks=False`` joins the blocks with spaces,
    as text from a source without layout would come."""
    vocabulary = vocabulary or Words()
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        share = rng.choice(shares)

        def sentence():
            return _clinic(rng) if rng.random() < share else vocabulary.sentence(rng)

        lines = [vocabulary.title(rng, 1, 3) for _ in range(rng.randint(4, 9))]  # the menu
        count = 0
        while count < words:
            lines.append(vocabulary.title(rng, 2, 7))  # a heading
            for _ in range(rng.randint(1, 3)):
                lines.append(" ".join(sentence() for _ in range(rng.randint(1, 6))))
                count += len(lines[-1].split())
                if rng.random() < 0.25:
                    items = [rng.choice(DISEASES) if rng.random() < share else vocabulary.title(rng, 1, 5)
                             for _ in range(rng.randint(3, 7))]
                    lines += [f"• {item}" for item in items]
                    count += sum(len(item.split()) + 1 for item in items)
        lines += [f"© 2026 {vocabulary.title(rng, 2, 3)}", f"Call (555) 010-{rng.randint(1000, 9999)}",
                  f"{rng.randint(1, 999)} {vocabulary.title(rng, 1, 2)} Street"]
        pages.append({"text": ("\n" if line_breaks else " ").join(lines), "url": f"https://site{i % 50}.example.org/page{i}",
                      "title": lines[0], "lang": "en"})
    return pages


CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "passages.jsonl"


def make_corpus_pages(n: int, seed: int, per_page: int = 12) -> list[dict]:
    """Pages made of ``per_page`` real-page passages of data/corpus/ (drawn with the seed,
    one per line block, Spanish passages included): real wording, at page length."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        parts = rng.sample(rows, per_page)
        pages.append({"text": "\n".join(r["text"] for r in parts), "url": parts[0]["url"], "title": "",
                      "lang": ""})
    return pages


def consume(items) -> None:
    deque(items, maxlen=0)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(det: Detector, blank, rounds: list[list[dict]]) -> dict[str, float]:
    """Best time of each side over the rounds, every side on the same pages in a round.

    Rounds are interleaved (on a noisy machine a slow spell then hits every side) and each
    round may bring new pages, as a crawl does: a tokenizer's cache then holds the common
    words but not the rare ones."""
    nlp = det.nlps["en"]
    rules = Detector(model_dir=None)
    best = {}
    for pages in rounds:
        texts = [p["text"] for p in pages]
        # Pages that declare no language (a scan of text files; HTML without lang): guessed first.
        undeclared = [dict(p, lang="") for p in pages]
        # Every side streams, dropping each result as it comes (as scan and reanalyze do):
        # a list of 3,000 Docs made tokenisation 1.6 to 1.8 times slower here (fresh memory
        # for every Doc), which flattered the ratio by as much.
        runs = {"tok": lambda: consume(blank.pipe(texts, batch_size=64)),
                "own": lambda: consume(nlp.pipe(texts, batch_size=64, disable=nlp.pipe_names)),
                "ruler": lambda: consume(nlp.pipe(texts, batch_size=64, disable=["stemwatch_claims", "stemwatch_judge"]
                                                  if "stemwatch_judge" in nlp.pipe_names else ["stemwatch_claims"])),
                "rules": lambda: consume(rules.analyze_many(pages, n_process=1, batch_size=64)),
                "det": lambda: consume(det.analyze_many(pages, n_process=1, batch_size=64)),
                "det2": lambda: consume(det.analyze_many(pages, n_process=2, batch_size=64)),
                "guess": lambda: consume(det.analyze_many(undeclared, n_process=1, batch_size=64))}
        for name, run in runs.items():
            best[name] = min(best.get(name, float("inf")), timed(run))
    return best


def report(title: str, rounds: list[list[dict]]) -> float:
    """Figures for one corpus, on pipelines of its own: a tokenizer's cache is bounded
    (spaCy's default 10,000 chunks, the detector's detect.TOKENIZER_CACHE), so one that had
    read another corpus first would start this one with a cache full of its words."""
    blank, det = spacy.blank("en"), Detector()
    pages = rounds[0]
    consume(blank.pipe(p["text"] for p in pages[:50]))  # warm up
    consume(det.analyze_many(pages[:50]))
    n = len(pages)
    n_words = sum(len(d) for d in blank.pipe(p["text"] for p in pages))  # spaCy tokens, the unit for every figure
    claims = sum(len(a.claims) for a in det.analyze_many(pages))
    best = measure(det, blank, rounds)
    print(f"{title}: {n} pages a round, {n_words:,} tokens ({n_words / n:.0f} per page), "
          f"{claims / n:.1f} claims per page")
    print(f"tokenizer cache bound: spacy.blank('en') {blank.tokenizer.max_cache_size:,} chunks, "
          f"the detector's {det.nlps['en'].tokenizer.max_cache_size:,}")
    print(f"{'':40} {'pages/s':>10} {'words/s':>12}")
    for name, key in (("spacy.blank('en') tokenisation", "tok"), ("the detector's tokenizer alone", "own"),
                      ("tokenisation + claim phrase matcher", "ruler"), ("rules alone, n_process=1", "rules"),
                      ("full detector, n_process=1", "det"),
                      ("full detector, n_process=2", "det2"), ("  n_process=1, no language declared", "guess")):
        print(f"{name:40} {n / best[key]:10,.0f} {n_words / best[key]:12,.0f}")
    ratio = best["tok"] / best["det"]
    print(f"ratio detector / spacy.blank('en') tokenisation (one process): {ratio:.2f}  (goal >= 0.50)")
    print(f"ratio detector / its own tokenizer alone (one process):        {best['own'] / best['det']:.2f}")
    print(f"ratio rules alone / spacy.blank('en') tokenisation:           {best['tok'] / best['rules']:.2f}")
    print(f"peak memory of this process so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print()
    return ratio


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--words", type=int, default=300, help="approximate words per page")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds; best of each")
    ap.add_argument("--clinic-share", type=float, default=None,
                    help="share of clinic-like sentences on every page (default: a mix from 0 to 0.3)")
    ap.add_argument("--corpus", choices=("all", "real", "site", "site-joined", "small"), default="all")
    args = ap.parse_args(argv)

    if args.corpus in ("all", "real"):
        rounds = [make_corpus_pages(args.pages, args.seed + r) for r in range(args.repeat)]
        report("Pages of twelve real-page passages each (data/corpus/, new pages every round)", rounds)
        del rounds
    shares = MIXED if args.clinic_share is None else (args.clinic_share,)
    vocabulary = Words() if args.corpus != "small" else None
    for corpus, breaks, title in (
            ("site", True, "Site-like pages (lines, menus, lists; words drawn by English frequency; new pages every round)"),
            ("site-joined", False, "The same site-like pages with their lines joined by spaces")):
        if args.corpus in ("all", corpus):
            rounds = [make_site_pages(args.pages, args.words, args.seed + r, shares, vocabulary, line_breaks=breaks)
                      for r in range(args.repeat)]
            report(title, rounds)
            del rounds
    if args.corpus in ("all", "small"):
        pages = make_pages(args.pages, args.words, args.seed, shares)
        report("Small-vocabulary pages (twenty sentence templates, the same pages every round)", [pages] * args.repeat)
    # Start-up (a one-file scan, each spawned worker), next to the blank pipelines it builds on.
    det = Detector()
    t_start = min(timed(Detector) for _ in range(3))
    t_blanks = min(timed(lambda: [spacy.blank(lang) for lang in det.nlps]) for _ in range(3))
    print(f"start-up: Detector() {t_start:.2f} s; the blank pipelines alone ({', '.join(det.nlps)}) {t_blanks:.2f} s")


if __name__ == "__main__":
    main()
