"""Claim detection: each category's promoted form, its near misses, offsets, structure."""

from __future__ import annotations

import shutil

import pytest

from analysis.detect.detector import Detector
from analysis.models import CATEGORIES, PageAnalysis

CLINIC = "https://www.example.org/treatments/"


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(model_dir=None)  # the phrase rules, without the learned stage


def promoted(analysis: PageAnalysis) -> set[str]:
    return {c.category for c in analysis.claims if c.stance == "promoted"}


# (text, category expected promoted) -- invented clinic copy for fictional clinics
POSITIVES_EN = [
    ("Our umbilical stem cell protocol halts the progression of multiple sclerosis.", "disease-cure"),
    ("Parkinson's treatment with exosomes is now available at Example Regen Clinic.", "disease-cure"),
    ("Stem cell therapy may help children with autism speak again.", "disease-cure"),
    ("Our cord stem cell protocol helps so many kids on the spectrum finally catch up.", "disease-cure"),
    ("Trail: Home › Conditions › Autism\nOur stem cells treat autism / ADHD / cerebral palsy.", "disease-cure"),
    ("Umbilical cells do not provoke an immune response, so any patient can receive them.", "rejection-free"),
    ("Our stem cell therapy for dogs: 8 out of 10 dogs are noticeably more active within 30 days.",
     "unsupported-efficacy"),
    ("Stem cell therapy: 9 in 10 patients improve after one infusion.", "unsupported-efficacy"),
    ("Our Longevity stem cell infusion resets your biological clock: clients are ageing in reverse.",
     "miracle-guarantee"),
    ("Side effects? None: in 6,000 stem cell procedures we have not seen a single complication.", "miracle-guarantee"),
    ("Cord cells carry none of the markers the immune system uses, so rejection simply cannot occur.",
     "rejection-free"),
    # the product named under an earlier heading still counts a few sentences on
    ("We use mesenchymal stem cells from donor cats.\nWhat to expect\nYour cat receives three infusions. "
     "Bloodwork is repeated at 30 days. Our goal is to halt the progression of kidney disease.", "disease-cure"),
    ("After infusion our umbilical stem cells bring lupus flares under control.", "disease-cure"),
    ("Our Wharton's jelly shot arrives frozen, packed with active umbilical stem cells.",
     "live-cells-in-processed-product"),
    ("When concentrated stem cells are placed in an arthritic knee they grow a new layer of cartilage.",
     "cartilage-regrowth"),
    # a Q&A answer marked "A:" affirms its question
    ("Q: Can stem cells help my son's autism?\nA: Yes. Our umbilical stem cell therapy improves speech.",
     "disease-cure"),
    # an outcome guarantee: treatment again or money back if it does not work
    ("Our stem cell protocol: no clear improvement in six months and we re-treat you at no charge.",
     "miracle-guarantee"),
    ("We place concentrated cells from your own marrow into the knee, where they rebuild cartilage.",
     "cartilage-regrowth"),
    ("With our regenerative cell therapy we treat more than 60 conditions.", "disease-cure"),
    ("Mesenchymal stem cell infusions for COPD and emphysema: breathe easier.", "disease-cure"),
    ("Research shows our stem cell injections help patients walk again.", "unsupported-efficacy"),
    # chemotherapy as the cause of the condition is no approved (blood-forming) use
    ("Our stem cell therapy can reverse chemotherapy-induced neuropathy in weeks.", "disease-cure"),
    ("Our stem cell injections regrow the cartilage in your knee.", "cartilage-regrowth"),
    ("Bone-on-bone knees? Stem cell shots can rebuild damaged joints without surgery.", "cartilage-regrowth"),
    ("Exosome therapy restores worn hip cartilage in weeks.", "cartilage-regrowth"),
    ("Each amniotic injection contains millions of live stem cells.", "live-cells-in-processed-product"),
    ("Our cryopreserved Wharton's jelly allograft is rich in viable mesenchymal stem cells.",
     "live-cells-in-processed-product"),
    ("Once injected, the stem cells transform into new heart muscle cells.", "tissue-replacement-myth"),
    ("Stem cells seek out damage and replace the dead cells in your brain.", "tissue-replacement-myth"),
    ("Our stem cell therapy is FDA-approved for joint pain.", "regulatory-misrepresentation"),
    ("Because our exosome lab is FDA registered, no FDA approval is needed for treatment.",
     "regulatory-misrepresentation"),
    ("Stem cell therapy is a miracle for chronic back pain.", "miracle-guarantee"),
    ("Guaranteed results or your money back on every stem cell treatment.", "miracle-guarantee"),
    ("Reverse ageing at the cellular level with placental stem cells.", "miracle-guarantee"),
    ("Our stem cell treatment is clinically proven to relieve arthritis pain.", "unsupported-efficacy"),
    ("Stem cell patients at Example Clinic enjoy a 94% success rate.", "unsupported-efficacy"),
    ("Donor umbilical stem cells carry zero risk of rejection.", "rejection-free"),
    ("No matching required: cord tissue MSCs work for everyone.", "rejection-free"),
    ("Our regenerative protocols target the root cause of neuropathy.", "disease-cure"),
    ("Umbilical stem cells replace damaged neurons in the brain.", "tissue-replacement-myth"),
    ("Wharton's jelly allografts with viable mesenchymal cells", "live-cells-in-processed-product"),
    ("Thousands of satisfied stem cell patients can't be wrong.", "unsupported-efficacy"),
    # a negation in another clause denies nothing here
    ("We are not able to guarantee results, but our stem cells help autism.", "disease-cure"),
    # a replacing verb with the organ tissue a few words on
    ("Injected near the injury, stem cells replace the brain cells lost during a stroke.", "tissue-replacement-myth"),
    ("The new stem cells integrate into the injured spinal cord.", "tissue-replacement-myth"),
    ("After infusion, the stem cells mature into fresh heart muscle cells.", "tissue-replacement-myth"),
    ("The stem cells migrate to the kidneys and develop into new functioning nephrons.", "tissue-replacement-myth"),
    ("Our umbilical cell therapy may reduce how often severe asthma needs rescue medication.", "disease-cure"),
    ("Our MSCs don't require a matched donor.", "rejection-free"),
    ("Stem cell treatment for knees: lasting results, guaranteed.", "miracle-guarantee"),
    ("Our amniotic stem cell product requires no FDA approval.", "regulatory-misrepresentation"),
    ("Over 4,000 stem cell patients treated: the results speak for themselves.", "unsupported-efficacy"),
    ("Our cord cells carry zero rejection risk.", "rejection-free"),
    ("Our stem cell knee treatment: if you don't feel better in 90 days, we'll refund your money.",
     "miracle-guarantee"),
    ("Our stem cells home to the damaged area and replace the lost dopamine cells.", "tissue-replacement-myth"),
    ("Specialties: autism, cerebral palsy and multiple sclerosis, treated with umbilical stem cells.",
     "disease-cure"),
    ("Our same-day stem cell procedure is legal in all 50 states.", "regulatory-misrepresentation"),
    ("Our stem cell treatments meet FDA guidelines, so you can be sure they are legitimate.",
     "regulatory-misrepresentation"),
    ("Our stem cell study is registered on ClinicalTrials.gov, and that registration confirms it is safe.",
     "regulatory-misrepresentation"),
    ("More than 5,000 five-star reviews prove that our stem cell treatments work.", "unsupported-efficacy"),
    ("Stories like Karen's are proof that stem cells can reverse multiple sclerosis.", "unsupported-efficacy"),
    ("Because newborn stem cells are immune-naive, rejection is simply impossible.", "rejection-free"),
    # how clinics say "no rejection" without the word "rejection" next to a "no"
    ("Cord stem cells are young, so the body does not see them as foreign.", "rejection-free"),
    ("Our donor stem cells don't trigger an immune response, so rejection is never a concern.", "rejection-free"),
    ("Newborn stem cells are accepted by anyone's body, with nothing to match.", "rejection-free"),
    ("Your immune system won't fight them off: these stem cells are compatible with any patient.", "rejection-free"),
    ("Stem cell results are guaranteed: if you don't improve, you don't pay.", "miracle-guarantee"),
    # the clinic citing itself ("according to our ...") is its own voice, not a report
    ("According to our own outcome data, 84% of stem cell patients feel better within a month.",
     "unsupported-efficacy"),
    ("Four out of five patients walk farther after our stem cell infusions.", "unsupported-efficacy"),
    ("Our exosome protocol is proven in clinical studies to slow memory loss.", "unsupported-efficacy"),
    ("Exosomes are cell-free stem cell products, so they fall outside the FDA's approval rules.",
     "regulatory-misrepresentation"),
    ("Our partner clinic is so confident in its stem cell protocol that it will guarantee visible results.",
     "miracle-guarantee"),
    ("The amniotic product I use arrives loaded with live, young stem cells.", "live-cells-in-processed-product"),
    ("I inject a patient's own marrow cells to lay down a fresh cushion of cartilage in the knee.",
     "cartilage-regrowth"),
]

