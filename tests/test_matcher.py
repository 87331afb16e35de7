"""The phrase matcher's keys and the weak cues matched only in the sentence that needs them."""

from __future__ import annotations

import shutil

import pytest
import spacy

from analysis.detect.detector import TOKENIZER_CACHE, Detector
from analysis.detect.matcher import MATCHES, PhraseTable
from analysis.detect.claims import KIND

CLINIC = "https://www.example.org/treatments/"


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(model_dir=None)  # the phrase rules, without the learned stage


def test_each_phrase_has_one_key_holding_all_its_meanings(det):
    nlp = spacy.blank("en")
    keys = PhraseTable(nlp, det.patterns_dir, "en").keys()
    owner: dict[tuple, str] = {}
    for key, (docs, meaning) in keys.items():
        assert meaning.cues or meaning.kinds or meaning.claims, key
        for doc in docs:
            words = tuple(t.lower_ for t in doc)
            assert words not in owner, (words, key, owner.get(words))
            owner[words] = key
    # a phrase listed under several labels (a claim anchor that is also an offer cue) is
    # matched once, under one key that carries every meaning
    shared = [m for _, m in keys.values() if len(m.cues) + len(m.kinds) + len(m.claims) > 1]
    assert shared, "the pattern files list some phrases under several labels"


def test_the_resolver_reads_the_phrases_once_or_alone(det):
    """In the detector's pipeline the resolver reuses the ruler's tokenised phrases (reading
    them four times was a third of start-up); without a ruler it reads its own and
    decides the page kind from its cue matches."""
    nlp = det.nlps["en"]
    assert nlp.get_pipe("stemwatch_claims").table is nlp.get_pipe("stemwatch_ruler").table
    alone = spacy.blank("en")
    alone.add_pipe("stemwatch_claims", config={"patterns_dir": str(det.patterns_dir), "lang": "en"})
    text = "Book your free consultation today. Call us. Pricing and financing for stem cell therapy."
    kinds = [pipeline(text).user_data[KIND] for pipeline in (alone, nlp)]
    assert kinds == ["clinic", "clinic"]


def test_weak_cues_are_not_matched_page_wide(det):
    nlp = det.nlps["en"]
    lazy = PhraseTable(nlp, det.patterns_dir, "en").sentence_labels
    assert "cue:treat-weak" in lazy
    doc = nlp.get_pipe("stemwatch_ruler")(nlp.make_doc("Our stem cell protocol for autism."))
    resolver = nlp.get_pipe("stemwatch_claims")
    labels = {label for key, _, _ in doc.user_data[MATCHES] for label in resolver.keys[key].cues}
    assert "cue:regen" in labels and "cue:treat-weak" not in labels


@pytest.mark.parametrize("text, expected", [
    # the weak offer word counts beside the product in the claim's own sentence ...
    ("Our stem cell protocol for autism.", "protocol for autism"),
    ("Stem cell infusion for autism and ALS.", "infusion for autism"),
    ("We manage autism with stem cells.", "manage autism"),
    # ... and not alone, nor with the product in another sentence
    ("Our autism protocol.", None),
    ("Infusion for autism.", None),
    ("Stem cells. Autism management.", None),
])
def test_weak_cue_claims(det, text, expected):
    claims = [c for c in det.analyze(text, url=CLINIC).claims if c.category == "disease-cure"]
    if expected is None:
        assert claims == []
    else:
        assert [(c.text, c.stance) for c in claims] == [(expected, "promoted")]


def test_a_weak_phrase_holding_a_negation_stays_page_wide(tmp_path, det):
    """The stance decision sets aside a negation inside another cue's words, which it can
    only do for cues matched over the page."""
    patterns = tmp_path / "patterns"
    shutil.copytree(det.patterns_dir, patterns)
    nlp = spacy.blank("en")
    assert "cue:treat-weak" in PhraseTable(nlp, patterns, "en").sentence_labels
    with open(patterns / "context_en.jsonl", "a", encoding="utf-8") as f:
        f.write('{"label": "cue:treat-weak", "pattern": "no-needle protocol", "id": "test-weak"}\n')
    assert "cue:treat-weak" not in PhraseTable(nlp, patterns, "en").sentence_labels


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_detector_tokenises_as_spacy_blank_does(det, lang):
    # Its tokenizer drops the white-space special cases (detect.drop_whitespace_special_cases)
    # so that spaCy keeps caching after a newline; the tokens must stay the same.
    texts = ["Stem cells\ncure autism.\n\nBook now!", "Line one\r\nline\ttwo\u00a0three  four \n",
             "We don't  claim\n- it can't regrow\tcartilage, e.g. in knees.\n \n",
             "Las células madre\ncuran el autismo al 90%.\n\n¡Reserve hoy!", "\n", " \t\n x"]
    blank = spacy.blank(lang)
    ours = det.nlps[lang]
    assert not [orth for orth in ours.tokenizer.rules if orth.isspace()]
    assert [orth for orth in blank.tokenizer.rules if orth.isspace()], "spaCy no longer has them: drop the workaround"
    for text in texts:
        if lang == "es":  # the Spanish pipeline also splits "90%" (build_pipeline)
            text = text.replace("90%", "90 %")
        mine = [(t.text, t.whitespace_) for t in ours.make_doc(text)]
        theirs = [(t.text, t.whitespace_) for t in blank.make_doc(text)]
        assert mine == theirs, text


def test_the_tokenizer_cache_has_room_for_page_words(det):
    # Building the matcher tokenises thousands of pattern phrases; with spaCy's default
    # bound (10,000 chunks) the cache was full before the first page (detect.TOKENIZER_CACHE).
    assert TOKENIZER_CACHE > spacy.blank("en").tokenizer.max_cache_size
    for nlp in det.nlps.values():
        assert nlp.tokenizer.max_cache_size == TOKENIZER_CACHE


def test_claims_do_not_depend_on_the_tokenizer_cache(det):
    pages = [{"text": "Stem Cell Therapy for Autism\nOur stem cells cure autism in 90% of children.\n"
                      "Book now: 555-0100.", "url": CLINIC},
             {"text": "We do not claim that stem cells can regrow cartilage. There is no proof.", "url": CLINIC},
             {"text": "Las células madre curan el autismo. ¡Reserve hoy su consulta!", "url": CLINIC, "lang": "es"}]
    cached, uncached = det, Detector(model_dir=None)
    for nlp in uncached.nlps.values():
        nlp.tokenizer.max_cache_size = 0
        nlp.tokenizer.rules = nlp.tokenizer.rules  # the setter empties the cache
    for _ in range(2):  # the second round reads the cached side from its cache
        want = [(a.page_kind, [(c.category, c.stance, c.start, c.end) for c in a.claims])
                for a in cached.analyze_many(pages)]
        got = [(a.page_kind, [(c.category, c.stance, c.start, c.end) for c in a.claims])
               for a in uncached.analyze_many(pages)]
        assert got == want
    assert any(claims for _, claims in want)
