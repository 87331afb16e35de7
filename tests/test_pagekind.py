"""Page kind from URL, title, text cues and HTML structure."""

from __future__ import annotations

import pytest

from analysis.detect.detector import Detector
from analysis.extract import extract_html
from analysis.detect.pagekind import PageKindScorer


@pytest.fixture(scope="module")
def det():
    return Detector(model_dir=None)  # the phrase rules, without the learned stage


@pytest.fixture(scope="module")
def scorer(det):
    return PageKindScorer(det.patterns_dir / "pagekind.json")


CASES = [
    ("clinic", "https://www.example-regen-clinic.com/treatments/knee/",
     "Book a free consultation with our doctors today. We offer stem cell injections for your knee. "
     "Call us to schedule an appointment."),
    ("news", "https://www.example-times.com/news/2025/04/stem-cell-ruling",
     "A federal court ruled on Tuesday against two clinics, the agency said in a statement. "
     "The company declined to comment, according to a spokesperson."),
    ("academic", "https://doi.org/10.0000/example.123",
     "Here we review the evidence on mesenchymal stromal cells. In this review we summarise randomized "
     "controlled trials and conclude that further research is needed."),
    ("regulator", "https://www.fda.gov/consumers/consumer-updates/example",
     "The FDA is warning consumers. Report problems to the agency; be aware that registration is not approval."),
    ("advocacy", "https://www.example-patients-foundation.org/resources/questions",
     "Questions to ask before any treatment: ask your doctor whether the product is approved. "
     "Our resources help families make an informed decision."),
    ("other", "", "The weather was pleasant and the train arrived on time."),
    # read as text: a structured abstract, and an agency's advisory
    ("academic", "https://www.example-university.org/ortho/research/allografts",
     "Original Research\nPurpose: We measured cell viability in commercial allografts.\n"
     "Methods: Twelve lots were thawed.\nConclusion: None contained viable cells."),
    ("regulator", "https://www.example-agency.org/advisories/stem-cells",
     "Public Advisory\nThe Agency is reminding the public that no stem cell treatments are authorized."),
]


@pytest.mark.parametrize("kind,url,text", CASES)
def test_page_kind(det, kind, url, text):
    assert det.analyze(text, url=url).page_kind == kind


def test_structured_cues_make_a_clinic(det):
    html = ("<html><body><h1>Regenerative injections</h1><p>Restore your mobility.</p>"
            "<form action='/book'><input name='email'></form><a href='tel:+15550100'>Call</a>"
            "<p>Packages from $4,900.</p></body></html>")
    page = extract_html(html, "https://www.example.org/")
    bare = det.analyze(page.text, url="https://www.example.org/")
    with_cues = det.analyze(page.text, url="https://www.example.org/", cues=page.cues)
    assert bare.page_kind == "other"
    assert with_cues.page_kind == "clinic"


def test_byline_and_article_tags_make_news(scorer):
    cues = {"article_tags": 1, "time_tags": 2, "author": "A. Reporter", "published": "2025-01-01"}
    assert scorer.kind({}, "", "", cues) == "news"
    assert scorer.kind({}, "", "", {}) == "other"


def test_phrase_hits_are_capped(scorer):
    many = {"clinic": {f"phrase {i}" for i in range(50)}}
    assert scorer.scores(many)["clinic"] == scorer.phrase_weight["clinic"] * scorer.max_per_kind


def test_gov_host_beats_a_clinic_word_in_the_path(scorer):
    assert scorer.kind({}, "https://www.fda.gov/clinic-warnings/stem-cells") == "regulator"