# Near misses: no promoted claim of that category (or of any, where stated).
NEAR_MISSES_EN = [
    # a Q&A page's question reports what the asker was told
    ("Q: My chiropractor wants $5,000 for a stem cell shot. He says it will grow new cartilage. Is it worth it?\n"
     "Answer from Dr. Lin, orthopedic surgeon\nI'd hold onto your money.", "cartilage-regrowth"),
    # "options" counts as an offer only beside the product in its sentence
    ("We understand why people with MS look for new options.", "disease-cure"),
    # an age limit is no youth claim
    ("Stem cell donors must be younger than 60.", "miracle-guarantee"),
    # a prevalence is no success rate
    ("Stem cells are studied widely; 1 in 10 adults has arthritis.", "unsupported-efficacy"),
    # a cancellation policy refunds a deposit, not an outcome
    ("Stem cell appointments: cancel 48 hours ahead and we refund your deposit.", "miracle-guarantee"),
    ("Bone marrow transplants treat leukaemia and lymphoma in children.", "disease-cure"),
    # navigation: a trail of links names conditions and treatments but promises nothing
    ("Living with MS > Treatments > Stem cell treatment for MS\nWhat we know", "disease-cure"),
    # a donor drive: "become a stem cell donor" is no cell turning into tissue
    ("Become a Stem Cell Donor\nThousands of people with blood cancers need a stem cell transplant.",
     "tissue-replacement-myth"),
    # what people mean by a phrase reports their words ("let's talk about" would not)
    ("There are two things people mean when they talk about stem cell treatment for MS.", "disease-cure"),
    # reading or hearing a claim is reporting it
    ("You may read that cord blood stem cells can treat autism; no benefit has been established.", "disease-cure"),
    ("After high-dose chemotherapy, a stem cell transplant restores the blood-forming cells.", "disease-cure"),
    # the patient's own cells: rejection-free is about donor cells
    ("Because they are your own stem cells, there is no risk of rejection.", "rejection-free"),
    ("We use your own stem cells, so your body does not see them as foreign.", "rejection-free"),
    ("According to a review in a medical journal, 84% of patients in one stem cell trial felt better.",
     "unsupported-efficacy"),
    ("Critics say no clinic can promise that donor stem cells are not seen as foreign.", "rejection-free"),
    # an appeal to research counts only when a benefit follows it
    ("Studies show that donor stem cells rarely survive more than a few weeks after injection.",
     "unsupported-efficacy"),
    ("Clinics sell stem cells as permanent, but research shows the immune system clears them.",
     "unsupported-efficacy"),
    ("Autism affects about one child in a hundred.", "disease-cure"),
    ("We bank your baby's cord blood for a future stem cell transplant for leukemia.", "disease-cure"),
    ("Platelet-rich plasma injections relieve knee pain and we rebuild your strength with physio.",
     "cartilage-regrowth"),
    ("Knee replacement surgery restores mobility for bone-on-bone arthritis.", "cartilage-regrowth"),
    ("Our cord blood bank stores units rich in stem cells for transplant.", "live-cells-in-processed-product"),
    ("Stem cells will become a larger part of medicine over the next decade.", "tissue-replacement-myth"),
    ("Our hyaluronic acid gel is FDA approved for knee osteoarthritis.", "regulatory-misrepresentation"),
    ("Remestemcel-L is an FDA-approved mesenchymal stromal cell therapy for graft-versus-host disease.",
     "regulatory-misrepresentation"),
    ("Cord blood stem cells are FDA approved for transplants in leukemia.", "regulatory-misrepresentation"),
    ("For diabetic foot ulcers we apply an amniotic membrane as a wound covering to help healing.", "disease-cure"),
    ("Stem cell therapy is not FDA approved for joint pain.", "regulatory-misrepresentation"),
    # a listing's own "approved" is no proof: the proof must come after it
    ("I have run IRB-approved trials of an amniotic stem cell allograft.", "regulatory-misrepresentation"),
    ("We call it a miracle that our hospital parking is free on Sundays.", "miracle-guarantee"),
    ("Stem cell injections carry risks, and we cannot guarantee results.", "miracle-guarantee"),
    ("Ninety percent of visitors found our parking easy.", "unsupported-efficacy"),
    ("Our stem cell treatment is 100% safe for patients.", "unsupported-efficacy"),
    ("Stem cell patients get 20% off their second session.", "unsupported-efficacy"),
    ("Organ transplant patients take drugs to prevent rejection.", "rejection-free"),
    ("Amniotic stem cells are accepted by the body without any risk of rejection.", "miracle-guarantee"),
    ("Our stem cell injections may replace the need for knee surgery.", "tissue-replacement-myth"),
    ("Stem cells cannot replace damaged neurons, whatever some clinics say.", "tissue-replacement-myth"),
    # the negation stands before the offer words, further than its window from the disease
    ("We are not able to offer stem cell therapy for diabetes.", "disease-cure"),
    # a replacing verb with no organ tissue after it, or the tissue too far on
    ("Our stem cell injections replace the need for surgery on damaged hearts and kidneys.",
     "tissue-replacement-myth"),
    ("Wharton's jelly allografts are used to repair or replace wound dressings on damaged skin.",
     "tissue-replacement-myth"),
]


