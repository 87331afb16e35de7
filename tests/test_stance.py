"""Stance from context: negation, caution, reporting, questions, page kind; hedges do not excuse."""

from __future__ import annotations

import pytest

from analysis.detect.detector import Detector

CLINIC = "https://www.example.org/services/stem-cells/"
NEWS = "https://news.example.com/2025/03/health/stem-cells/"


@pytest.fixture(scope="module")
def det():
    return Detector(model_dir=None)  # the phrase rules, without the learned stage


def stance_of(det, text, category, **kw):
    kw.setdefault("url", CLINIC)
    claims = [c for c in det.analyze(text, **kw).claims if c.category == category]
    assert claims, f"no {category} claim in {text!r}"
    return claims[0]


# (text, category, expected stance)
TABLE = [
    # promoted, including hedged promises
    ("Stem cell therapy can help children with autism: book a consultation.", "disease-cure", "promoted"),
    ("Our exosome infusions may improve the symptoms of Parkinson's disease.", "disease-cure", "promoted"),
    ("Umbilical stem cells have shown promise to regrow knee cartilage.", "cartilage-regrowth", "promoted"),
    ("Our amniotic shots contain living stem cells.", "live-cells-in-processed-product", "promoted"),
    ("Donor stem cells are never rejected by the body.", "rejection-free", "promoted"),
    ("There is no risk of rejection with our cord tissue stem cells.", "rejection-free", "promoted"),
    ("Studies show that our stem cell treatment works for back pain.", "unsupported-efficacy", "promoted"),
    # negated: the page denies the claim for its own offer
    ("We do not claim that stem cells cure autism.", "disease-cure", "negated"),
    ("Stem cell injections cannot regrow lost knee cartilage.", "cartilage-regrowth", "negated"),
    ("Our stem cell treatment is not FDA approved.", "regulatory-misrepresentation", "negated"),
    ("No stem cell product is approved for multiple sclerosis.", "disease-cure", "negated"),
    ("We cannot promise a miracle: stem cell therapy has risks.", "miracle-guarantee", "negated"),
    # cautionary: warns about or debunks the claim
    ("Beware of clinics that promise to cure autism with stem cells.", "disease-cure", "cautionary"),
    ("So-called live stem cell shots made from amniotic fluid are mostly dead tissue.",
     "live-cells-in-processed-product", "cautionary"),
    ("There is no proof that stem cells turn into new heart muscle.", "tissue-replacement-myth", "cautionary"),
    ("Be wary of clinics that say their exosomes are FDA approved.", "regulatory-misrepresentation", "cautionary"),
    # reported: someone else makes or tests the claim
    ("A trial at Example University is testing cord blood in children with autism.", "disease-cure", "reported"),
    ("Researchers found that stem cells may regrow cartilage in sheep.", "cartilage-regrowth", "reported"),
    ("According to the agency, the clinic said its stem cells cure Parkinson's disease.", "disease-cure",
     "reported"),
    # the language of articles about marketing: attribution, "sold as", a superseded belief
    ("The founder insisted that donor stem cells become new heart muscle.", "tissue-replacement-myth", "reported"),
    ("Stem cell shots are sold as a way to regrow knee cartilage.", "cartilage-regrowth", "cautionary"),
    ("Donor stem cells were long considered immune privileged.", "rejection-free", "reported"),
    ("Evidence that stem cell injections regrow knee cartilage remains weak.", "cartilage-regrowth", "cautionary"),
    ("Our hospital is one of 12 sites in a registered clinical trial testing whether stem cells can slow ALS.",
     "disease-cure", "reported"),
    ("These findings do not support the use of stem cell injections to restore knee cartilage.",
     "cartilage-regrowth", "cautionary"),
    # attribution words in the page's own voice are the page's claim
    ("Our practitioners believe exosomes may help the body recover from long COVID.", "disease-cure", "promoted"),
    ("Scientists believe exosomes may help the body recover from long COVID.", "disease-cure", "reported"),
    # a marketing hedge is no attribution ("a growing body of research"); a named finding is
    ("A growing body of research suggests our stem cells can help regenerate damaged knee cartilage.",
     "cartilage-regrowth", "promoted"),
    ("Research suggests stem cells can help regenerate damaged knee cartilage.", "cartilage-regrowth", "reported"),
    ("Told you're bone-on-bone? Ask about our stem cell procedure that regrows knee cartilage.",
     "cartilage-regrowth", "promoted"),
    ("No: there is no risk of rejection because umbilical stem cells are immune privileged.", "rejection-free",
     "promoted"),
    ("Learn how stem cells can regrow the cartilage in your knee and help you avoid risky surgery.",
     "cartilage-regrowth", "promoted"),
    ("Our cells are tested for viability, and each vial of Wharton's jelly contains millions of living cells.",
     "live-cells-in-processed-product", "promoted"),
    ("Early hypotheses held that transplanted stem cells would differentiate into heart muscle cells.",
     "tissue-replacement-myth", "reported"),
    ("A wellness doctor offered my dad exosome infusions for his COPD.", "disease-cure", "reported"),
    ("A clinic abroad promised that its stem cell infusions could reverse autism within months.",
     "disease-cure", "cautionary"),
    ("A new study shows that our stem cells regrow knee cartilage.", "cartilage-regrowth", "promoted"),
    ("A study shows that stem cells regrow knee cartilage in sheep.", "cartilage-regrowth", "reported"),
    ("Every lot of our placental stem cell product is tested to contain 2 million live cells per vial.",
     "live-cells-in-processed-product", "promoted"),
    ("Channel 5 investigates stem cell ads that claim a 90 percent success rate.", "unsupported-efficacy",
     "cautionary"),
    ("In my practice the response rate to stem cell infusions has been 85 percent, and I believe it works.",
     "unsupported-efficacy", "promoted"),
    ("She tells us the stem cells Dr. Ruiz injected would become new cartilage in her knee.",
     "tissue-replacement-myth", "promoted"),
    ("Many people ask us whether stem cell injections can regrow the cartilage in their knees.",
     "cartilage-regrowth", "reported"),
    # calls to action whose words are no cue (stance:idiom): "claim", "say" report nothing here
    ("Claim your free consultation and learn how our stem cell injections regrow cartilage.",
     "cartilage-regrowth", "promoted"),
    ("Say goodbye to knee pain: our stem cell injections regrow cartilage.", "cartilage-regrowth", "promoted"),
    ("Before you say yes to a knee replacement, see how our stem cells help your body regrow cartilage.",
     "cartilage-regrowth", "promoted"),
    ("They claim your cartilage will regrow after stem cell injections.", "cartilage-regrowth", "reported"),
    ("The coordinator assured us the stem cell injection would cure his COPD.", "disease-cure", "reported"),
    ("Rest assured, our stem cell therapy can help your COPD.", "disease-cure", "promoted"),
    ("Let's talk about how our stem cell therapy can help your COPD.", "disease-cure", "promoted"),
    ("Hundreds of our patients are the proof that our stem cell protocols work.", "unsupported-efficacy", "promoted"),
    # a press release is the company speaking: its announcement is its own claim
    ("Example Cell Institute today announced that its cord-tissue protocol has helped 300 children with autism.",
     "disease-cure", "promoted"),
    ("If you are living with heart failure, ask us whether you are a candidate for our stem cell protocol.",
     "disease-cure", "promoted"),
    ("Clinics may tell you the stem cells will grow into new nerve tissue.", "tissue-replacement-myth",
     "cautionary"),
    ("Shipments came with websites promoting stem cell extracts for the treatment of COVID-19.", "disease-cure",
     "cautionary"),
    ("We are aware of clinics advertising stem cell injections for multiple sclerosis.", "disease-cure",
     "cautionary"),
    # a source named in the claim's own sentence outweighs a warning word in the sentence before
    ("Six businesses here are advertising regenerative joint injections. The clinic's website says its cells "
     "regrow the cartilage in your knees.", "cartilage-regrowth", "reported"),
    ("The clinic's website calls its umbilical stem cell injections \"FDA approved.\"",
     "regulatory-misrepresentation", "reported"),
    # third-party advertising is a warning's subject, not the page's promise
    ("You may have seen ads promising that stem cell injections can regrow cartilage.", "cartilage-regrowth",
     "cautionary"),
    ("Websites claiming that stem cells cure autism rarely cite a trial.", "disease-cure", "cautionary"),
    ("The lounge staff kept repeating that the stem cell drip was completely safe.", "miracle-guarantee",
     "reported"),
    ("A small trial led by university investigators found that stem cells helped stroke patients.", "disease-cure",
     "reported"),
    # a clinic's own statistic is not attribution: "reported" is the patients' word
    ("Of our stem cell patients, 89% reported a 50% success rate in pain relief.", "unsupported-efficacy", "promoted"),
]


