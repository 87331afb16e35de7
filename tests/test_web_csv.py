"""Datasette's own CSV of a stemwatch database: no cell starts a spreadsheet formula.

The rewriter alone, fed with chunk boundaries inside quoted cells, and a real
`datasette FILE` process fetched over HTTP: tables, streamed tables, views, SQL and
canned queries as CSV, beside the JSON and HTML they must leave alone.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from history_helpers import claim, crawl_with

from analysis.display import spreadsheet_safe_text
from analysis.store.database import Store
from analysis.web.csvsafe import CsvRewriter, safe_record
from analysis.web.plugin import csv_charset
from conftest import REPO, free_port, wait_for_http


def rewrite(chunks) -> bytes:
    rewriter = CsvRewriter()
    return b"".join(rewriter.feed(c) for c in chunks) + rewriter.close()


# (CSV as Datasette writes it, as it must come out)
RECORDS = [
    ("id,sentence\r\n", "id,sentence\r\n"),
    ('1,"=HYPERLINK(""http://evil.example"")"\r\n', '1,"\'=HYPERLINK(""http://evil.example"")"\r\n'),
    ("2,+cmd|' /C calc'!A0\r\n", "2,'+cmd|' /C calc'!A0\r\n"),
    ("3,-2+3\r\n", "3,'-2+3\r\n"),
    ("4,@SUM(1)\r\n", "4,'@SUM(1)\r\n"),
    ("5,\tafter a tab\r\n", "5,'\tafter a tab\r\n"),
    ('6,"\rafter a carriage return"\r\n', '6,"\'\rafter a carriage return"\r\n'),
    # a formula with a newline, commas and quotes in it: the whole cell stays one cell
    ('7,"=1+1, said ""she"",\nthen, ""again""",x\r\n', '7,"\'=1+1, said ""she"",\nthen, ""again""",x\r\n'),
    ('=first,"-2+3\r\nline"\r\n', '\'=first,"\'-2+3\r\nline"\r\n'),
    # near misses: untouched, byte for byte
    ('8,"Stem cells = hope, ""=cure"",\n-2+3 on the next line"\r\n',
     '8,"Stem cells = hope, ""=cure"",\n-2+3 on the next line"\r\n'),
    ("9,a=b,2026-11-02,c-d\r\n", "9,a=b,2026-11-02,c-d\r\n"),
    ('10,"a,""=x"""\r\n', '10,"a,""=x"""\r\n'),
    ("11,,\r\n", "11,,\r\n"),
    ('""\r\n', '""\r\n'),
    ("\r\n", "\r\n"),
    # negative numbers stay numbers; anything more after a minus does not
    ("-3,-2.5,-1e-05,-1.5e+20\r\n", "-3,-2.5,-1e-05,-1.5e+20\r\n"),
    ("-3 days,-inf,--3,-3e,-\r\n", "'-3 days,'-inf,'--3,'-3e,'-\r\n"),
    ("12,é=ñ,=é\r\n", "12,é=ñ,'=é\r\n"),
    # the last record of a stream without a line end, and Datasette's error text after a row
    ("13,=x", "13,'=x"),
    # (not CSV: read as a spreadsheet would, and written as CSV)
    ('=CSV contains "more" than 1 bytes', '"\'=CSV contains ""more"" than 1 bytes"'),
    ("ok\r=x\r\n", "ok\r\n'=x\r\n"),
]
STREAM = "".join(raw for raw, _ in RECORDS[:-3]).encode()
EXPECTED = "".join(out for _, out in RECORDS[:-3]).encode()


@pytest.mark.parametrize("raw,expected", RECORDS)
def test_safe_record(raw, expected):
    assert safe_record(raw) == expected


@pytest.mark.parametrize("raw,expected", RECORDS)
def test_a_record_split_anywhere(raw, expected):
    data = raw.encode()
    for cut in range(len(data) + 1):
        assert rewrite([data[:cut], data[cut:]]) == expected.encode(), cut


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_a_stream_in_chunks(size):
    chunks = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert rewrite(chunks) == EXPECTED


def test_a_cell_longer_than_the_csv_modules_limit():
    page_text = "Our stem cells, " * 20_000  # 320,000 characters in one cell
    raw = f'1,"{page_text}",=x\r\n'
    limit = csv.field_size_limit()
    assert safe_record(raw) == f'1,"{page_text}",\'=x\r\n'
    assert csv.field_size_limit() == limit


def test_each_record_goes_out_when_its_line_ends():
    """Nothing but the unfinished record is held back: memory stays bounded on a stream."""
    rewriter = CsvRewriter()
    assert rewriter.feed(b'1,"=a\nb",c\r\n2,"=still') == b'1,"\'=a\nb",c\r\n'
    assert rewriter.feed(b' open\r\n') == b""
    assert rewriter.feed(b'",end\r\n3,x') == b'2,"\'=still open\r\n",end\r\n'
    assert rewriter.close() == b"3,x"


