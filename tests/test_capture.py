"""Evidence captured at fetch time: a real crawl writes every request and
response to its WARC set as it happens; warcio's own tools read it; the
database and the captures agree, and `verify` says when they do not."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import subprocess
import sys
import zlib
from datetime import datetime

import pytest
from click.testing import CliRunner
from scrapy import Request
from scrapy.http import HtmlResponse
from warcio.archiveiterator import ArchiveIterator

from analysis.cli import cli
from analysis.evidence.warc import verify_captures
from analysis.store.database import Store
from crawler.capture import WarcSet
from tests.servers import Site, html, ok, pages, redirect, run_crawl_cli

CLAIM = "<p>Our stem cell therapy cures Parkinson's disease.</p>"
BIG = "<p>" + "Regenerative medicine explained at length. " * 400 + "</p>"


def routes():
    return {
        "/robots.txt": ok(b"User-agent: *\nDisallow: /private\n", "text/plain"),
        "/": ok(html("Regen Clinic", CLAIM, ["/zipped", "/moved", "/gone", "/video", "/long", "/private"])),
        # served compressed: the capture keeps the bytes as sent, the page the text as read
        "/zipped": ok(gzip.compress(html("Compressed page", "<p>Exosomes regrow cartilage.</p>")),
                      **{"Content-Encoding": "gzip"}),
        "/moved": redirect("/landing"),
        "/landing": ok(html("Landing")),
        "/gone": (404, {"Content-Type": "text/html"}, html("Not here")),
        "/video": ok(b"\0" * 50_000, "video/mp4"),
        "/long": ok(html("Long", BIG)),
    }


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capture")
    with Site(routes()) as site:
        db = tmp / "c.db"
        # a small rotation size: the set spans several files
        result = run_crawl_cli([site.url("/")], db, settings={"STEMWATCH_WARC_MAX_BYTES": 4000})
        assert result.returncode == 0, result.stderr
        yield site, db


def warc_files(db):
    return sorted((db.parent / (db.name + ".warc") / "crawl-1").glob("*.warc.gz"))


def records(path):
    with open(path, "rb") as f:
        return [(r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read()) for r in ArchiveIterator(f)]


def test_every_fetch_is_captured_with_its_request(crawled):
    site, db = crawled
    files = warc_files(db)
    assert len(files) > 1  # rotated by size
    everything = [r for f in files for r in records(f)]
    for f in files:  # every file opens with the crawl's warcinfo
        assert records(f)[0][0] == "warcinfo"
    responses = [r for r in everything if r[0] == "response"]
    requests = [r for r in everything if r[0] == "request"]
    urls = {r[1].get_header("WARC-Target-URI") for r in responses}
    for path in ("/", "/zipped", "/moved", "/landing", "/gone", "/video", "/robots.txt"):
        assert site.url(path) in urls, path
    assert site.url("/private") not in urls
    assert len(requests) == len(responses)
    by_id = {r[1].get_header("WARC-Record-ID"): r for r in responses}
    for req in requests:
        assert req[1].get_header("WARC-Concurrent-To") in by_id
        assert req[2].get_header("User-Agent").startswith("stemwatch/")
        assert req[2].get_header("Host") == site.url("/").split("/")[2]
    for resp in responses:
        assert resp[1].get_header("WARC-IP-Address") == "127.0.0.1"
        assert resp[1].get_header("WARC-Payload-Digest").startswith("sha256:")


def test_warcinfo_names_tool_user_agent_and_settings(crawled):
    _, db = crawled
    info = records(warc_files(db)[0])[0][3].decode()
    fields = dict(line.split(": ", 1) for line in info.strip().splitlines())
    assert fields["software"].startswith("stemwatch ")
    assert fields["http-header-user-agent"].startswith("stemwatch/")
    assert fields["robots"] == "obey"
    assert json.loads(fields["crawl-settings"])["STEMWATCH_ALLOW_HOSTS"] == ["127.0.0.1"]


def test_compressed_page_is_captured_as_sent(crawled):
    site, db = crawled
    row = pages(db, site.base)["/zipped"]
    everything = [r for f in warc_files(db) for r in records(f)]
    [resp] = [r for r in everything if r[0] == "response" and r[1].get_header("WARC-Target-URI") == site.url("/zipped")]
    assert resp[2].get_header("Content-Encoding") == "gzip"
    assert hashlib.sha256(resp[3]).hexdigest() == row["sha256"]  # decoded, it is the stored page
    with open(warc_files(db)[0].parent / row["warc_file"], "rb") as f:
        f.seek(row["warc_offset"])
        raw = zlib.decompress(f.read(row["warc_length"]), wbits=31)  # first gzip member: the response
    assert b"Content-Encoding: gzip" in raw and b"\x1f\x8b" in raw  # the body as it came off the wire


def test_third_party_tools_read_the_set(crawled):
    _, db = crawled
    warcio = [sys.executable, "-m", "warcio.cli"]
    for f in warc_files(db):
        check = subprocess.run([*warcio, "check", "-v", str(f)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "digest pass" in check.stdout and "fail" not in check.stdout
        index = subprocess.run([*warcio, "index", str(f)], capture_output=True, text=True)
        assert index.returncode == 0 and index.stdout.count("\n") == len(records(f))


def test_pages_point_at_their_captures_and_verify_agrees(crawled, tmp_path):
    site, db = crawled
    stored = pages(db, site.base)
    for path in ("/", "/zipped", "/gone", "/moved", "/long"):
        assert stored[path]["warc_record_id"], path
    assert stored["/private"]["warc_record_id"] is None  # refused by robots.txt: nothing fetched
    with Store(db) as store:
        report = verify_captures(store)
    assert report["problems"] == [] and report["checked"] >= 6
    result = CliRunner().invoke(cli, ["verify", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "pages checked against their WARC capture" in result.output


@pytest.mark.parametrize("edit, expected", [
    # a new body with a matching hash, as a forger would write it
    ("swap-body", "the stored page is not the captured one"),
    ("backdate", "fetched_at 2025-01-01T00:00:00Z stored"),
    ("record-id", "holds <urn:uuid:"),
])
def test_verify_catches_a_database_edited_by_hand(crawled, tmp_path, edit, expected):
    site, db = crawled
    copy = tmp_path / "c.db"
    subprocess.run(["sqlite3", str(db), f".backup {copy}"], check=True)
    (tmp_path / "c.db.warc").symlink_to(db.parent / "c.db.warc")
    conn = sqlite3.connect(copy)
    pid = conn.execute("select id from pages where url = ?", [site.url("/")]).fetchone()[0]
    if edit == "swap-body":
        body = html("Regen Clinic", "<p>We offer consultations.</p>")
        digest = hashlib.sha256(body).hexdigest()
        conn.execute("insert into snapshots (sha256, size, compression, body) values (?, ?, 'zlib', ?)",
                     [digest, len(body), zlib.compress(body)])
        conn.execute("update pages set sha256 = ? where id = ?", [digest, pid])
    elif edit == "backdate":
        conn.execute("update pages set fetched_at = '2025-01-01T00:00:00Z' where id = ?", [pid])
    else:
        conn.execute("update pages set warc_record_id = '<urn:uuid:0>' where id = ?", [pid])
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli, ["verify", "--db", str(copy)])
    assert result.exit_code == 1
    assert f"page {pid} ({site.url('/')}): " in result.output and expected in result.output


def test_a_resumed_set_starts_a_new_file_and_never_appends(tmp_path):
    request = Request("https://clinic.example.org/")
    response = HtmlResponse(request.url, body=b"<p>hello</p>", request=request)
    first = WarcSet(tmp_path, 7, 10_000_000, {"software": "stemwatch test"})
    ref1 = first.write(request, response, datetime(2026, 1, 2, 3, 4, 5))
    first.close()
    size = (tmp_path / ref1.file).stat().st_size
    second = WarcSet(tmp_path, 7, 10_000_000, {"software": "stemwatch test"})
    ref2 = second.write(request, response, datetime(2026, 1, 2, 3, 4, 6))
    second.close()
    assert (ref1.file, ref2.file) == ("crawl-7-00001.warc.gz", "crawl-7-00002.warc.gz")
    assert (tmp_path / ref1.file).stat().st_size == size
    assert ref1.date == "2026-01-02T03:04:05.000000Z"


def test_capture_can_be_switched_off(tmp_path):
    with Site({"/": ok(html("Clinic", CLAIM))}) as site:
        db = tmp_path / "off.db"
        result = run_crawl_cli([site.url("/")], db, settings={"STEMWATCH_WARC": "False"})
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "off.db.warc").exists()
    assert pages(db)["/"]["warc_record_id"] is None
    with Store(db) as store:
        assert verify_captures(store) == {"checked": 0, "problems": [], "uncaptured": 1}
