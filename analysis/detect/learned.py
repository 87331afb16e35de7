"""``stemwatch_judge``: the learned stage, trained on the real-page corpus (data/corpus/).

The phrase rules find claims through wording; on real pages they miss promises
made in other words and take reports, explainers and advice for promises. This
stage sees more and decides from what a person uses:

1. Candidates, broadly: for each category, the sentences of the page (with their
   neighbours) that hold one of its claim phrases, in any stance and whether or
   not its context rules held, or one of its candidate cues
   (patterns/candidates.json: a joint, a birth-tissue product, an approval word,
   an outcome...).
2. Two spaCy text classifiers (``spacy train``, configs in data/model/): the page
   kind, from the page's words, host, URL path and the rules' page kind; and, per
   candidate, whether the page promotes that category, from the candidate
   sentences and the rules' findings (pattern ids, stances, cue labels, page kind).
3. The decision (DECISIONS, chosen at training with its threshold): the score
   alone, the score as a veto on the rules, or the score in union with them. A rule claim the model does not hold promoted becomes ``reported``
   (cue: its score); a promoted candidate without a promoted rule claim takes the
   rule claim of its category, or becomes a claim of its own (pattern ``learned``)
   on its best sentence, explained by the category's ``why`` and the words that
   weighed most. Every claim carries its category's score.

A candidate is a bag of feature words, each tied to its category
("c_diseasecure_rule_promoted", "c_diseasecure_w_autism" for a word of one of its
first hit sentences, the cue labels of its neighbours): the passage's plain words are shared by all
its candidates and cannot tell one category from another (measured: with them
the model did worse). The classifiers stay linear bags of words: small,
deterministic to train, fast to run.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.attrs import IDX
from spacy.language import Language
from spacy.tokens import Doc

from analysis.detect.claims import INFO, KIND, RAW
from analysis.detect.pagekind import url_host
from analysis.detect.sentences import sentence_cuts
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR, load_taxonomy
from analysis.detect.text import url_path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "model"
LEARNED = "learned"  # pattern id of a claim found by the model alone
KINDS = ("clinic", "news", "academic", "regulator", "advocacy", "other")
# How a category's score decides, chosen at training on held-out examples (meta.json):
# "model": the score alone; "veto": the rules promote it and the score agrees; "union":
# the rules promote it or the score does.
DECISIONS = ("model", "veto", "union")


MAX_CANDIDATE_CHARS = 1500  # per category: its hit sentences and their neighbours, up to this
MAX_KIND_CHARS = 2000
_WORDS = re.compile(r"[^\W\d_]+")
_NEIGHBOURS = 1  # sentences either side of a hit that the candidate takes in
MAX_WORD_SENTENCES = 4  # taken sentences, counting neighbours, whose hits lend their words


def decide(decision: str, rules_promote: bool, score: float, threshold: float) -> bool:
    if decision == "veto":
        return rules_promote and score >= threshold
    if decision == "union":
        return rules_promote or score >= threshold
    return score >= threshold


def code(label: str) -> str:
    """A label as one token: "disease-cure" -> "diseasecure", "stance:negation" -> "stancenegation"."""
    return re.sub(r"[^a-z0-9]", "", label.lower())


@dataclass(frozen=True)
class Candidate:
    """One category's candidate on one page: the model's input and where its sentences are."""
    category: str
    text: str
    sentences: tuple[tuple[int, int], ...]  # character ranges, best first (those with claim phrases)


@dataclass(frozen=True)
class PageFeatures:
    kind_text: str
    candidates: tuple[Candidate, ...]


def load_candidate_cues(patterns_dir: Path) -> dict[str, frozenset[str]]:
    """patterns/candidates.json: category -> cue labels that make a sentence its candidate."""
    path = Path(patterns_dir) / "candidates.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return {cat: frozenset(labels) for cat, labels in data["cues"].items()}
    except (KeyError, AttributeError, TypeError) as e:
        raise ValueError(f"{path}: 'cues' must map categories to lists of cue labels ({e})") from None


def _sentence_ranges(text: str) -> list[tuple[int, int]]:
    cuts = [0] + sentence_cuts(text) + [len(text)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if text[a:b].strip()]


def features(doc: Doc, text: str, url: str, title: str, lang: str, rule_kind: str,
             candidate_cues: dict[str, frozenset[str]], categories) -> PageFeatures:
    """The inputs of both classifiers for a page the rules have read (doc.user_data
    holds their raw matches, RAW, and claims, INFO: see claims.py)."""
    cues, raw = doc.user_data.get(RAW, ((), ()))
    claims = doc.user_data.get(INFO, ())
    host = url_host(url) if "//" in url else ""
    path_words = " ".join(_WORDS.findall(url_path(url).lower())) if url else ""
    host_words = " ".join("h_" + w for w in _WORDS.findall(host))
    # feature words too (feature_doc): the page's first words, its title, URL and host words
    kind_text = " ".join([f"k_rule_{rule_kind}", f"k_lang_{lang}", host_words, path_words,
                          *("t_" + w for w in _WORDS.findall(title.lower())),
                          *_WORDS.findall(text[:MAX_KIND_CHARS].lower())])
    ranges = range_starts = None
    hits: dict[str, dict[int, set[str]]] = {}  # category -> sentence -> feature words
    starts = doc.to_array(IDX).tolist() if (raw or cues) else []

    def sent(token: int) -> int:
        """The sentence that holds a token (ranges are made on first use)."""
        nonlocal ranges, range_starts
        if ranges is None:
            ranges = _sentence_ranges(text)
            range_starts = [a for a, _ in ranges]
        return max(bisect_right(range_starts, starts[token]) - 1, 0)

    for start, _end, cat, pid in raw:
        hits.setdefault(cat, {}).setdefault(sent(start), set()).add("raw_" + code(pid))
    by_cue: dict[str, list[int]] = {}
    for label, start, _end in cues:
        by_cue.setdefault(label, []).append(start)
    for cat in categories:
        for label in candidate_cues.get(cat, ()):
            for start in by_cue.get(label, ()):
                hits.setdefault(cat, {}).setdefault(sent(start), set()).add("cue_" + code(label))
    rule_stances: dict[str, set[str]] = {}
    for a, _b, cat, pid, stance, *_ in claims:
        rule_stances.setdefault(cat, set()).add(stance)
    if not hits:
        return PageFeatures(kind_text, ())
    sentence_cues: dict[int, set[str]] = {}
    for label, start, _end in cues:
        sentence_cues.setdefault(sent(start), set()).add(code(label))
    out = []
    for cat in categories:
        where = hits.get(cat)
        if not where:
            continue
        c = "c_" + code(cat)
        words = {f"{c}_kind_{rule_kind}", f"{c}_lang_{lang}", f"kind_{rule_kind}"}
        words |= {f"{c}_rule_{s}" for s in rule_stances.get(cat, ())} or {f"{c}_rule_none"}
        hits_first = sorted(where, key=lambda i: (not any(w.startswith("raw_") for w in where[i]), i))
        size = 0
        taken: list[int] = []  # hit sentences, then their neighbours, while the budget lasts
        for si in hits_first:
            words |= {f"{c}_{w}" for w in where[si]}
            for j in (si, *range(si - _NEIGHBOURS, si), *range(si + 1, si + _NEIGHBOURS + 1)):
                if not 0 <= j < len(ranges) or j in taken:
                    continue
                a, b = ranges[j]
                if size and size + (b - a) > MAX_CANDIDATE_CHARS:
                    continue
                size += b - a
                taken.append(j)
                if j in where and len(taken) <= MAX_WORD_SENTENCES:
                    # the first hits' own words (a neighbour's, and later hits', lend only their cues)
                    words |= {f"{c}_w_{w}" for w in _WORDS.findall(text[a:b].lower()) if len(w) > 2}
                words |= {f"{c}_{w}" for w in sentence_cues.get(j, ())}
        out.append(Candidate(cat, " ".join(sorted(words)), tuple(ranges[j] for j in hits_first)))
    return PageFeatures(kind_text, tuple(out))


def feature_doc(vocab, text: str) -> Doc:
    """A candidate's feature words as a Doc, one token each, without the tokenizer: they
    hold only letters, digits and underscores, so it would split them on the spaces
    alone, at several times the cost."""
    return Doc(vocab, words=text.split())


def model_hash(model_dir: Path) -> str:
    """The trained models' identity: meta.json records the corpus hash and settings."""
    meta = Path(model_dir) / "meta.json"
    return hashlib.sha256(meta.read_bytes()).hexdigest()[:12] if meta.exists() else ""