CELL = st.one_of(
    st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('=+-@\t\r\n,"\' aé1.e'), max_size=8), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=6), cuts=st.lists(st.integers(0, 400)))
def test_any_csv_in_any_chunks(rows, cuts):
    """Whatever csv.writer wrote, cut anywhere: what comes out is that CSV with each text
    cell through spreadsheet_safe_text, and nothing else changed."""
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    data = out.getvalue().encode()
    edges = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    result = rewrite([data[a:b] for a, b in zip(edges, edges[1:])])
    read = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    expected = io.StringIO(newline="")
    csv.writer(expected).writerows([[spreadsheet_safe_text(c) for c in row] for row in read])
    assert result.decode() == expected.getvalue()


# (content-type, path, charset of a CSV or None)
RESPONSES = [
    ("text/csv; charset=utf-8", "/clinics/claims.csv", "utf-8"),  # _dl=1
    ("text/plain; charset=utf-8", "/clinics/claims.csv", "utf-8"),  # shown in the browser
    ("text/plain; charset=utf-8", "/clinics.csv", "utf-8"),
    ('Text/CSV; Charset="latin-1"', "/clinics/claims.csv", "latin-1"),
    ("text/csv", "/files/claims.csv", "utf-8"),
    ("text/plain; charset=utf-8", "/-/versions", None),  # a refusal, a 405
    ("text/html; charset=utf-8", "/clinics/claims.csv", None),  # ?_trace=1 and error pages
    ("application/json; charset=utf-8", "/clinics/claims.json", None),
    ("", "/clinics/claims.csv", None),
]


@pytest.mark.parametrize("content_type,path,charset", RESPONSES)
def test_which_responses_are_csv(content_type, path, charset):
    assert csv_charset(content_type, path) == charset


# -- a real Datasette ----------------------------------------------------------------

HOSTILE = [
    '=HYPERLINK("http://evil.example") stem cells cure',
    "+cmd|' /C calc'!A0 regrows cartilage",
    "-2+3 and a guaranteed recovery",
    "@SUM(1) reverses autism",
    "\tafter a tab, stem cells heal",
    '=1+1, said "the doctor",\nthen, "again" on a new line',
]
ORDINARY = [
    'Our clinic says "no rejection", ever,\nand "FDA approved", twice',
    "Stem cells = hope for 2026-11-02 patients",
]
PAGES, PER_PAGE = 30, 120  # 3,600 claims: a streamed CSV of four of Datasette's pages


def _starts_formula(value) -> bool:
    return isinstance(value, str) and value != spreadsheet_safe_text(value)


def _build(path: Path):
    sentences = HOSTILE + ORDINARY
    with Store(path) as store:
        pages = {}
        for p in range(PAGES):
            pages[f"/treatments/{p}/"] = [
                claim("disease-cure", f"{sentences[(p * PER_PAGE + i) % len(sentences)]} #{p}.{i}")
                for i in range(PER_PAGE)]
        crawl_with(store, pages, on=1, site="renewal-clinic.example.org")


@pytest.fixture(scope="module")
def datasette(tmp_path_factory):
    """Plain `datasette FILE`: the plugin is loaded by its entry point, not by stemwatch serve."""
    path = tmp_path_factory.mktemp("csv") / "clinics.db"
    _build(path)
    port = free_port()
    exe = str(Path(sys.executable).with_name("datasette"))
    proc = subprocess.Popen([exe, str(path), "--port", str(port), "--crossdb"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        yield base, path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url, method="GET"):
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=60) as r:
        return r.status, r.headers, r.read()


def _csv(url) -> list[list[str]]:
    status, headers, body = _get(url)
    assert status == 200
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def _json_rows(url) -> tuple[list[str], list[list]]:
    """Every row of a JSON table or query, following Datasette's pages."""
    columns, rows = None, []
    while url:
        data = json.loads(_get(url)[2])
        columns = columns or data["columns"]
        rows += data["rows"]
        url = data.get("next_url")
    return columns, rows


def _as_written(value) -> str:
    return "" if value is None else str(value)


def assert_neutralised(csv_rows, columns, json_rows):
    """The CSV is the JSON's rows: a cell that would start a formula has one apostrophe
    more, every other cell is the JSON's value itself."""
    header, *body = csv_rows
    assert header == columns
    assert len(body) == len(json_rows)
    neutralised = 0
    for got, row in zip(body, json_rows):
        for cell, value in zip(got, row, strict=True):
            if _starts_formula(value):
                assert cell == "'" + value
                neutralised += 1
            else:
                assert cell == _as_written(value)
    return neutralised