@pytest.mark.parametrize("text,category,stance", TABLE)
def test_stance_table(det, text, category, stance):
    claim = stance_of(det, text, category)
    assert claim.stance == stance, (claim.text, claim.cue)
    assert (claim.cue == "") == (stance == "promoted")


def test_negation_inside_the_claim_is_not_a_denial(det):
    claim = stance_of(det, "Our stem cells have no side effects.", "miracle-guarantee")
    assert claim.stance == "promoted"


def test_negation_in_another_clause_does_not_scope(det):
    text = "Surgery does not help everyone, but our stem cells regrow cartilage in the knee."
    assert stance_of(det, text, "cartilage-regrowth").stance == "promoted"


def test_a_question_is_not_a_claim(det):
    analysis = det.analyze("Can stem cells cure autism?\nNo: nobody can promise that.", url=CLINIC)
    assert [c for c in analysis.claims if c.category == "disease-cure"] == []


def test_affirming_idioms_are_not_denials(det):
    claim = stance_of(det, "Our stem cell therapy is nothing short of a miracle.", "miracle-guarantee")
    assert claim.stance == "promoted"
    text = "After our exosome infusions, some children no longer meet the criteria for autism."
    assert stance_of(det, text, "disease-cure").stance == "promoted"


def test_concessive_opening_does_not_deny_the_offer(det):
    text = "While there is no cure for ALS, our stem cell protocol may slow the disease."
    assert stance_of(det, text, "disease-cure").stance == "promoted"