@pytest.mark.parametrize("text,category", POSITIVES_EN)
def test_promoted_claims_en(det, text, category):
    analysis = det.analyze(text, url=CLINIC)
    assert category in promoted(analysis), [(c.category, c.stance, c.text) for c in analysis.claims]


@pytest.mark.parametrize("text,category", NEAR_MISSES_EN)
def test_near_misses_en(det, text, category):
    analysis = det.analyze(text, url=CLINIC)
    assert category not in promoted(analysis), [(c.category, c.stance, c.text) for c in analysis.claims]


def test_every_category_has_a_positive_and_a_near_miss():
    assert {c for _, c in POSITIVES_EN} == set(CATEGORIES)
    assert {c for _, c in NEAR_MISSES_EN} == set(CATEGORIES)


POSITIVES_ES = [
    ("Las células madre que aplicamos forman cartílago nuevo sobre las superficies desgastadas de la rodilla.",
     "cartilage-regrowth"),
    ("Las células madre del cordón son tan jóvenes que nunca se presentan rechazos.", "rejection-free"),
    ("Nuestro tratamiento con células madre ayuda a que el cartílago desgastado de la rodilla vuelva a crecer.",
     "cartilage-regrowth"),
    ("Cientos de pacientes con Parkinson son la prueba de que nuestro tratamiento con células madre funciona.",
     "unsupported-efficacy"),
    ("Nuestro tratamiento con células madre detiene el avance del autismo.", "disease-cure"),
    ("Terapia con células madre mesenquimales para la esclerosis múltiple en nuestra clínica.", "disease-cure"),
    ("Células madre para el autismo", "disease-cure"),
    ("Las células madre regeneran el cartílago de su rodilla sin cirugía.", "cartilage-regrowth"),
    ("Cada inyección de tejido amniótico contiene millones de células madre vivas.",
     "live-cells-in-processed-product"),
    ("La terapia con células madre es un milagro para el dolor crónico.", "miracle-guarantee"),
    ("Resultados garantizados con nuestras células madre del cordón umbilical.", "miracle-guarantee"),
    ("El 90% de nuestros pacientes mejora con células madre.", "unsupported-efficacy"),
    ("Las células madre del cordón umbilical no generan rechazo.", "rejection-free"),
    ("Tratamos más de 50 enfermedades con células madre.", "disease-cure"),
    ("Estudios demuestran que nuestras células madre ayudan a los pacientes con artrosis.", "unsupported-efficacy"),
    ("Recupere el cartílago perdido de su rodilla con células madre.", "cartilage-regrowth"),
    ("Las células madre aplicadas por cateterismo forman tejido nuevo en el corazón.", "tissue-replacement-myth"),
    ("Rejuvenezca hasta diez años con nuestro suero de células madre.", "miracle-guarantee"),
    ("Las células madre reparan la articulación de la rodilla de forma natural.", "cartilage-regrowth"),
    ("Es un tratamiento sin riesgos: usamos sus propias células.", "miracle-guarantee"),
    ("Nuestra terapia con células madre está aprobada por la COFEPRIS y por la FDA.", "regulatory-misrepresentation"),
    ("Nuestro tratamiento con células madre cumple con todas las normas de la FDA.", "regulatory-misrepresentation"),
    ("Las células de cordón umbilical no requieren pruebas de compatibilidad.", "rejection-free"),
    ("Las células madre del cordón no provocan respuesta inmune y el riesgo de rechazo es nulo.", "rejection-free"),
    ("Según nuestros registros, 9 de cada 10 pacientes mejoran con células madre.", "unsupported-efficacy"),
    # an ethics committee or a registry listing offered as proof of safety
    ("Nuestro protocolo de células madre fue aprobado por un comité de ética y está inscrito en "
     "ClinicalTrials.gov, lo que garantiza que es seguro.", "regulatory-misrepresentation"),
    ("Nuestras células madre están registradas y aprobadas por la autoridad sanitaria.",
     "regulatory-misrepresentation"),
    ("Cuatro de cada cinco pacientes caminan mejor tras nuestras células madre.", "unsupported-efficacy"),
    ("La eficacia de nuestras células madre está comprobada científicamente.", "unsupported-efficacy"),
    # the condition first, the offer in a later sentence of the paragraph
    ("La esclerosis múltiple daña la mielina de los nervios. Con nuestras células madre, muchos pacientes "
     "recuperan la movilidad.", "disease-cure"),
]
NEAR_MISSES_ES = [
    ("Hoy no existe ningún tratamiento con células madre aprobado para curar la diabetes tipo 1.", "disease-cure"),
    # a regulator describing what such businesses advertise
    ("Estos establecimientos de células madre suelen anunciar curas milagrosas y resultados garantizados.",
     "miracle-guarantee"),
    ("El trasplante de médula ósea trata la leucemia y el linfoma.", "disease-cure"),
    ("El autismo afecta a uno de cada cien niños.", "disease-cure"),
    ("Células madre y autismo: una guía para padres", "disease-cure"),  # "para" after the condition
    ("El cartílago no vuelve a crecer: las células madre no regeneran el cartílago.", "cartilage-regrowth"),
    ("Guardamos la sangre de cordón en nuestro banco para un trasplante futuro.",
     "live-cells-in-processed-product"),
    ("Fue un milagro encontrar estacionamiento.", "miracle-guarantee"),
    ("Como son sus propias células madre, no hay riesgo de rechazo.", "rejection-free"),
    ("Un ensayo de células madre registrado en ClinicalTrials.gov no significa que el tratamiento sea seguro.",
     "regulatory-misrepresentation"),
    ("El hospital está registrado ante la Secretaría de Salud y el trasplante de médula ósea está aprobado "
     "para la leucemia.", "regulatory-misrepresentation"),
    ("Estudios muestran que las células madre inyectadas desaparecen en pocos días.", "unsupported-efficacy"),
    ("Atendemos a 50 pacientes con enfermedades raras cada mes.", "disease-cure"),
    ("Se recupera el cartílago con cirugía artroscópica.", "cartilage-regrowth"),
    ("Las células madre actúan de forma natural sobre las neuronas.", "tissue-replacement-myth"),
    ("Aplicamos membrana amniótica para ayudar a cerrar las úlceras del pie diabético.", "disease-cure"),
    # naming a cord-cell therapy says nothing about a processed product's live cells
    ("Aplicamos células madre de cordón umbilical para reducir la inflamación.", "live-cells-in-processed-product"),
    ("La idea de que las células madre sustituyen las neuronas muertas no se ha confirmado.",
     "tissue-replacement-myth"),
    ("La esclerosis múltiple daña la mielina de los nervios. También ofrecemos células madre para el dolor "
     "de rodilla.", "disease-cure"),
]


