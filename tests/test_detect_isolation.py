"""One page never costs another its analysis: very long pages go in bounded pieces, and a
page the detector cannot read is recorded with its reason while its batch keeps its claims."""

from __future__ import annotations

import pytest

import analysis.detect.detector as detector_module
from analysis.detect.detector import Detector, pieces
from analysis.detect.pool import analyse
from analysis.store.database import Store

CLAIM = "Our stem cell therapy can reverse autism in children. Book a consultation today."
FILLER = "Opening hours are Monday to Friday, nine to five, at our downtown office.\n"


@pytest.fixture(scope="module")
def rules():
    return Detector(model_dir=None)


@pytest.mark.parametrize("text,size", [
    ("a" * 25, 10),
    ("line one\nline two\nline three\n" * 5, 20),
    ("word " * 40, 17),
    ("short", 100),
])
def test_pieces_cover_the_text_in_order_and_within_the_size(text, size):
    cut = pieces(text, size)
    assert cut[0][0] == 0 and cut[-1][1] == len(text)
    assert all(a < b and b - a <= size for a, b in cut)
    assert all(b == c for (_, b), (c, _) in zip(cut, cut[1:]))


def test_a_very_long_page_is_analysed_in_pieces_with_true_offsets(rules, monkeypatch):
    monkeypatch.setattr(detector_module, "PIECE_CHARS", 5_000)
    text = FILLER * 200 + CLAIM + "\n" + FILLER * 200 + CLAIM + "\n"
    assert len(text) > 5 * 5_000
    analysis = rules.analyze(text, url="https://clinic.example.org/autism/")
    found = [c for c in analysis.claims if c.category == "disease-cure"]
    assert len(found) == 2
    assert all(text[c.start:c.end] == c.text for c in analysis.claims)
    whole = [a for a in rules.analyze_many([{"text": text, "url": "https://clinic.example.org/autism/"}])]
    assert [(c.start, c.category) for c in whole[0].claims] == [(c.start, c.category) for c in analysis.claims]


class _RefusesOnePage(Detector):
    """The real rules detector, made to fail on one page as a broken input would."""

    def analyze_many(self, pages, **kw):
        pages = list(pages)
        if any("REFUSE" in p.text for p in pages):
            raise ValueError("this page cannot be analysed")
        return super().analyze_many(pages, **kw)


def test_a_page_that_fails_costs_its_batch_nothing(tmp_path):
    det = _RefusesOnePage(model_dir=None)
    pages = [{"text": CLAIM, "url": f"https://clinic{i}.example.org/"} for i in range(5)]
    pages.insert(2, {"text": "REFUSE " + CLAIM, "url": "https://bad.example.org/"})
    results = analyse(det, pages)
    assert len(results) == 6
    assert results[2].error == "ValueError: this page cannot be analysed" and not results[2].claims
    assert all(r.claims and not r.error for i, r in enumerate(results) if i != 2)

    with Store(tmp_path / "t.db") as store:
        crawl = store.start_crawl([{"url": "https://clinic.example.org/", "site": "clinic.example.org"}])
        ids = store.add_pages([{"crawl_id": crawl, "site": "clinic.example.org", "url": p["url"],
                                "status": 200, "text": p["text"]} for p in pages])
        store.add_analyses(list(zip(ids, results)))
        rows = {r["url"]: r for r in store.db.query("select url, analysis_error from pages")}
        assert rows["https://bad.example.org/"]["analysis_error"] == "ValueError: this page cannot be analysed"
        assert sum(r["analysis_error"] is None for r in rows.values()) == 5
        store.finish_crawl(crawl, "finished")
        assert store.crawl_summary(crawl)["crawl"]["not_analysed"] == 1
