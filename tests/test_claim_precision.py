"""Claim-level precision: every flagged claim must hold a real promise.

A journalist opens each flagged claim. A sentence that only describes a disease,
talks logistics to patients, names a menu item or a page, or describes a staff
member's job is not a promise, even on a stem-cell clinic's page about that disease.
The clinics, sentences and pages below are invented (example.org); the demo-site
check at the end reads the bundled demo pages through the detector directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.detect.detector import Detector
from analysis.extract import extract_html

DEMO_SITES = Path(__file__).resolve().parent.parent / "data" / "demo" / "sites"

# Page text around every sentence under test: a clinic page, so the default stance is
# promoted and stem cells are named near every sentence.
CLINIC_TITLE = "Brightwater Cell Clinic | Umbilical stem cell treatments"
CLINIC_URL = "https://brightwater.example.org/"
INTRO = "Brightwater Cell Clinic offers umbilical cord stem cell infusions in Cancun."
OUTRO = "Book your free consultation today and call +1 555 010 2233."

DC, UE, PROMOTED = "disease-cure", "unsupported-efficacy", "promoted"

# (sentence, expected {(category, stance)} for that sentence)
SENTENCES = [
    # real promises
    ("Our umbilical stem cell protocol can slow and even reverse the progression of Huntington's disease.",
     {(DC, PROMOTED)}),
    ("Stem cell infusions may slow the progression of ALS.", {(DC, PROMOTED)}),
    ("Most of our emphysema patients breathe easier and use less oxygen after treatment.", {(DC, PROMOTED)}),
    ("We treat more than 70 conditions with mesenchymal cells.", {(DC, PROMOTED)}),
    ("Children with autism often improve their speech after two infusions.", {(DC, PROMOTED)}),
    ("Stem cells for multiple sclerosis", {(DC, PROMOTED)}),
    # "for" offers only before the condition: a guide's or an FAQ's title offers nothing
    ("Stem cells for autism", {(DC, PROMOTED)}),
    ("Stem Cells and Autism: A Guide for Parents", set()),
    ("Parkinson's disease and stem cells: answers for families", set()),
    ("91% of our patients report better sleep after their first infusion.", {(UE, PROMOTED)}),
    ("These patient stories are the proof that our treatment works.", {(UE, PROMOTED)}),
    ("Our stem cell injections rebuild damaged knee cartilage without surgery.", {("cartilage-regrowth", PROMOTED)}),
    # surgical cartilage repair on a clinic that also sells injections: a near miss
    ("Arthroscopic cartilage repair surgery for focal defects of the knee", set()),
    ("Microfracture of the knee can stimulate a fibrocartilage patch in young athletes.", set()),
    # disease descriptions
    ("Huntington's disease slowly damages the nerve cells that control movement and mood.", set()),
    ("In lupus the immune system turns against the skin, the joints and the kidneys.", set()),
    ("Heart failure means the heart muscle cannot pump enough blood for the body's needs.", set()),
    ("Living with Crohn's disease can be exhausting.", set()),
    ("Scientists have tied dementia to years of inflammation in the brain.", set()),
    # logistics addressed to patients
    ("Patients with Parkinson's often ask us about wheelchair access at the airport.", set()),
    ("Families of children with autism can request a quiet waiting room.", set()),
    ("A diagnosis of multiple sclerosis raises many questions.", set()),
    # navigation, menu and page names
    ("To see every condition on our list, open the conditions page.", set()),
    ("Larger doses are given for neurological conditions.", set()),
    ("Success Stories", set()),
    ("Read our patient stories", set()),
    ("Testimonials", set()),
    # staff bios
    ("Manages our emphysema and pulmonary fibrosis protocols.", set()),
    ("Dr. Lena Ortiz leads our multiple sclerosis program and speaks Spanish and English.", set()),
]


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(model_dir=None)  # the phrase rules, without the learned stage


@pytest.mark.parametrize("sentence,expected", SENTENCES, ids=[s[:40] for s, _ in SENTENCES])
def test_sentence_claims(det, sentence, expected):
    text = f"{INTRO}\n{sentence}\n{OUTRO}"
    claims = det.analyze(text, url=CLINIC_URL, title=CLINIC_TITLE, lang="en").claims
    got = {(c.category, c.stance) for c in claims if sentence in c.sentence}
    assert got == expected, [(c.category, c.stance, c.text, c.sentence) for c in claims]


CONDITION_PAGE = """Harborview Regenerative Center
Home
Conditions We Treat
Success Stories
How It Works
Stem Cell Therapy for Lupus
Lupus is an autoimmune disease in which the body attacks its own organs.
Flares come and go, and many patients live with fatigue and joint pain for years.
How our lupus protocol works
Our umbilical stem cells calm the overactive immune system and can put lupus into lasting remission.
Conditions we treat:
Lupus
Rheumatoid arthritis
Crohn's disease
Our team
Dr. Sam Reyes
Oversees our lupus and scleroderma protocols.
Patients with lupus who travel from abroad can ask us about airport transfers.
Book your free consultation
"""


def test_condition_page_units(det):
    """A page heading naming therapy and condition, an offer sentence and a heading+list are
    claims; the menu, the disease description, the staff bio and the logistics are not."""
    res = det.analyze(CONDITION_PAGE, url="https://harborview.example.org/conditions/lupus/",
                      title="Stem Cell Therapy for Lupus | Harborview", lang="en")
    promoted = {c.sentence for c in res.claims if c.stance == PROMOTED}
    assert "Stem Cell Therapy for Lupus" in promoted
    assert any(s.startswith("Our umbilical stem cells calm") for s in promoted)
    items = {c.text for c in res.claims if c.sentence.startswith("Conditions we treat:")}
    assert {"Lupus", "Rheumatoid arthritis", "Crohn's disease"} <= items
    for s in promoted:
        assert not s.startswith(("Lupus is an autoimmune", "Flares come", "Oversees our",
                                 "Patients with lupus who travel", "Conditions We Treat",
                                 "Success Stories")), s
    assert "Conditions we treat:" not in promoted  # the heading alone: its items are the claims


def test_a_heading_ending_in_for_offers_for_its_items(det):
    """"for" counts before the condition, and a heading stands before its list."""
    text = f"{INTRO}\nUmbilical stem cells for:\n• Autism\n• Cerebral palsy\n{OUTRO}"
    claims = det.analyze(text, url=CLINIC_URL, title=CLINIC_TITLE, lang="en").claims
    assert {(c.text, c.category, c.stance) for c in claims if c.sentence.startswith("Umbilical")} == {
        ("Autism", DC, PROMOTED), ("Cerebral palsy", DC, PROMOTED)}


@pytest.mark.parametrize("heading,items,lang", [
    ("Conditions our doctors treat", ["Lupus", "Crohn's disease"], "en"),
    ("Conditions our partners treat", ["Multiple sclerosis", "Parkinson's disease"], "en"),
    ("Enfermedades que tratamos", ["Autismo", "Esclerosis múltiple"], "es"),
])
def test_a_line_ending_in_words_that_introduce_a_list_heads_it(det, heading, items, lang):
    """The title of an unbulleted list names the offer for each item; the title alone is no claim."""
    offer = "Ofrecemos células madre mesenquimales." if lang == "es" else INTRO
    text = "\n".join(["Brightwater", offer, heading, *items, "Book a visit."])
    claims = det.analyze(text, url=CLINIC_URL, lang=lang).claims
    assert {c.text for c in claims if c.sentence.startswith(heading)} == set(items)
    assert not [c for c in claims if c.text == heading]


def test_category_heading_alone_is_not_a_claim_but_its_items_are(det):
    text = ("Conditions We Treat\nOur stem cell protocols address many diseases.\n"
            "Neurological\nParkinson's disease\nCerebral palsy\n"
            "Autoimmune and metabolic\nLupus\nType 2 diabetes\n")
    res = det.analyze(text, url="https://coralbay.example.org/conditions/",
                      title="Conditions We Treat | Coral Bay Stem Cells", lang="en",
                      cues={"headings": ["Conditions We Treat", "Neurological", "Autoimmune and metabolic"]})
    flagged = {c.sentence for c in res.claims if c.stance == PROMOTED and c.category == DC}
    assert "Autoimmune and metabolic" not in flagged
    assert "Neurological … Parkinson's disease" in flagged
    assert "Autoimmune and metabolic … Lupus" in flagged


def test_description_then_offer_in_same_paragraph(det):
    """The condition named in one sentence, the offer in the next (same paragraph, product
    named): one claim, shown with both sentences."""
    text = ("Sunridge Stem Cell Clinic\nA stroke can leave a person unable to walk. "
            "Our stem cell infusions have helped many of them walk again.\n")
    res = det.analyze(text, url="https://sunridge.example.org/", title="Sunridge", lang="en")
    dc = [c for c in res.claims if c.category == DC]
    assert [c.stance for c in dc] == [PROMOTED]
    assert "walk again" in dc[0].sentence


def test_description_then_unrelated_sentence(det):
    text = ("Sunridge Stem Cell Clinic offers stem cell infusions.\n"
            "A stroke can leave a person unable to walk. Rehabilitation takes months.\n")
    res = det.analyze(text, url="https://sunridge.example.org/", title="Sunridge", lang="en")
    assert not [c for c in res.claims if c.category == DC]


# A condition named first, the offer a sentence or two later in the same paragraph, the way
# condition pages are written: (paragraph, the disease-cure stances expected, words the
# claim's quoted sentences must hold).
NEGATED, CAUTIONARY, REPORTED = "negated", "cautionary", "reported"
CONDITION_PARAGRAPHS = [
    ("COPD is a chronic lung disease that makes breathing hard. It affects millions of adults. "
     "Our stem cell therapy may help restore lung function.", [PROMOTED], "restore lung function"),
    ("Multiple sclerosis damages the myelin around nerves. With our stem cell protocol, many patients "
     "regain mobility.", [PROMOTED], "regain mobility"),
    ("Type 1 diabetes destroys the cells that make insulin. Daily injections are a burden. After our "
     "stem cell treatment, many patients no longer need insulin.", [PROMOTED], "no longer need insulin"),
    ("Parkinson's disease:\nOur umbilical stem cell infusions ease tremor and stiffness.", [PROMOTED], "ease tremor"),
    # the offer sentence decides the stance: a denial or a question there is no promise
    ("Cerebral palsy need not be the end. Stem cell therapy cannot cure it.", [NEGATED], "cannot cure it"),
    ("Cerebral palsy need not be the end. Does stem cell therapy help?", [], ""),
    ("Crohn's disease inflames the gut. We are often asked whether stem cells could help.", [REPORTED], ""),
    ("Autism affects one in 36 children. Some parents ask about stem cell therapy.", [REPORTED], ""),
    # near misses: an offer for something else, a paragraph break, too far, another condition
    ("Parkinson's disease affects movement. Our clinic also offers stem cell injections for knee pain.", [], ""),
    ("Alzheimer's disease affects six million Americans. Families often feel helpless. Our stem cell "
     "therapy helps patients heal faster after surgery.", [], ""),
    ("COPD is a chronic lung disease that makes breathing hard.\nOur stem cell therapy may help you.", [], ""),
    ("Autism is a developmental condition. It is diagnosed in childhood. Boys are diagnosed more often. "
     "Many families travel far for a diagnosis. Our stem cell therapy can help.", [], ""),
    # a paragraph of prose, answered at the start of the next one in the page's own voice
    ("Rheumatoid arthritis, lupus and psoriasis all come from an immune system that attacks the body it "
     "is meant to defend.\nOur umbilical cord cell infusions help calm that attack, so flares become rarer.",
     [PROMOTED], "flares become rarer"),
    ("Heart failure leaves millions of people short of breath. It worsens slowly over the years, and drugs "
     "only slow it down.\nWe use mesenchymal stem cells to help the heart pump harder again.", [PROMOTED],
     "pump harder"),
    # ... but not without that voice, nor across a heading or from a short line
    ("Rheumatoid arthritis, lupus and psoriasis all come from an immune system that attacks the body it "
     "is meant to defend.\nSome clinics claim that stem cell infusions help calm that attack.", [], ""),
    ("Rheumatoid arthritis, lupus and psoriasis all come from an immune system that attacks the body it "
     "is meant to defend.\nKnee pain\nOur umbilical cord cell infusions help calm that attack.", [], ""),
    # beyond the very next sentence, only the page's own voice ties an offer to the condition
    ("Autism is a developmental condition. Boys are diagnosed more often. Some clinics say stem cell "
     "therapy helps.", [], ""),
]


@pytest.mark.parametrize("text,stances,quoted", CONDITION_PARAGRAPHS, ids=[t[:40] for t, _, _ in CONDITION_PARAGRAPHS])
def test_condition_then_offer_later_in_the_paragraph(det, text, stances, quoted):
    claims = [c for c in det.analyze(text, url="https://sunridge.example.org/conditions/", title="Sunridge Clinic",
                                     lang="en").claims if c.category == DC]
    assert [c.stance for c in claims] == stances, [(c.stance, c.sentence) for c in claims]
    for c in claims:
        assert text.split(".")[0].split(":")[0] in c.sentence and quoted in c.sentence, c.sentence


def test_another_condition_between_keeps_the_offer_to_itself(det):
    text = ("Autism is a developmental condition. Lupus is an autoimmune disease. "
            "Our stem cell therapy helps lupus patients.")
    claims = [c for c in det.analyze(text, url="https://sunridge.example.org/", lang="en").claims
              if c.category == DC and c.stance == PROMOTED]
    assert [c.text for c in claims] and not [c for c in claims if "Autism" in c.text], claims


# Demo-site sentences that are not claims (disease descriptions, logistics, menu labels,
# staff bios, category headings), checked through the detector on the bundled pages.
DEMO_NON_CLAIMS = {
    "novacell-institute": [
        "Conditions We Treat",
        "Parkinson's disease slowly destroys the brain cells that produce dopamine",
        "In multiple sclerosis the immune system attacks myelin",
        "A diagnosis of ALS changes everything.",
        "Patients with ALS often have questions about travel",
        "Coordinates our COPD and pulmonary fibrosis protocols.",
        "Autoimmune and metabolic",
        "To see which conditions we treat, visit our conditions page.",
    ],
    "renewvita-wellness": ["Success Stories", "Patient stories"],
}
DEMO_CLAIMS = {
    "novacell-institute": [
        "Our Parkinson's treatment with umbilical stem cells can slow and even reverse",
        "Many of our COPD patients are able to reduce or even stop their supplemental oxygen",
        "Stem Cell Therapy for Autism",
    ],
}


def _demo_claims(det: Detector, slug: str):
    pages = sorted((DEMO_SITES / slug).rglob("index.html"))
    assert pages, slug
    for path in pages:
        page = extract_html(path.read_bytes(), f"https://{slug}.example.org/")
        res = det.analyze(page.text, url=f"https://{slug}.example.org/{path.parent.relative_to(DEMO_SITES / slug)}/",
                          title=page.title, lang=page.lang, cues=page.cues)
        yield from res.claims


@pytest.mark.parametrize("slug", sorted(DEMO_NON_CLAIMS))
def test_demo_non_claims_not_flagged(det, slug):
    claims = list(_demo_claims(det, slug))
    for bad in DEMO_NON_CLAIMS[slug]:
        hits = [(c.category, c.sentence) for c in claims
                if c.stance == PROMOTED and any(part.strip() == bad or part.startswith(bad)
                                                for part in c.sentence.split(" … ")[-1:])]
        assert not hits, (bad, hits)
    promoted = [c.sentence for c in claims if c.stance == PROMOTED]
    for good in DEMO_CLAIMS.get(slug, ()):
        assert any(good in s for s in promoted), good


def test_a_condition_heading_past_the_fiftieth_still_counts(det):
    """Heading texts come from the HTML (cues["headings"]); they were cut at 50, so on a
    long conditions page the later sections lost their headings."""
    html = ("<html><head><title>Conditions we treat | Sunridge</title></head><body>"
            + "".join(f"<h3>Topic {i}</h3><p>Filler about topic {i}.</p>" for i in range(60))
            + "<h3>Autism</h3><p>Our stem cell therapy helps children communicate.</p></body></html>")
    page = extract_html(html.encode(), "https://sunridge.example.org/conditions/")
    res = det.analyze(page.text, url="https://sunridge.example.org/conditions/", title=page.title, lang="en",
                      cues=page.cues)
    assert [(c.category, c.stance, c.sentence) for c in res.claims] == [
        (DC, PROMOTED, "Autism … Our stem cell therapy helps children communicate.")]
