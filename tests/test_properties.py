"""Properties that hold for any input: extraction, sentence splitting and detection never
raise, every claim's offsets point at its words, and the same input gives the same output."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.detect.detector import Detector
from analysis.detect.sentences import sentence_cuts
from analysis.display import visible
from analysis.extract import extract_html
from analysis.extract.content import ContentError, read_body

# Words the detector reacts to, mixed into arbitrary text so that claims do get made.
WORDS = ["stem", "cells", "cure", "autism", "regrow", "cartilage", "FDA", "approved", "miracle",
         "guaranteed", "no", "not", "rejection", "amniotic", "live", "our", "we", "therapy", "?", ":",
         "\n", "•", "células", "madre", "curan", "100%", "Dr.", "A:", "Q:", "exosomes", "trial"]
TEXT = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=80).map(" ".join)
TAGS = ["p", "div", "h1", "h2", "li", "ul", "title", "script", "style", "a", "br", "!--", "table", "td"]


@st.composite
def html(draw):
    parts = []
    for _ in range(draw(st.integers(0, 25))):
        tag = draw(st.sampled_from(TAGS))
        body = draw(TEXT)
        parts.append(f"<{tag}>{body}" + ("" if draw(st.booleans()) else f"</{tag}>"))
    return "<html>" + "".join(parts)


@pytest.fixture(scope="module")
def detectors():
    return Detector(model_dir=None), Detector()


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(text=TEXT)
def test_sentence_cuts_are_sorted_offsets_inside_the_text(text):
    cuts = sentence_cuts(text)
    assert cuts == sorted(cuts) and all(0 < c <= len(text) for c in cuts)


@SETTINGS
@given(body=st.one_of(html(), st.binary(max_size=400)), mtype=st.sampled_from(["text/html", "text/plain", ""]))
def test_reading_a_body_never_raises_but_content_error(body, mtype):
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        page, kind = read_body(raw, mtype, "https://clinic.example.org/")
    except ContentError:
        return
    assert kind in ("html", "text", "pdf") and isinstance(page.text, str)


@SETTINGS
@given(doc=html())
def test_detection_on_extracted_html_is_consistent(detectors, doc):
    page = extract_html(doc, "https://clinic.example.org/")
    for det in detectors:
        first = det.analyze(page.text, url="https://clinic.example.org/", title=page.title)
        again = det.analyze(page.text, url="https://clinic.example.org/", title=page.title)
        assert [c.to_dict() for c in first.claims] == [c.to_dict() for c in again.claims]
        for c in first.claims:
            assert page.text[c.start:c.end] == c.text and c.text


@SETTINGS
@given(text=TEXT, lang=st.sampled_from(["", "en", "es"]))
def test_detection_on_any_text_keeps_offsets_and_scores_in_range(detectors, text, lang):
    for det in detectors:
        a = det.analyze(text, url="https://clinic.example.org/x", lang=lang)
        for c in a.claims:
            assert text[c.start:c.end] == c.text
            assert c.score is None or 0.0 <= c.score <= 1.0
        many = list(det.analyze_many([{"text": text, "url": "https://clinic.example.org/x", "lang": lang}]))
        assert [c.to_dict() for c in many[0].claims] == [c.to_dict() for c in a.claims]


@SETTINGS
@given(text=st.text())
def test_visible_leaves_nothing_hidden(text):
    shown = visible(text)
    assert not any(ord(ch) < 0x20 and ch not in "\n\t" for ch in shown)
    assert "\u202e" not in shown and visible(shown) == shown