def test_paid_content_on_a_news_site_is_the_advertiser_speaking(det):
    """An advertorial is a clinic's page in a newspaper's dress: its claims are promoted,
    whether the page says so in its text or in its URL."""
    text = ("SPONSORED CONTENT\nAt Example Joint Clinic, worn knees receive stem cell injections that "
            "regrow cartilage within months.")
    url = "https://www.example-gazette.com/health/2025/04/knees"
    marked = det.analyze(text, url=url)
    assert marked.page_kind == "clinic"
    assert [c.stance for c in marked.claims if c.category == "cartilage-regrowth"] == ["promoted"]
    unmarked = det.analyze(text.split("\n", 1)[1], url=url)
    assert unmarked.page_kind == "news"
    assert [c.stance for c in unmarked.claims if c.category == "cartilage-regrowth"] == ["reported"]
    assert det.analyze(text.split("\n", 1)[1], url="https://www.example-gazette.com/sponsored/knees").page_kind \
        == "clinic"


def test_phrase_kinds_must_name_page_kinds(det, tmp_path):
    import json
    cfg = json.loads((det.patterns_dir / "pagekind.json").read_text())
    cfg["phrase_kinds"] = {"advertising": "advert"}
    path = tmp_path / "pagekind.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="advert"):
        PageKindScorer(path)


def test_a_press_release_wire_carries_the_company_speaking(scorer):
    assert scorer.kind({}, "https://www.einpresswire.com/article/123/example-clinic-autism") == "clinic"
    assert scorer.kind({}, "https://www.example-globewire.com/news/2025/clinic") == "clinic"
    assert scorer.kind({}, "https://www.example-times.com/news/2025/clinic") == "news"
    # a release's own line says who paid for it, whatever news words surround it
    news_words = {"news": {"announced", "said", "press release", "in a statement"}}
    assert scorer.kind(news_words, "https://www.example.com/2025/04/clinic") == "news"
    assert scorer.kind({**news_words, "advertising": {"distributed on behalf of"}},
                       "https://www.example.com/2025/04/clinic") == "clinic"


def test_an_abstract_and_a_spanish_newspaper_are_recognised(det):
    abstract = ("Abstract\nWe randomly assigned 140 patients with knee osteoarthritis to cell injections or "
                "corticosteroid. Pain scores improved modestly in both groups.")
    assert det.analyze(abstract, url="https://www.example.net/knee-trial").page_kind == "academic"
    assert det.analyze("Familias denuncian a una clínica de células madre.",
                       url="https://www.diariodelnorte.example.com/salud/clinica").page_kind == "news"


@pytest.mark.parametrize("text, kind", [
    ("Can lab-grown cells replace what Parkinson's destroys?\nBy Priya Anand\nTwelve people received cells.", "news"),
    ("Trial update\nBy Dr. Henrik Aalto, Health Reporter\nThe study continues.", "news"),
    ("Stem cells for knees\nby appointment only\nCall us.", "other"),  # lower-case "by": no byline
    ("Our clinic, run By Design Studio, opened in May.", "other"),  # mid-line: no byline
])
def test_a_byline_line_marks_an_article_read_as_text(scorer, text, kind):
    bonus = scorer.scores({}, "", "", None, text)["news"]
    assert (bonus > 0) == (kind == "news")


def test_newspaper_names_in_the_host_make_news(scorer):
    assert scorer.kind({}, "https://www.metrochronicle.example.net/health/cell-trial") == "news"
    assert scorer.kind({}, "https://www.valley-courier.example.com/local/clinic-opens") == "news"


@pytest.mark.parametrize("text,kind", [
    # one clinic cue ("our patients") is too little on its own, but with a promise it is a seller
    ("Our patients feel the difference: umbilical stem cell infusions regrow the cartilage in worn knees.",
     "clinic"),
    ("Our patients come from across the region for knee care.", "other"),
    # a promise without any clinic cue: a patient's post, not a clinic page
    ("Stem cells cured my son's autism. I cannot believe how much he talks now.", "other"),
])
def test_a_promise_makes_a_page_with_one_clinic_cue_a_clinic(det, text, kind):
    res = det.analyze(text, url="https://pages.example.org/post", lang="en")
    assert res.page_kind == kind, (res.page_kind, [(c.category, c.stance) for c in res.claims])