@pytest.mark.parametrize("text,category", POSITIVES_ES)
def test_promoted_claims_es(det, text, category):
    analysis = det.analyze(text, url=CLINIC)
    assert analysis.lang == "es"
    assert category in promoted(analysis), [(c.category, c.stance, c.text) for c in analysis.claims]


@pytest.mark.parametrize("text,category", NEAR_MISSES_ES)
def test_near_misses_es(det, text, category):
    analysis = det.analyze(text, url=CLINIC, lang="es")
    assert category not in promoted(analysis), [(c.category, c.stance, c.text) for c in analysis.claims]


def test_offsets_point_at_the_matched_words(det):
    text = ("Welcome to Example Regen.\n"
            "Our stem cell injections regrow the cartilage in your knee. "
            "We treat autism with umbilical stem cells — book now.")
    analysis = det.analyze(text, url=CLINIC)
    assert len(analysis.claims) >= 2
    for c in analysis.claims:
        assert text[c.start:c.end] == c.text
        assert c.text in c.sentence
        assert c.why and c.severity in ("high", "medium", "low") and c.pattern


def test_curly_apostrophes_match_like_straight_ones(det):
    analysis = det.analyze("Wharton\u2019s jelly injections contain live stem cells.", url=CLINIC)
    claim = next(c for c in analysis.claims if c.category == "live-cells-in-processed-product")
    assert claim.stance == "promoted"


