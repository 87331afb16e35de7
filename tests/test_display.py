"""Hostile page text shown safely: terminal escapes and bidirectional overrides made
visible wherever text is shown, and CSV cells that a spreadsheet would run as formulas
neutralised. Stored text stays what the page said."""

from __future__ import annotations

import csv
import json
import zipfile

import pytest
from click.testing import CliRunner
from history_helpers import claim, crawl_with

from analysis.cli import cli
from analysis.display import spreadsheet_safe, spreadsheet_safe_text, visible
from analysis.store.database import Store
from analysis.web.plugin import highlight

ESC_LINK = "Stem cells \x1b]8;;https://evil.example/\x07cure\x1b]8;;\x07 autism"
TITLE = "\x1b]0;pwned\x07Our therapy regrows cartilage"
RLO = "Our therapy is \u202eevorppa ADF\u202c today"

# (text, what is shown)
VISIBLE = [
    ("plain text, é and ñ\nline two\tcell", "plain text, é and ñ\nline two\tcell"),
    ("a\x1b[31mred\x1b[0m", "a\u241b[31mred\u241b[0m"),
    (RLO, "Our therapy is [RLO]evorppa ADF[PDF] today"),
    ("isolate \u2067x\u2069", "isolate [RLI]x[PDI]"),
    ("del\x7f and c1 \x9b", "del\u2421 and c1 \ufffd"),
    ("", ""),
]


@pytest.mark.parametrize("text,shown", VISIBLE)
def test_visible(text, shown):
    assert visible(text) == shown


# (cell, as written to CSV)
CELLS = [
    ("=HYPERLINK(\"https://evil.example\",\"click\")", "'=HYPERLINK(\"https://evil.example\",\"click\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("Stem cells = hope", "Stem cells = hope"),
    (42, 42),
    (None, None),
]


@pytest.mark.parametrize("cell,written", CELLS)
def test_spreadsheet_safe(cell, written):
    assert spreadsheet_safe(cell) == written


# (a cell read back from CSV text, as written again): a negative number stays a number
TEXT_CELLS = [
    ("=1+1", "'=1+1"), ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("@SUM(1)", "'@SUM(1)"),
    ("-3", "-3"), ("-2.5", "-2.5"), ("-1e-05", "-1e-05"), ("-1.5e+20", "-1.5e+20"),
    ("-3 days", "'-3 days"), ("-inf", "'-inf"), ("-", "'-"), ("-\u0663", "'-\u0663"),
    ("a = b", "a = b"), ("", ""),
]


@pytest.mark.parametrize("cell,written", TEXT_CELLS)
def test_spreadsheet_safe_text(cell, written):
    assert spreadsheet_safe_text(cell) == written


@pytest.fixture
def hostile_db(tmp_path):
    path = tmp_path / "h.db"
    with Store(path) as store:
        crawl_with(store, {"/": []}, on=1)
        crawl_with(store, {"/": [claim("disease-cure", ESC_LINK), claim("cartilage-regrowth", TITLE),
                                 claim("regulatory-misrepresentation", RLO),
                                 claim("miracle-guarantee", "=HYPERLINK(\"https://evil.example\") miracle")]}, on=2)
    return path


def test_changes_and_review_show_no_escape_sequence(hostile_db):
    result = CliRunner().invoke(cli, ["changes", "--db", str(hostile_db)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    assert "\u241b]8;;https://evil.example/\u2407cure" in result.output and "[RLO]" in result.output
    with Store(hostile_db) as store:
        cid = store.db.execute("select id from claims where category = 'cartilage-regrowth'").fetchone()[0]
        stored = store.db.execute("select sentence from claims where id = ?", [cid]).fetchone()[0]
    assert stored == TITLE  # the evidence keeps what the page said
    result = CliRunner().invoke(cli, ["review", str(cid), "--verdict", "confirmed", "--by", "ana",
                                      "--db", str(hostile_db)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u241b]0;pwned\u2407Our therapy" in result.output


def test_csv_output_and_export_neutralise_formulas(hostile_db, tmp_path):
    result = CliRunner().invoke(cli, ["changes", "--db", str(hostile_db), "--format", "csv"])
    rows = list(csv.DictReader(result.output.splitlines()))
    assert any(r["sentence"].startswith("'=HYPERLINK") for r in rows)
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values() if v)
    out = tmp_path / "bundle.zip"
    result = CliRunner().invoke(cli, ["export", "--out", str(out), "--db", str(hostile_db), "--site", "clinic.example",
                                      "--unsigned", "--no-browser"])
    assert result.exit_code == 0, result.output
    bundle = zipfile.ZipFile(out)
    cells = [v for r in csv.DictReader(bundle.read("claims.csv").decode().splitlines()) for v in r.values() if v]
    assert any(v.startswith("'=HYPERLINK") for v in cells) and not any(v.startswith("=") for v in cells)
    quotes = [json.loads(line)["quote"] for line in bundle.read("claims.jsonl").decode().splitlines()]
    assert RLO in quotes  # the machine-readable record keeps the page's characters
    report = bundle.read("report.html").decode()
    assert "\u202e" not in report and "[RLO]evorppa ADF" in report


def test_datasette_highlight_shows_overrides():
    shown = highlight(RLO, "evorppa ADF")
    assert "\u202e" not in shown and "[RLO]<mark>evorppa ADF</mark>" in shown