def test_patient_voice_is_not_reporting(det):
    text = "Our patients say the stem cell injections regrew the cartilage in their knees."
    assert stance_of(det, text, "cartilage-regrowth").stance == "promoted"


@pytest.mark.parametrize("text,category,stance", [
    # a patient retelling what the seller told them: the seller's claim, not the patient's
    ("The clinic told me the stem cell shots would grow new cartilage in my knee.", "cartilage-regrowth",
     "cautionary"),
    ("They told us it would cure his autism, and we paid for two rounds of stem cells.", "disease-cure",
     "cautionary"),
    # a patient's own report of what the cells did is still a testimonial
    ("My surgeon told me I needed a new knee, but the stem cell injections regrew my cartilage.",
     "cartilage-regrowth", "promoted"),
    # a hospital answering questions about private clinics (Spanish)
    ("Recibimos consultas sobre clínicas privadas que ofrecen células madre para curar el Alzheimer.",
     "disease-cure", "cautionary"),
])
def test_what_the_seller_told_a_patient(det, text, category, stance):
    assert stance_of(det, text, category).stance == stance


def test_offer_question_still_promotes(det):
    claim = stance_of(det, "Who can enrol in our stem cell therapy for autism?", "disease-cure")
    assert claim.stance == "promoted"


def test_research_framing_does_not_excuse_proof_claims(det):
    claim = stance_of(det, "Studies prove our stem cell therapy is effective for arthritis.",
                      "unsupported-efficacy")
    assert claim.stance == "promoted"


def test_page_kind_sets_the_default_stance(det):
    text = "Stem cell therapy restored the patient's cartilage in both knees, the clinic said."
    assert stance_of(det, text, "cartilage-regrowth", url=NEWS).stance == "reported"
    plain = "Stem cell therapy restores cartilage in both knees."
    assert stance_of(det, plain, "cartilage-regrowth", url=CLINIC).stance == "promoted"
    assert stance_of(det, plain, "cartilage-regrowth", url="https://www.fda.gov/consumers/").stance == "cautionary"


def test_context_sentence_cues_count(det):
    text = ("COPD makes breathing hard and current treatments are limited. "
            "Mesenchymal stem cell approaches are under study in early trials.")
    claim = stance_of(det, text, "disease-cure", url="https://www.example.org/copd")
    assert claim.stance == "reported"


def test_spanish_stance(det):
    assert stance_of(det, "Según los investigadores, las células madre regeneran el cartílago de la rodilla.",
                     "cartilage-regrowth").stance == "reported"
    assert stance_of(det, "Desconfíe de las clínicas que prometen curar el autismo con células madre.",
                     "disease-cure").stance == "cautionary"
    assert stance_of(det, "Nuestras células madre regeneran el cartílago de la rodilla.",
                     "cartilage-regrowth").stance == "promoted"
    assert stance_of(det, "Diez familias presentaron una denuncia contra una clínica que vendía células madre "
                     "para la parálisis cerebral.", "disease-cure").stance == "cautionary"
    assert stance_of(det, "La idea de que las células madre forman tejido nuevo en el corazón no se ha confirmado.",
                     "tissue-replacement-myth").stance == "cautionary"
    assert stance_of(det, "Un tribunal condenó a una clínica que ofrecía células madre para el Parkinson.",
                     "disease-cure").stance == "cautionary"
    assert stance_of(det, "Un estudio publicado demuestra que nuestras células madre regeneran el cartílago de la "
                     "rodilla.", "cartilage-regrowth").stance == "promoted"