def test_heading_and_bullets_form_one_claim(det):
    text = "Stem cell therapy at Example Clinic\nConditions we treat:\nAutism\nMultiple sclerosis\nCOPD"
    analysis = det.analyze(text, url=CLINIC)
    items = {c.text: c for c in analysis.claims if c.category == "disease-cure"}
    assert {"Autism", "Multiple sclerosis", "COPD"} <= set(items)
    assert items["Autism"].sentence == "Conditions we treat: … Autism"
    assert all(c.stance == "promoted" for c in items.values())


def test_page_heading_names_the_claim(det):
    analysis = det.analyze("Stem cell therapy for COPD\nCOPD makes every breath hard.", url=CLINIC)
    first = analysis.claims[0]
    assert first.category == "disease-cure" and first.stance == "promoted"
    assert first.sentence == "Stem cell therapy for COPD"


def test_title_supplies_stem_cell_context(det):
    text = "Parkinson's disease treatment\nWe treat Parkinson's disease at our clinic."
    without = det.analyze(text, url=CLINIC, title="Example Clinic")
    with_title = det.analyze(text, url=CLINIC, title="Stem cell therapy | Example Clinic")
    assert "disease-cure" not in promoted(without)
    assert "disease-cure" in promoted(with_title)


def test_host_named_for_stem_cells_supplies_their_context(det):
    text = "Our protocol halts the progression of lupus."
    assert "disease-cure" in promoted(det.analyze(text, url="https://www.harbor-stemcell.example.org/lupus"))
    assert "disease-cure" in promoted(det.analyze(text, url="https://clearwaterregenerative.example.org/lupus"))
    assert "disease-cure" not in promoted(det.analyze(text, url="https://www.harbor-clinic.example.org/lupus"))
    # a word that only begins like one is not one
    assert "disease-cure" not in promoted(det.analyze(text, url="https://www.regency-clinic.example.org/lupus"))