def test_streamed_table_csv(datasette):
    base, path = datasette
    rows = _csv(f"{base}/clinics/claims.csv?_stream=on&_sort=id")
    columns, expected = _json_rows(f"{base}/clinics/claims.json?_sort=id&_size=max")
    count = sqlite3.connect(path).execute("select count(*) from claims").fetchone()[0]
    assert count == PAGES * PER_PAGE == len(expected) == len(rows) - 1
    assert rows[0][:3] == ["id", "page_id", "crawl_id"] and "sentence" in rows[0]
    # each hostile claim's sentence, and its text (the first word) but after a tab
    per_sentence = count // (len(HOSTILE) + len(ORDINARY))
    assert assert_neutralised(rows, columns, expected) == per_sentence * (2 * len(HOSTILE) - 1)
    sentence = rows[0].index("sentence")
    firsts = {r[sentence][:2] for r in rows[1:]}
    assert firsts == {"'=", "'+", "'-", "'@", "'\t", "Ou", "St"}
    assert any("\n" in r[sentence] and '"the doctor",' in r[sentence] for r in rows[1:])


def test_download_keeps_its_headers(datasette):
    base, _ = datasette
    status, headers, body = _get(f"{base}/clinics/claims.csv?_dl=1&_labels=on&_size=10")
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == 'attachment; filename="claims.csv"'
    assert "content-length" not in headers
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert "page_id_label" in rows[0] and len(rows) == 11
    sentence = rows[0].index("sentence")
    assert rows[1][sentence].startswith("'") or rows[1][sentence][:2] in {"Ou", "St"}


def test_json_and_html_are_as_stored(datasette):
    base, _ = datasette
    _, headers, body = _get(f"{base}/clinics/claims.json?_shape=array&_sort=id&_size=3")
    assert [r["sentence"] for r in json.loads(body)] == [f"{s} #0.{i}" for i, s in enumerate(HOSTILE[:3])]
    _, headers, html = _get(f"{base}/clinics/claims?_sort=id&_size=3")
    assert headers["content-type"].startswith("text/html")
    html = html.decode()
    assert "=HYPERLINK(&#34;http://evil.example&#34;)" in html
    assert "&#39;=HYPERLINK" not in html and "'=HYPERLINK" not in html


def test_sql_query_csv(datasette):
    base, _ = datasette
    sql = ("select id, sentence, -3 as negative, -2.5 as fraction, '-3' as minus_three_text, "
           "'-2+3' as sum from claims order by id limit 50")
    url = f"{base}/clinics.csv?" + urllib.parse.urlencode({"sql": sql})
    rows = _csv(url)
    columns, expected = _json_rows(f"{base}/clinics.json?" + urllib.parse.urlencode({"sql": sql}))
    assert assert_neutralised(rows, columns, expected) > 0
    # numbers, and text that is a negative number, stay what a spreadsheet reads as a number
    assert {tuple(r[2:]) for r in rows[1:]} == {("-3", "-2.5", "-3", "'-2+3")}


def test_view_and_canned_query_csv(datasette):
    base, _ = datasette
    rows = _csv(f"{base}/clinics/claim_status.csv?_stream=on&_sort=claim_id")
    columns, expected = _json_rows(f"{base}/clinics/claim_status.json?_size=max&_sort=claim_id")
    assert len(expected) == PAGES * PER_PAGE
    assert assert_neutralised(rows, columns, expected) > 0
    query = "category=&site="
    rows = _csv(f"{base}/clinics/claims_to_review.csv?{query}")
    columns, expected = _json_rows(f"{base}/clinics/claims_to_review.json?{query}")
    assert len(expected) > 100
    assert assert_neutralised(rows, columns, expected) > 0


def test_a_cross_database_query_is_neutralised(datasette):
    base, _ = datasette
    rows = _csv(f"{base}/_memory.csv?" + urllib.parse.urlencode(
        {"sql": "select sentence from clinics.claims order by id limit 1"}))
    assert rows == [["sentence"], ["'" + HOSTILE[0] + " #0.0"]]


def test_head_and_errors_are_left_alone(datasette):
    base, _ = datasette
    status, headers, body = _get(f"{base}/clinics/claims.csv?_stream=on", method="HEAD")
    assert status == 200 and body == b"" and headers["content-type"] == "text/plain; charset=utf-8"
    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(f"{base}/clinics/no_such_table.csv")
    assert missing.value.code == 404 and "Table not found" in missing.value.read().decode()


def test_a_datasette_without_stemwatch_is_left_alone(tmp_path):
    """The plugin is installed for every Datasette of the environment: one that serves no
    stemwatch database gets its CSV as Datasette writes it."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table notes (id integer primary key, note text)")
        conn.execute("insert into notes (note) values ('=1+1')")
    port = free_port()
    exe = str(Path(sys.executable).with_name("datasette"))
    proc = subprocess.Popen([exe, str(path), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        assert _csv(f"{base}/other/notes.csv") == [["id", "note"], ["1", "=1+1"]]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