# An FAQ question names the claim; the line after it answers. (question + answer, stances expected)
FAQ = [
    ("Can stem cells help my son's autism?\nMany families see improvements in speech after treatment.", ["promoted"]),
    ("Can stem cells help my son's autism?\nYes, our umbilical stem cell protocol is designed for it.", ["promoted"]),
    ("¿Pueden las células madre ayudar con el Alzheimer?\nMuchas familias notan mejoras en la memoria.", ["promoted"]),
    # near misses: an answer that denies, warns or describes research, or no answer at all
    ("Can stem cells cure autism?\nNo, and we would not offer it if they could not.", []),
    ("Can stem cells cure autism?\nResearchers are still testing this in trials.", []),
    ("Can stem cells cure autism?", []),
    ("Can stem cells cure autism? Many families see improvements after treatment.", []),
    # a Q&A page names who answers on a line of its own; the answer is the line after
    ("Q: Can stem cells help my son's autism?\nAnswer from Dr. Lee, pediatric neurologist\n"
     "Many families see improvements in speech after treatment.", ["promoted"]),
    ("¿Es cierto que las células madre curan la diabetes?\nRespuesta de la Dra. Carballo, endocrinóloga\n"
     "Lamentablemente, no.", []),
]


@pytest.mark.parametrize("text,stances", FAQ)
def test_an_faq_answer_decides_its_question(det, text, stances):
    claims = [c for c in det.analyze(text, url="https://faq.example.org/faq").claims if c.category == "disease-cure"]
    assert [c.stance for c in claims] == stances, [(c.stance, c.sentence) for c in claims]
    for c in claims:
        assert text.split("\n")[1] in c.sentence  # the answer is quoted with the question


def test_an_faq_answer_on_a_news_page_is_reported(det):
    text = "Can stem cells help knee cartilage regrow?\nSome patients see improvements after treatment."
    claims = det.analyze(text, url="https://news.example-times.com/2025/04/health/stem-cells-faq").claims
    assert [c.stance for c in claims if c.category == "cartilage-regrowth"] == ["reported"]


def test_a_company_announcing_its_own_protocol_on_a_wire_promotes_it(det):
    text = "NovaExample Institute today announced a stem cell protocol that reverses type 2 diabetes."
    on_wire = det.analyze(text, url="https://www.example-prwire.com/releases/novaexample")
    assert on_wire.page_kind == "clinic"
    assert [c.stance for c in on_wire.claims if c.category == "disease-cure"] == ["promoted"]
    in_news = det.analyze(text, url="https://news.example-times.com/2025/04/health/novaexample")
    assert [c.stance for c in in_news.claims if c.category == "disease-cure"] == ["reported"]


def test_a_long_bulleted_item_keeps_its_warning_heading(det):
    text = ("Watch out for any clinic that:\n"
            "- quotes success rates such as 90% of patients improve without citing a published trial of its treatment\n"
            "- relies mainly on stem cell patient testimonials as proof")
    claims = [c for c in det.analyze(text, url="https://guide.example.org/red-flags").claims
              if c.category == "unsupported-efficacy"]
    assert claims and all(c.stance == "cautionary" for c in claims), [(c.stance, c.text) for c in claims]


def test_what_a_registration_does_not_mean_denies_the_claim(det):
    text = ("Stem cell clinics say they are FDA registered. Registration only means a facility has listed "
            "itself with the FDA; it does not mean any stem cell product has been approved.")
    claims = [c for c in det.analyze(text, url=CLINIC).claims if c.category == "regulatory-misrepresentation"
              and "Registration only" in c.sentence]
    assert claims and all(c.stance in ("negated", "cautionary") for c in claims), [(c.stance, c.text) for c in claims]


# (cues as (label, first word, last word) of "They say we do not claim it cures autism",
#  page kind, the rule expected to fire, the stance it gives): the first rule that holds decides
RULE_ORDER = [
    ([], "clinic", "page-kind", "promoted"),
    ([], "news", "page-kind", "reported"),
    ([("stance:reporting", 1, 2)], "clinic", "attribution", "reported"),
    ([("stance:negation", 4, 5), ("stance:reporting", 1, 2)], "clinic", "near-negation", "negated"),
    ([("stance:caution", 0, 1), ("stance:negation", 4, 5)], "clinic", "caution", "cautionary"),
    ([("stance:negation-strong", 3, 6), ("stance:caution", 0, 1)], "clinic", "strong-negation", "negated"),
    ([("stance:negation-strong", 3, 6)], "news", "strong-negation", "cautionary"),
]


@pytest.mark.parametrize("cues,kind,rule,stance", RULE_ORDER)
def test_stance_rules_are_tried_in_order_and_report_which_fired(det, cues, kind, rule, stance):
    nlp = det.nlps["en"]
    rules = nlp.get_pipe("stemwatch_claims").stance
    doc = nlp.make_doc("They say we do not claim it cures autism")
    decision = rules.decide(doc, "disease-cure", 7, 9, cues, first=0, sent_end=len(doc), page_kind=kind)
    assert (decision.rule, decision.stance) == (rule, stance)
    assert decision.rule in rules.RULES