class Judge:
    """The two trained classifiers of a model folder (made by ``stemwatch train``)."""

    def __init__(self, model_dir: str | Path, threshold: float | None = None):
        self.model_dir = Path(model_dir)
        meta_path = self.model_dir / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{self.model_dir}: no trained model (meta.json); run `make train`")
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.threshold = float(self.meta.get("threshold", 0.5) if threshold is None else threshold)
        self.decision = self.meta.get("decision", "model")
        if self.decision not in DECISIONS:
            raise ValueError(f"{meta_path}: unknown decision {self.decision!r} (known: {', '.join(DECISIONS)})")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} is not between 0 and 1")
        self.claims_nlp = spacy.load(self.model_dir / "claims")
        self.kind_nlp = spacy.load(self.model_dir / "pagekind")
        self.version = model_hash(self.model_dir)

    def page_kind(self, kind_text: str) -> str:
        cats = self.kind_nlp(feature_doc(self.kind_nlp.vocab, kind_text)).cats
        return max(sorted(cats), key=cats.get)

    def scores(self, candidates: tuple[Candidate, ...]) -> list[float]:
        vocab = self.claims_nlp.vocab
        return [d.cats.get("promoted", 0.0)
                for d in self.claims_nlp.pipe(feature_doc(vocab, c.text) for c in candidates)]

    def weighing_words(self, candidate: Candidate, text: str, span: tuple[int, int], n: int = 3) -> list[str]:
        """The words of the sentence whose removal lowers the score most (occlusion)."""
        sentence = text[span[0]:span[1]].lower()
        words = list(dict.fromkeys(w for w in _WORDS.findall(sentence) if len(w) > 2))
        if not words:
            return []
        tokens = candidate.text.split()
        base = self.scores((candidate,))[0]
        probes = tuple(Candidate(candidate.category, " ".join(t for t in tokens if not t.endswith("_w_" + w)), ())
                       for w in words)
        drops = [base - s for s in self.scores(probes)]
        ranked = sorted(zip(drops, words), key=lambda p: (-p[0], p[1]))
        return [w for d, w in ranked[:n] if d > 0]