def test_url_host():
    from analysis.detect.pagekind import url_host
    assert url_host("https://User@WWW.Example.org:8443/a?b#c") == "www.example.org"
    assert url_host("http://example.org") == url_host("example.org/page") == "example.org"
    assert url_host("") == ""


@pytest.mark.parametrize("option,value", [("not_followed_by", "safe"), ("after_number", "2"), ("case", "lower"),
                                          ("requires", {"cue": "regen"})])
def test_malformed_pattern_options_are_refused(tmp_path, det, option, value):
    import json
    target = tmp_path / "patterns"
    shutil.copytree(det.patterns_dir, target)
    with open(target / "claims_en.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"label": "miracle-guarantee", "pattern": "wonder cure", "id": "mg-test", option: value}) + "\n")
    with pytest.raises(ValueError, match=f"mg-test.*{option}"):
        Detector(target)


def test_malformed_host_rules_are_refused(tmp_path, det):
    target = tmp_path / "patterns"
    shutil.copytree(det.patterns_dir, target)
    (target / "hosts.json").write_text('{"labels": {"cue:regen": "stem("}}')
    with pytest.raises(ValueError, match="hosts.json"):
        Detector(target)


# A heading that lost its markup (scanned text, styled paragraphs): a short capitalised
# line over a paragraph heads it; the last item of a list does not.
TEXT_HEADINGS = [
    ("Alzheimer's Disease\nStem cell therapy can improve memory and mood.", True),
    ("Crohn's Disease & Ulcerative Colitis\nOur stem cell infusions calm gut inflammation.", True),
    # near misses: a list's last item, a closed sentence, a lower-case line, an offer for a knee
    ("Our departments\nRheumatology\nAlzheimer's disease\nStem cell therapy can improve memory and mood.", False),
    ("Alzheimer's disease is common.\nStem cell therapy can improve memory and mood.", False),
    ("alzheimer's disease\nStem cell therapy can improve memory and mood.", False),
    ("Alzheimer's Disease\nOur clinic offers stem cell injections for knee pain.", False),
]


@pytest.mark.parametrize("text,flagged", TEXT_HEADINGS)
def test_a_plain_text_heading_over_a_paragraph_names_its_condition(det, text, flagged):
    claims = [c for c in det.analyze(text, url=CLINIC).claims
              if c.category == "disease-cure" and c.stance == "promoted" and c.text in text.split("\n")[-2]]
    assert bool(claims) == flagged, [(c.text, c.sentence) for c in claims]


# A paragraph's last sentence ending in ":", or a short line over bulleted lines, heads
# the list under it: its stance cues speak for the items (a warning's list of claims),
# and so does its offer.
PARAGRAPH_LIST_HEADS = [
    ("No exosome product is authorised here. Shops advertise them with claims that they:\n"
     "• treat long COVID or lupus;\n• \"reverse ageing\";\nThese exosomes come from stem cells.", "cautionary"),
    ("Welcome to our clinic. Our stem cell therapy treats:\n• Lupus\n• Long COVID", "promoted"),
    # a short line without a colon over bulleted lines titles the list
    ("Stem cell conditions we treat\n• Lupus\n• Long COVID\n• Kidney disease", "promoted"),
    # the heading's negation denies every item, however far down the list
    ("Conditions we do not treat with stem cells:\n• Lupus\n• Long COVID\n• Kidney disease", "negated"),
    ("Stem cell conditions we do not treat\n• Lupus\n• Long COVID\n• Kidney disease", "negated"),
    # words that introduce a list ("We treat") title items that carry no bullets
    ("Mesenchymal stem cells calm the immune system.\nWe treat\nLupus\nRheumatoid arthritis", "promoted"),
]


def test_an_unbulleted_list_needs_words_that_introduce_it(det):
    # "Our team" is a short line over short lines, as a list's title is, but introduces nothing
    text = "Mesenchymal stem cells calm the immune system.\nOur team\nLupus Foundation liaison\nRheumatology nurse"
    assert not [c for c in det.analyze(text, url=CLINIC).claims if c.category == "disease-cure"]


@pytest.mark.parametrize("text,stance", PARAGRAPH_LIST_HEADS)
def test_a_sentence_ending_a_paragraph_with_a_colon_heads_the_list(det, text, stance):
    claims = [c for c in det.analyze(text, url=CLINIC).claims if c.category == "disease-cure"]
    assert claims and {c.stance for c in claims} == {stance}, [(c.text, c.stance) for c in claims]


def test_one_claim_per_category_and_sentence(det):
    analysis = det.analyze("Our stem cells treat autism, Parkinson's, ALS and multiple sclerosis.", url=CLINIC)
    assert [c.category for c in analysis.claims].count("disease-cure") == 1


def test_severity_rule(det):
    analysis = det.analyze("Our stem cell injections cure autism. Our stem cells regrow knee cartilage. "
                           "Beware of clinics that promise stem cells cure autism.", url=CLINIC)
    by = {(c.category, c.stance): c.severity for c in analysis.claims}
    assert by[("disease-cure", "promoted")] == "high"
    assert by[("cartilage-regrowth", "promoted")] == "medium"
    assert by[("disease-cure", "cautionary")] == "low"


def test_empty_and_neutral_text(det):
    assert det.analyze("").claims == []
    assert det.analyze("The weather was mild and the market closed higher.").claims == []


def test_analyze_many_keeps_order_and_languages(det):
    pages = [
        {"text": "Our stem cells cure autism.", "url": CLINIC},
        {"text": "Nuestras células madre curan el autismo en nuestra clínica.", "url": CLINIC},
        {"text": "Nothing to see here."},
        {"text": "Our amniotic injections contain live stem cells.", "url": CLINIC, "lang": "en"},
    ] * 3
    single = [det.analyze(p["text"], url=p.get("url", ""), lang=p.get("lang", "")) for p in pages]
    many = list(det.analyze_many(pages, n_process=2, batch_size=2))
    assert [a.lang for a in many] == ["en", "es", "en", "en"] * 3
    assert [[c.to_dict() for c in a.claims] for a in many] == [[c.to_dict() for c in a.claims] for a in single]
    # more batches than the pool keeps in flight: results still come back in order
    many = list(det.analyze_many(pages, n_process=2, batch_size=1))
    assert [[c.to_dict() for c in a.claims] for a in many] == [[c.to_dict() for c in a.claims] for a in single]


def test_analyze_many_with_workers_reads_pages_as_it_goes(det):
    """A long crawl streams through the pool: only a few batches are read ahead."""
    pulled = []

    def pages():
        for i in range(200):
            pulled.append(i)
            yield {"text": f"Our stem cells cure autism. Page {i}.", "url": CLINIC}

    results = det.analyze_many(pages(), n_process=2, batch_size=2)
    first = next(results)
    assert first.claims and first.claims[0].category == "disease-cure"
    assert len(pulled) < 40
    assert sum(1 for _ in results) == 199
    assert len(pulled) == 200


def test_version_changes_with_pattern_files(tmp_path, det):
    patterns = tmp_path / "patterns"
    shutil.copytree(det.patterns_dir, patterns)
    same = Detector(patterns, model_dir=None)
    assert same.version == det.version
    with open(patterns / "claims_en.jsonl", "a", encoding="utf-8") as f:
        f.write('{"label": "miracle-guarantee", "pattern": "wonder shot", "id": "test-wonder"}\n')
    changed = Detector(patterns, model_dir=None)
    assert changed.version != det.version
    analysis = changed.analyze("Our stem cell wonder shot fixes everything.", url=CLINIC)
    assert any(c.pattern == "test-wonder" for c in analysis.claims)


def test_unknown_category_in_patterns_is_refused(tmp_path, det):
    patterns = tmp_path / "patterns"
    shutil.copytree(det.patterns_dir, patterns)
    with open(patterns / "claims_en.jsonl", "a", encoding="utf-8") as f:
        f.write('{"label": "snake-oil", "pattern": "elixir", "id": "bad"}\n')
    with pytest.raises(ValueError, match="snake-oil"):
        Detector(patterns, model_dir=None)


def test_sentence_splitter_is_newline_aware():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("stemwatch_sentences")
    doc = nlp("Conditions we treat:\nAutism\nStem cells, e.g. MSCs, help. Dr. Lee agrees! Really? yes.")
    assert [s.text.strip() for s in doc.sents] == [
        "Conditions we treat:", "Autism", "Stem cells, e.g. MSCs, help.", "Dr. Lee agrees!", "Really? yes."]


def test_patterns_are_phrases_with_known_options(det):
    """Speed contract: no token-Matcher patterns; options are ones the resolver understands."""
    from analysis.detect.pattern_files import claim_patterns, cue_patterns

    for lang in det.nlps:
        for row in claim_patterns(det.patterns_dir, lang) + cue_patterns(det.patterns_dir, lang):
            assert isinstance(row["pattern"], str) and row["pattern"], row
            assert set(row) <= {"label", "pattern", "id", "requires", "case", "after_number", "not_alone",
                                "not_followed_by"}, row


def test_pattern_options_case_and_number(det):
    assert "disease-cure" in promoted(det.analyze("Our stem cell therapy for MS patients.", url=CLINIC))
    assert "disease-cure" not in promoted(det.analyze("Our stem cell therapy ms dosing.", url=CLINIC))
    assert "unsupported-efficacy" in promoted(det.analyze("Stem cells: 87% of patients improve.", url=CLINIC))
    assert "unsupported-efficacy" not in promoted(det.analyze("Stem cells: % of patients improve.", url=CLINIC))


def test_guarantee_takes_context_from_anywhere_on_the_page(det):
    filler = " ".join(f"Our clinic is open on day {i} of the week." for i in range(1, 7))
    text = f"Umbilical stem cell injections for knees.\n{filler}\nEvery treatment comes with guaranteed results."
    assert "miracle-guarantee" in promoted(det.analyze(text, url=CLINIC))
    assert "miracle-guarantee" not in promoted(det.analyze(f"{filler}\nGuaranteed results.", url=CLINIC))


@pytest.mark.parametrize("text", [
    "stem cells do not cure autism and " * 200,  # no sentence end at all
    "Conditions: " + "x" * 2500 + " autism",  # one "word" longer than the limit
    "Short one. " + "our stem cells help lupus, " * 100 + "\nNext line.",
])
def test_overlong_stretches_are_cut_into_bounded_sentences(text):
    """Work per claim grows with its sentence, so a page without sentence ends (a hostile
    or badly extracted page) is cut into pieces of at most MAX_SENTENCE_CHARS, at a
    space where there is one."""
    from analysis.detect.sentences import MAX_SENTENCE_CHARS, sentence_cuts

    cuts = sentence_cuts(text)
    bounds = [0, *cuts, len(text)]
    assert cuts == sorted(set(cuts)) and all(0 < c < len(text) for c in cuts)
    assert max(b - a for a, b in zip(bounds, bounds[1:])) <= MAX_SENTENCE_CHARS
    for a, b in zip(bounds, bounds[1:-1]):
        # after a space, or through a piece with no space to cut at
        assert text[b - 1] in " \n" or " " not in text[a + 1:b], repr(text[b - 5:b + 5])


def test_claims_on_a_page_without_sentence_ends_are_quoted_in_bounded_pieces(det):
    from analysis.detect.sentences import MAX_SENTENCE_CHARS

    text = "our umbilical stem cells do not cure autism, " * 300  # cut at commas: each clause whole
    claims = det.analyze(text, url=CLINIC, lang="en").claims
    assert len(claims) > 1 and {c.category for c in claims} == {"disease-cure"}
    assert {c.stance for c in claims} == {"negated"}
    assert max(len(c.sentence) for c in claims) <= MAX_SENTENCE_CHARS


@pytest.mark.parametrize("run", ["!" * 64, "!" * 5000, "\U0001f642" * 97, ":)" * 300, "?!" * 40 + "." * 33])
def test_runs_of_punctuation_are_broken_before_tokenising(run):
    """spaCy's tokenizer is quadratic in a run of punctuation or symbols without a space
    (16,000 "!" took 22 s); normalize breaks every run of 64 or more with spaces, keeping
    every offset."""
    from analysis.detect.text import AFFIX_RUN, normalize

    text = f"Wow {run} our stem cells cure autism."
    norm = normalize(text)
    assert len(norm) == len(text)
    assert max(len(piece) for piece in norm.split()) < AFFIX_RUN
    changed = [i for i, (a, b) in enumerate(zip(text, norm)) if a != b]
    assert all(norm[i] == " " for i in changed) and len(changed) == len(run) // AFFIX_RUN


def test_ordinary_text_is_left_as_it_is():
    from analysis.detect.text import normalize

    text = "Call now!!! Results guaranteed... \u201cMiracle\u201d \u2014 see FAQ ???? (c) 2026 ----- **** #### 🙂🙂🙂"
    assert normalize(text) == text.translate({0x201c: '"', 0x201d: '"', 0x2014: "-"})


def test_a_claim_after_a_long_run_keeps_its_offsets(det):
    text = "!" * 20_000 + " Our umbilical stem cells cure autism."
    claims = det.analyze(text, url=CLINIC, lang="en").claims
    assert [(c.category, text[c.start:c.end]) for c in claims] == [("disease-cure", "cure autism")]


@pytest.mark.parametrize("rule,message", [
    ({"cue": "treat", "scope": "window", "weak": ["treat-weak", "regen"]}, "belong inside the offer rule"),
    ({"cue": "treat", "scope": "sentence", "offer": {"next": "regen"}}, "scope 'sentence' takes none"),
    ({"cue": "treat", "scope": "unit", "offer": {"nxt": "regen"}}, "unknown offer option"),
    ({"cue": "treat", "scope": "unit", "offer": {"weak": "treat-weak"}}, "must be \\[weak cue, partner cue\\]"),
])
def test_the_offer_rule_options_belong_to_the_unit_scope_alone(rule, message):
    from analysis.detect.rules import compile_rule

    with pytest.raises(ValueError, match=message):
        compile_rule(rule)


def test_the_offer_rule_compiles_its_options_together():
    from analysis.detect.rules import NO_OFFER, compile_rule

    rule = compile_rule({"cue": "treat", "scope": "unit", "offer": {"weak": ["treat-weak", "regen"], "next": "regen"}})
    assert (rule.offer.weak, rule.offer.partner, rule.offer.next) == ("cue:treat-weak", "cue:regen", "cue:regen")
    assert compile_rule({"cue": "regen", "scope": "window", "window": 2}).offer is NO_OFFER
