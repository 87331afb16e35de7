"""evaluate(): passage-level scoring of promoted categories, false alarms, page kind, baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis.detect.detector import Detector
from analysis.detect.evaluate import KeywordBaseline, evaluate, format_report, load_corpus, score

ROWS = [
    {"id": "t1", "url": "https://www.example-regen.org/autism", "lang": "en", "page_kind": "clinic",
     "text": "Our umbilical stem cell therapy reverses autism. Book a consultation today.",
     "promoted": ["disease-cure"], "mentioned": [], "disputed": []},
    {"id": "t2", "url": "https://www.example-regen.org/knees", "lang": "en", "page_kind": "clinic",
     "text": "Our stem cell injections regrow knee cartilage. Zero risk of rejection with donor cells. Call us today.",
     "promoted": ["cartilage-regrowth", "rejection-free"], "mentioned": [], "disputed": ["miracle-guarantee"]},
    {"id": "t3", "url": "https://news.example.com/2025/01/stem-cells", "lang": "en", "page_kind": "news",
     "text": "Regulators warned that clinics falsely claim stem cells cure autism, a spokesperson said.",
     "promoted": [], "mentioned": ["disease-cure"], "disputed": []},
    {"id": "t4", "url": "https://www.example.org/bakery", "lang": "en", "page_kind": None,
     "text": "A miracle of a croissant: our bakery guarantees fresh bread.",
     "promoted": [], "mentioned": [], "disputed": []},
    {"id": "t5", "url": "https://www.example-regen.org/faq", "lang": "en", "page_kind": "clinic",
     "text": "Stem cells help the body heal. Book a consultation with our doctors.",
     "promoted": ["unsupported-efficacy"], "mentioned": [], "disputed": []},
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    return evaluate(path, Detector(model_dir=None))


def test_detector_scores(report):
    d = report["detector"]
    assert d["categories"]["disease-cure"]["tp"] == 1
    assert d["categories"]["cartilage-regrowth"]["tp"] == 1
    assert d["categories"]["rejection-free"]["tp"] == 1
    assert d["categories"]["unsupported-efficacy"]["fn"] == 1  # t5 is deliberately unfindable
    assert d["micro"]["tp"] == 3 and d["micro"]["fn"] == 1 and d["micro"]["fp"] == 0
    assert d["micro"]["precision"] == 1.0 and d["micro"]["recall"] == pytest.approx(0.75)
    assert d["negatives"] == 2 and d["false_alarm_rate"] == 0.0


def test_baseline_is_scored_in_the_same_run(report):
    b = report["baseline"]
    # keywords fire on the news warning and the bakery: false alarms the detector avoids
    assert b["false_alarms"] == 2 and b["false_alarm_rate"] == 1.0
    assert b["categories"]["disease-cure"]["fp"] >= 1


def test_page_kind_accuracy_only_where_labelled(report):
    assert report["page_kind"]["scored"] == 4
    assert report["page_kind"]["correct"] == 4


def test_errors_list_missed_categories(report):
    errors = {e["id"]: e for e in report["errors"]}
    assert set(errors) == {"t5"}
    assert errors["t5"]["missed"] == ["unsupported-efficacy"]
    text = format_report(report, show_errors=True)
    assert "t5" in text and "missed: unsupported-efficacy" in text
    assert "t5" not in format_report(report)


def test_disputed_categories_are_not_scored():
    rows = [{"text": "", "promoted": ["disease-cure"], "disputed": ["miracle-guarantee"]}]
    s = score(rows, [{"disease-cure", "miracle-guarantee"}])
    assert s["micro"]["fp"] == 0 and s["micro"]["tp"] == 1


def test_false_alarm_counts_any_promoted_flag():
    rows = [{"text": "", "promoted": []}, {"text": "", "promoted": []}]
    s = score(rows, [{"miracle-guarantee"}, set()])
    assert s["false_alarms"] == 1 and s["false_alarm_rate"] == 0.5


def test_keyword_baseline_is_context_free(tmp_path):
    base = KeywordBaseline()
    assert "disease-cure" in base.promoted("We do not claim to cure autism.")
    assert base.promoted("The train arrived on time.") == set()


def test_bad_corpus_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "promoted": []}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        evaluate(path, Detector(model_dir=None))


@pytest.mark.parametrize("line, message", [
    ('{"text": "ok", "promoted": ["disease_cure"]}', "unknown category 'disease_cure' in 'promoted'"),
    ('{"text": "ok", "disputed": ["miracle"]}', "unknown category 'miracle' in 'disputed'"),
    ('{"text": "ok", "mentioned": "disease-cure"}', "'mentioned' must be a list"),
    ('{"text": "ok", "page_kind": "blog"}', "unknown page_kind 'blog'"),
    ('{"text": 42}', "'text' is not a string"),
    ('["a list"]', "not a JSON object"),
])
def test_a_mistyped_label_is_an_error_not_a_silent_zero(tmp_path, line, message):
    """A label the scorer does not know would drop out of every count and make the
    scores quietly wrong."""
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "fine", "promoted": ["disease-cure"], "page_kind": "clinic"}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match=":2: " + re.escape(message)):
        evaluate(path, Detector(model_dir=None))


EVAL_SETS = sorted((Path(__file__).resolve().parent.parent / "data" / "eval").glob("*.jsonl"))


@pytest.mark.parametrize("path", EVAL_SETS, ids=[p.name for p in EVAL_SETS])
def test_bundled_evaluation_sets_are_valid_corpora(path):
    """`make eval` scores these: every line must pass the corpus checks, ids must be
    unique, and every domain must be an invented example.* one."""
    rows = load_corpus(path)
    assert len(rows) >= 40
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(".example" in r["url"] for r in rows), [r["url"] for r in rows if ".example" not in r["url"]]


def test_there_are_bundled_evaluation_sets():
    assert len(EVAL_SETS) >= 10
