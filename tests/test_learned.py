"""The learned stage: training is deterministic and tied to its corpus, the model loads
offline, scores reach every claim, the threshold is a setting, and the decision table."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.cli import cli
from analysis.detect.detector import Detector
from analysis.detect.learned import DEFAULT_MODEL_DIR, Verdict, combine, model_hash
from analysis.detect.training import corpus_hash, train

REPO = Path(__file__).resolve().parents[1]

# A small invented corpus: fictional clinics and news sites, each passage labelled.
_PROMOS = [
    ("Our stem cell therapy can reverse autism in children. Book a consultation today.", ["disease-cure"]),
    ("Stem cell injections regrow the cartilage in your knee without surgery. Call us now.",
     ["cartilage-regrowth"]),
    ("Our amniotic injections contain live stem cells that heal your joints.",
     ["live-cells-in-processed-product"]),
    ("Results are guaranteed: our stem cell treatment is a miracle for back pain.", ["miracle-guarantee"]),
    ("Our umbilical cord stem cells carry no risk of rejection and need no matching.", ["rejection-free"]),
    ("Our exosome therapy is FDA approved and safe for everyone. Schedule your visit.",
     ["regulatory-misrepresentation"]),
]
_REPORTS = [
    "A trial at a university is testing stem cells in children with autism, researchers said.",
    "Experts warn that no stem cell injection has been shown to regrow knee cartilage.",
    "Regulators say amniotic products sold by clinics contain no live cells.",
    "Doctors caution patients to distrust clinics that promise miracle cures with stem cells.",
    "The agency said no stem cell product for joint pain is FDA approved.",
    "A study reported that donor cells can be rejected by the immune system.",
]


def small_corpus() -> list[dict]:
    rows = []
    for i in range(4):
        for j, (text, cats) in enumerate(_PROMOS):
            rows.append({"id": f"p{i}-{j}", "url": f"https://clinic{i}{j}.example.org/treatments/",
                         "domain": f"clinic{i}{j}.example.org", "lang": "en", "page_kind": "clinic",
                         "text": f"{text} Clinic {i}.", "promoted": cats, "mentioned": [], "disputed": []})
        for j, text in enumerate(_REPORTS):
            rows.append({"id": f"n{i}-{j}", "url": f"https://news{i}{j}.example.com/health/story",
                         "domain": f"news{i}{j}.example.com", "lang": "en", "page_kind": "news",
                         "text": f"{text} Story {i}.", "promoted": [], "mentioned": [], "disputed": []})
    return rows


def write_corpus(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rules():
    return Detector(model_dir=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, rules):
    base = tmp_path_factory.mktemp("model")
    corpus = write_corpus(base / "corpus.jsonl", small_corpus())
    meta = train(small_corpus(), base / "m1", rules, corpus_sha256=corpus_hash(corpus))
    return base, meta


def _weights(model_dir: Path) -> bytes:
    return b"".join((model_dir / part / "textcat_multilabel" / "model").read_bytes() for part in ("claims",)) + \
        (model_dir / "pagekind" / "textcat" / "model").read_bytes()


def test_training_twice_gives_the_same_model(trained, rules):
    base, meta = trained
    again = train(small_corpus(), base / "m2", rules, corpus_sha256=meta["corpus_sha256"])
    assert again == meta
    assert _weights(base / "m1") == _weights(base / "m2")
    assert model_hash(base / "m1") == model_hash(base / "m2")


def test_a_corpus_change_changes_the_model_hash(trained, rules):
    base, meta = trained
    rows = small_corpus()
    rows[0]["promoted"] = []  # one label changed
    corpus = write_corpus(base / "changed.jsonl", rows)
    changed = train(rows, base / "m3", rules, corpus_sha256=corpus_hash(corpus))
    assert changed["corpus_sha256"] != meta["corpus_sha256"]
    assert model_hash(base / "m3") != model_hash(base / "m1")


def test_the_model_records_what_it_was_trained_on(trained):
    base, meta = trained
    assert meta["corpus_sha256"] == hashlib.sha256((base / "corpus.jsonl").read_bytes()).hexdigest()
    assert meta["passages"] == len(small_corpus()) and meta["seed"] == 0
    assert 0 < meta["threshold"] < 1
    assert meta["candidate_recall"] == 1.0  # every promoted label of these passages is a candidate


def test_claims_carry_the_model_score_and_the_threshold_is_a_setting(trained):
    base, _ = trained
    text = "Our stem cell therapy can reverse autism in children. Book a consultation today."
    url = "https://clinic-new.example.org/autism/"
    low = Detector(model_dir=base / "m1", threshold=0.0).analyze(text, url=url)
    high = Detector(model_dir=base / "m1", threshold=1.0).analyze(text, url=url)
    assert low.claims and all(c.score is not None and 0 <= c.score <= 1 for c in low.claims)
    assert "disease-cure" in {c.category for c in low.claims if c.stance == "promoted"}
    assert not [c for c in high.claims if c.stance == "promoted"]  # no score reaches 1
    assert "+model." in low.detector_version and low.detector_version != high.detector_version
    assert Detector(model_dir=None).analyze(text, url=url).claims[0].score is None


def test_a_threshold_outside_zero_to_one_is_refused(trained):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Detector(model_dir=trained[0] / "m1", threshold=1.5)


def test_the_shipped_model_was_trained_on_the_shipped_corpus():
    meta = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text())
    assert meta["corpus_sha256"] == corpus_hash(REPO / "data" / "corpus" / "passages.jsonl"), \
        "data/corpus changed: run `make train`"
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file())
    assert size < 20 * 1024 * 1024


def test_the_shipped_model_loads_with_the_network_cut_off():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "from analysis.detect.detector import get_detector\n"
        "d = get_detector()\n"
        "a = d.analyze('Our stem cells cure autism. Call now.', url='https://c.example.org/')\n"
        "print(d.version, [c.score for c in a.claims])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "+model." in out.stdout and "None" not in out.stdout and "[]" not in out.stdout  # scored claims


# (rule claims as (category, stance), the model's verdicts, expected (category, stance) after, missing)
COMBINE = [
    ([("disease-cure", "promoted")], {"disease-cure": 0.9}, [("disease-cure", "promoted")], []),
    ([("disease-cure", "promoted")], {"disease-cure": 0.1}, [("disease-cure", "reported")], []),
    ([("disease-cure", "cautionary")], {"disease-cure": 0.9}, [("disease-cure", "promoted")], []),
    ([("disease-cure", "negated"), ("disease-cure", "reported")], {"disease-cure": 0.8},
     [("disease-cure", "promoted"), ("disease-cure", "reported")], []),
    ([("disease-cure", "negated")], {"disease-cure": 0.2}, [("disease-cure", "negated")], []),
    ([], {"rejection-free": 0.7}, [], ["rejection-free"]),
    ([("miracle-guarantee", "promoted")], {}, [("miracle-guarantee", "promoted")], []),
]


@pytest.mark.parametrize("claims,scores,expected,missing", COMBINE)
def test_the_model_decides_which_categories_are_promoted(claims, scores, expected, missing):
    info = [(i, i + 1, cat, "pid", stance, "", "medium", [(i, i + 1)]) for i, (cat, stance) in enumerate(claims)]
    verdicts = {c: Verdict(c, s, s >= 0.5) for c, s in scores.items()}
    out, lacking = combine(info, verdicts, lambda cat, stance: "high" if stance == "promoted" else "low")
    assert [(c[2], c[4]) for c in out] == expected
    assert lacking == missing
    assert all(c[8] == (round(scores[c[2]], 4) if c[2] in scores else None) for c in out)


def test_eval_cross_validates_by_site(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", small_corpus())
    result = CliRunner().invoke(cli, ["eval", str(corpus), "--cv-by-domain", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["folds"] == 2 and report["sites"] == len(small_corpus())
    assert set(report["systems"]) == {"rules", "rules+model", "keyword"}
    for entry in report["systems"].values():
        lo, hi = entry["ci95"]["f1"]
        assert 0 <= lo <= entry["micro"]["f1"] <= hi <= 1
        assert {"en", "categories", "false_alarm_rate"} <= set(entry)


def test_eval_says_when_the_model_was_trained_on_the_corpus():
    result = CliRunner().invoke(cli, ["eval", str(REPO / "data" / "corpus" / "passages.jsonl")])
    assert result.exit_code == 0, result.output
    assert "NOT A MEASURE" in result.output


def test_the_shipped_model_was_trained_on_the_current_rules(rules):
    meta = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text())
    assert meta["detector_rules"] == rules.version, "patterns changed: run `make train`"