@lru_cache(maxsize=4)
def shared_judge(model_dir: Path, threshold: float | None) -> Judge:
    """One Judge per model folder and threshold: the English and Spanish pipelines share
    the models instead of loading them twice."""
    return Judge(model_dir, threshold)


@dataclass(frozen=True)
class Verdict:
    """The model's word on one category of a page."""
    category: str
    score: float
    promoted: bool


def combine(info: list[tuple], verdicts: dict[str, Verdict], severity) -> tuple[list[tuple], list[str]]:
    """The rule claims (INFO tuples) under the model's verdicts, each with its score last,
    and the categories the model holds promoted that no rule claim can carry.

    A promoted rule claim of a category the model does not hold promoted is ``reported``;
    a category the model holds promoted, without a promoted rule claim, promotes its
    first rule claim. Categories the model never saw (no candidate) keep the rules' word.
    """
    out, carried = [], set()
    for claim in info:
        a, b, cat, pid, stance, cue, _sev, ranges = claim[:8]
        v = verdicts.get(cat)
        if v is None:
            out.append((a, b, cat, pid, stance, cue, _sev, ranges, None))
            continue
        if stance == "promoted" and not v.promoted:
            stance, cue = "reported", f"learned score {v.score:.2f}"
        elif v.promoted and stance != "promoted" and cat not in carried and \
                not any(c[2] == cat and c[4] == "promoted" for c in info):
            stance, cue = "promoted", f"learned score {v.score:.2f}"
        if stance == "promoted":
            carried.add(cat)
        out.append((a, b, cat, pid, stance, cue, severity(cat, stance), ranges, round(v.score, 4)))
    missing = [cat for cat, v in verdicts.items() if v.promoted and cat not in carried]
    return out, missing


@Language.factory("stemwatch_judge",
                  default_config={"model_dir": "", "patterns_dir": "", "threshold": -1.0})
def make_judge(nlp: Language, name: str, model_dir: str, patterns_dir: str, threshold: float):
    return JudgeComponent(Path(model_dir or DEFAULT_MODEL_DIR), Path(patterns_dir or DEFAULT_PATTERNS_DIR),
                          None if threshold < 0 else threshold)


class JudgeComponent:
    """Runs after stemwatch_claims: page kind and claims decided by the trained models."""

    def __init__(self, model_dir: Path, patterns_dir: Path, threshold: float | None):
        self.judge = shared_judge(model_dir, threshold)
        self.taxonomy = load_taxonomy(patterns_dir)
        self.candidate_cues = load_candidate_cues(patterns_dir)

    def __call__(self, doc: Doc) -> Doc:
        meta = doc._context if isinstance(doc._context, dict) else {}
        text = meta["text"] if "text" in meta else doc.text  # (not .get: doc.text walks every token)
        lang = doc.lang_
        feats = features(doc, text, meta.get("url", ""), meta.get("title", ""), lang,
                         doc.user_data.get(KIND, "other"), self.candidate_cues, self.taxonomy.categories)
        judge = self.judge
        doc.user_data[KIND] = judge.page_kind(feats.kind_text)
        scores = judge.scores(feats.candidates) if feats.candidates else []
        ruled = {c[2] for c in doc.user_data.get(INFO, ()) if c[4] == "promoted"}
        verdicts = {c.category: Verdict(c.category, s, decide(judge.decision, c.category in ruled, s, judge.threshold))
                    for c, s in zip(feats.candidates, scores)}
        info, missing = combine(list(doc.user_data.get(INFO, ())), verdicts, self.taxonomy.severity)
        by_cat = {c.category: c for c in feats.candidates}
        for cat in missing:
            cand = by_cat[cat]
            if not cand.sentences:
                continue
            a, b = cand.sentences[0]
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            words = judge.weighing_words(cand, text, (a, b))
            cue = "learned: " + ", ".join(words) if words else "learned"
            info.append((a, b, cat, LEARNED, "promoted", cue, self.taxonomy.severity(cat, "promoted"),
                         [(a, b)], round(verdicts[cat].score, 4)))
        doc.user_data[INFO] = sorted(info, key=lambda c: (c[0], c[2]))
        return doc
