"""`stemwatch scan` and `stemwatch eval` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from analysis.cli import cli
from analysis.detect.scan import scan_paths

CLINIC_HTML = """<!doctype html><html lang="en"><head><title>Example Regen Clinic | Stem cell therapy</title></head>
<body><h1>Stem cell therapy for COPD</h1>
<p>Our amniotic injections contain millions of live stem cells.</p>
<h2>Conditions we treat:</h2><ul><li>Autism</li><li>Multiple sclerosis</li></ul>
<form action="/book"><button>Book a consultation</button></form></body></html>"""

NEUTRAL_TXT = "Our bakery opens at eight. Fresh bread every morning."

JSONL_FIELDS = {"path", "category", "stance", "text", "sentence", "start", "end", "pattern", "severity",
                "why", "page_kind", "lang", "cue"}


@pytest.fixture()
def files(tmp_path):
    html = tmp_path / "clinic.html"
    html.write_text(CLINIC_HTML, encoding="utf-8")
    txt = tmp_path / "bakery.txt"
    txt.write_text(NEUTRAL_TXT, encoding="utf-8")
    es = tmp_path / "clinica.txt"
    es.write_text("Nuestras células madre regeneran el cartílago de la rodilla.", encoding="utf-8")
    return html, txt, es


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_scan_jsonl_contract(files):
    html, txt, _ = files
    result = run("scan", "--format", "jsonl", str(html), str(txt))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows and all(JSONL_FIELDS <= set(r) for r in rows)
    assert {r["path"] for r in rows} == {str(html)}  # the neutral file prints nothing
    cats = {(r["category"], r["stance"]) for r in rows}
    assert ("disease-cure", "promoted") in cats
    assert ("live-cells-in-processed-product", "promoted") in cats
    assert all(r["page_kind"] == "clinic" and r["lang"] == "en" for r in rows)
    autism = next(r for r in rows if r["text"] == "Autism")
    assert autism["sentence"] == "Conditions we treat: … Autism"


def test_scan_offsets_point_into_the_extracted_text(files):
    html, _, _ = files
    from analysis.extract import extract_html

    text = extract_html(html.read_bytes()).text
    rows = [json.loads(x) for x in run("scan", "--format", "jsonl", str(html)).output.splitlines()]
    for r in rows:
        assert text[r["start"]:r["end"]] == r["text"]


def test_scan_spanish_text_file(files):
    _, _, es = files
    rows = [json.loads(x) for x in run("scan", "--format", "jsonl", str(es)).output.splitlines()]
    assert [(r["category"], r["stance"], r["lang"]) for r in rows] == [("cartilage-regrowth", "promoted", "es")]


def test_scan_table_format(files):
    html, _, _ = files
    result = run("scan", str(html))
    assert result.exit_code == 0
    assert "disease-cure" in result.output and "promoted" in result.output
    assert not result.output.lstrip().startswith("{")


def test_missing_file_is_named_and_others_still_scanned(files, tmp_path):
    html, _, _ = files
    missing = tmp_path / "gone.html"
    result = run("scan", "--format", "jsonl", str(missing), str(html))  # click >= 8.2 keeps stderr apart
    assert result.exit_code != 0
    assert str(missing) in result.stderr
    assert any(json.loads(x)["path"] == str(html) for x in result.stdout.splitlines() if x.startswith("{"))


def test_unsupported_file_type_is_an_error(tmp_path):
    doc = tmp_path / "brochure.docx"
    doc.write_bytes(b"PK\x03\x04")
    results = list(scan_paths([doc]))
    assert results[0][1] is None and "unsupported" in results[0][2]


def test_folder_is_scanned(files, tmp_path):
    results = {p: (a, e) for p, a, e in scan_paths([tmp_path])}
    assert set(results) == {str(f) for f in files}
    assert all(e is None for _, e in results.values())


def test_help_ends_with_example():
    for command in ("scan", "eval"):
        out = run(command, "--help").output
        assert "Example: stemwatch " + command in out


def test_eval_command(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "x1", "url": "https://example.org/", "lang": "en", "page_kind": "clinic",
                                  "text": "Our stem cells cure autism. Book now.", "promoted": ["disease-cure"],
                                  "mentioned": [], "disputed": []}) + "\n", encoding="utf-8")
    result = run("eval", str(corpus), "--show-errors")
    assert result.exit_code == 0, result.output
    assert "micro" in result.output and "baseline" in result.output
    assert "Passages wrong (0)" in result.output


def test_eval_missing_corpus_is_a_click_error(tmp_path):
    result = run("eval", str(tmp_path / "none.jsonl"))
    assert result.exit_code != 0
    assert "none.jsonl" in result.output


def test_two_workers_give_the_same_records_in_the_same_order(files, tmp_path):
    for i in range(6):  # the process-pool path must keep order and errors exactly as one process does
        (tmp_path / f"extra{i}.txt").write_text(
            f"Clinic {i}: our stem cell therapy reverses autism and regrows cartilage.\n", encoding="utf-8")
    args = ["scan", str(tmp_path), str(tmp_path / "missing.html"), "--format", "jsonl"]
    one, two = run(*args), run(*args, "--workers", "2")
    assert one.exit_code == two.exit_code == 1
    assert one.output == two.output
    assert one.output.count('"category"') > 6


@pytest.mark.parametrize("name, data", [
    ("latin1.txt", "Nuestras células madre curan el autismo.".encode("latin-1")),
    ("declared.html", ('<html><head><meta charset="windows-1252"></head><body><p>Nuestras células madre '
                       "curan el autismo.</p></body></html>").encode("cp1252")),
    ("bom.txt", "\ufeffNuestras células madre curan el autismo.".encode("utf-8")),
])
def test_scan_decodes_files_as_the_crawler_decodes_responses(tmp_path, name, data):
    """A Latin-1 file read as UTF-8 turned "células" into "c\ufffdlulas" and its claims
    vanished; files now go through the crawler's decoding (BOM, declared charset, UTF-8,
    detection, Windows-1252)."""
    path = tmp_path / name
    path.write_bytes(data)
    rows = [json.loads(x) for x in run("scan", "--format", "jsonl", str(path)).output.splitlines()]
    assert [(r["category"], r["text"], r["lang"]) for r in rows] == [("disease-cure", "curan el autismo", "es")]
    assert rows[0]["sentence"] == "Nuestras células madre curan el autismo."
