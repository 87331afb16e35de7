"""Language guess for pages that declare none: function words among the first words."""

import pytest

from analysis.detect.lang import LanguageGuesser
from analysis.detect.taxonomy import DEFAULT_PATTERNS_DIR

EN = "the stem cell clinic is open and the doctors are in for the patients of the city. "
ES = "la clínica de células madre está abierta y los médicos atienden a los pacientes de la ciudad. "


@pytest.fixture(scope="module")
def guesser():
    return LanguageGuesser(DEFAULT_PATTERNS_DIR / "lang.json")


@pytest.mark.parametrize("text, declared, expected", [
    (EN, "", "en"),
    (ES, "", "es"),
    (ES.upper(), "", "es"),  # words are lower-cased before they are counted
    (ES, "en-US", "en"),  # a declared, supported language wins
    (EN, "es_MX", "es"),
    (ES, "fr", "es"),  # an unsupported declaration falls back to the guess
    ("", "", "en"),  # nothing to count: the default
    ("Células madre.", "", "en"),  # one hit is below min_hits
    ("la el los the and of", "", "en"),  # a tie: the default
    ("el_la de1la", "", "es"),  # digits and underscores separate words, as spaces do
    ("el la de", "", "es"),
])
def test_guess(guesser, text, declared, expected):
    assert guesser.guess(text, declared) == expected


def test_only_the_first_words_count(guesser):
    n = guesser.max_tokens
    assert guesser.guess("stem " * n + ES * 5) == "en"  # Spanish starts after the counted words
    assert guesser.guess("stem " * (n - 30) + ES * 5) == "es"


def test_long_words_still_reach_the_counted_words(guesser):
    # Words much longer than usual: the guesser must look past its usual prefix of the text.
    text = ("x" * 40 + " ") * 20 + ES * 3
    assert guesser.guess(text) == "es"
    # The 400th word runs across the prefix the guesser reads first: cut there it would be
    # the stopword "la"; whole, "lalala" is none, so only one Spanish word counts.
    n = guesser.max_tokens
    head = "el " + "q " * (n - 2)
    text = head + "1" * (n * 12 - 2 - len(head) - 1) + " lalala el"
    assert guesser.guess(text) == "en"


def test_non_ascii_text_counts_the_same_words(guesser):
    assert guesser.guess("Ésta es la clínica: los médicos y las células del centro.") == "es"
    assert guesser.guess("İstanbul: the clinic and the doctors of the city.") == "en"


@pytest.mark.parametrize("text", [
    "• Home\n© 2026 The Clinic — all rights reserved",  # only marks and symbols beyond ASCII
    "¿Qué es? Las CÉLULAS madre—más aquí•ok ÉL\u00a0dijo",  # non-ASCII letters: split again
    "x²y and ½ of naïve café_au 12lait",  # a superscript digit is a word character; ½ too
    "plain ascii, with digits 1234 and under_scores",
])
def test_first_words_are_the_regex_words(guesser, text):
    # _first_words takes faster paths by text; each must find what the plain regex finds
    from analysis.detect.lang import _WORD
    assert guesser._first_words(text)[0] == [w.lower().encode() for w in _WORD.findall(text)]
