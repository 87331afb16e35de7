"""stemwatch import: web archives (WARC, WARC.gz, WACZ) into the store with their
capture dates, so a site's history reaches back years. Archives written here by
warcio, by the wacz package and by real wget against a local server; the real
detector finds the claims."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from servers import Site, html, ok, tiny_pdf
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from analysis.cli import cli
from analysis.importer import import_archives
from analysis.models import PageAnalysis
from analysis.store import queue
from analysis.store.database import Store
from conftest import REPO, STEMWATCH

HOME = "https://www.harbor-clinic.example.org/"
ABOUT = "https://www.harbor-clinic.example.org/about"
AUTISM = "Our stem cell therapy cures autism in most children."
WELCOME = "Welcome to the Harbor Clinic. Our team offers physiotherapy and sports medicine."


class Archive:
    """A WARC written record by record with warcio, remembering where each record starts."""

    def __init__(self, path: Path, gzip: bool = True):
        self.path = path
        self.out = open(path, "wb")
        self.writer = WARCWriter(self.out, gzip=gzip, warc_version="1.0")
        self.offsets: list[int] = []

    def _write(self, record):
        self.offsets.append(self.out.tell())
        self.writer.write_record(record)
        return record.rec_headers.get_header("WARC-Record-ID")

    def warcinfo(self):
        return self._write(self.writer.create_warcinfo_record(self.path.name, {"software": "test archive"}))

    def response(self, url: str, body: bytes, date: str, *, status: str = "200 OK",
                 ctype: str = "text/html; charset=utf-8", headers: tuple = ()):
        http = StatusAndHeaders(status, [("Content-Type", ctype), *headers], protocol="HTTP/1.1")
        return self._write(self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body), http_headers=http,
            warc_headers_dict={"WARC-Date": date}))

    def request(self, url: str, date: str):
        http = StatusAndHeaders("GET / HTTP/1.1", [("Host", "www.harbor-clinic.example.org")], is_http_request=True)
        return self._write(self.writer.create_warc_record(url, "request", payload=io.BytesIO(b""), length=0,
                                                          http_headers=http, warc_headers_dict={"WARC-Date": date}))

    def revisit(self, url: str, date: str, refers_to_date: str):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        return self._write(self.writer.create_revisit_record(
            url, "sha1:AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH", url, refers_to_date, http_headers=http,
            warc_headers_dict={"WARC-Date": date}))

    def close(self) -> Path:
        self.out.close()
        return self.path


def page(title: str, *paragraphs: str) -> bytes:
    return html(title, "".join(f"<p>{p}</p>" for p in paragraphs))


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])) + b"0\r\n\r\n"


def make_wacz(warc: Path, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "wacz", "create", "-o", str(out), str(warc)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Three captures of one clinic, years apart: 2018 without the claim, 2021 with it,
    2024 without it again (as a WACZ)."""
    folder = tmp_path_factory.mktemp("archives")
    a2018 = Archive(folder / "2018.warc.gz")
    a2018.warcinfo()
    a2018.request(HOME, "2018-03-01T09:00:00Z")
    a2018.response(HOME, page("Harbor Clinic", WELCOME), "2018-03-01T09:00:00Z")
    a2018.response(ABOUT, page("About us", "Founded in 1998."), "2018-03-01T09:00:05Z")
    a2018.response("https://www.harbor-clinic.example.org/logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
                   "2018-03-01T09:00:06Z", ctype="image/png")
    a2018.close()

    # uncompressed, the home page gzip-encoded and chunked as served, a revisit of /about
    a2021 = Archive(folder / "2021.warc", gzip=False)
    a2021.warcinfo()
    a2021.request(HOME, "2021-06-15T14:30:00Z")
    a2021.response(HOME, chunked(gzip.compress(page("Harbor Clinic", WELCOME, AUTISM))), "2021-06-15T14:30:00Z",
                   headers=(("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("Server", "nginx")))
    a2021.revisit(ABOUT, "2021-06-15T14:30:04Z", "2018-03-01T09:00:05Z")
    a2021.response("https://www.harbor-clinic.example.org/prices.pdf", tiny_pdf(
        "Stem cell injections regrow cartilage in arthritic knees."), "2021-06-15T14:30:07Z",
        ctype="application/pdf")
    a2021.close()

    w2024 = Archive(folder / "2024.warc.gz")
    w2024.warcinfo()
    w2024.response(HOME, page("Harbor Clinic", WELCOME), "2024-09-02T08:00:00Z")
    w2024.response("https://www.harbor-clinic.example.org/prices.pdf", html("Not found"), "2024-09-02T08:00:03Z",
                   status="404 Not Found")
    make_wacz(w2024.close(), folder / "2024.wacz")
    return folder


def import_cli(*args: str):
    """`stemwatch import` in this process, with one detector process (this one)."""
    return CliRunner().invoke(cli, ["import", *args, "--workers", "1"])


def rows(db: Path, sql: str, params=()) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_archives_imported_out_of_order_give_the_history_in_date_order(archives, tmp_path):
    db = tmp_path / "clinics.db"
    # a crawl of today is recorded first; the archives are imported after it, newest first
    with Store(db) as store:
        crawl = store.start_crawl([{"url": HOME}])
        [pid] = store.add_pages([{"crawl_id": crawl, "site": "example.org", "url": HOME, "status": 200,
                                  "fetched_at": "2026-11-20T10:00:00Z", "text": WELCOME,
                                  "body": page("Harbor Clinic", WELCOME)}])
        store.add_analyses([(pid, PageAnalysis(detector_version="v1"))])
        store.finish_crawl(crawl, "finished")
    # newest first, then the middle one: by crawl id 2018 would follow 2021, and 2021 come after 2024
    for name in ("2024.wacz", "2021.warc", "2018.warc.gz"):
        result = import_cli(str(archives / name), "--db", str(db))
        assert result.exit_code == 0, result.output

    pages = rows(db, "select url, fetched_at, status, error, title, crawl_id, warc_file from pages order by fetched_at")
    assert [(p["url"], p["fetched_at"]) for p in pages] == [
        (HOME, "2018-03-01T09:00:00Z"), (ABOUT, "2018-03-01T09:00:05Z"),
        (HOME, "2021-06-15T14:30:00Z"), ("https://www.harbor-clinic.example.org/prices.pdf", "2021-06-15T14:30:07Z"),
        (HOME, "2024-09-02T08:00:00Z"), ("https://www.harbor-clinic.example.org/prices.pdf", "2024-09-02T08:00:03Z"),
        (HOME, "2026-11-20T10:00:00Z")]
    assert pages[5]["status"] == 404 and pages[5]["error"] == "HTTP 404"
    assert pages[4]["warc_file"] == "archive/2024.warc.gz"  # the WARC inside the WACZ
    # one crawl record per archive and capture day, spanning its captures
    crawls = rows(db, "select id, started_at, finished_at, status, pages, settings from crawls order by id")
    assert [(c["started_at"], c["finished_at"], c["status"], c["pages"]) for c in crawls[1:]] == [
        ("2024-09-02T08:00:00Z", "2024-09-02T08:00:03Z", "finished", 2),
        ("2021-06-15T14:30:00Z", "2021-06-15T14:30:07Z", "finished", 2),
        ("2018-03-01T09:00:00Z", "2018-03-01T09:00:05Z", "finished", 2)]
    assert json.loads(crawls[1]["settings"])["imported_from"] == str(archives / "2024.wacz")

    # the claims: read from the gzip-encoded, chunked home page and from the PDF
    claims = {(c["url"], c["category"], c["stance"]) for c in rows(db, "select * from claims")}
    assert (HOME, "disease-cure", "promoted") in claims
    assert ("https://www.harbor-clinic.example.org/prices.pdf", "cartilage-regrowth", "promoted") in claims
    [autism] = [r for r in rows(db, "select * from claim_status where category = 'disease-cure'")]
    assert (autism["first_seen_at"], autism["last_seen_at"], autism["removed_observed_at"], autism["present"]) == \
        ("2021-06-15T14:30:00Z", "2021-06-15T14:30:00Z", "2024-09-02T08:00:00Z", 0)

    changes = CliRunner().invoke(cli, ["changes", "--since", "0", "--site", "example.org", "--db", str(db),
                                       "--format", "json"])
    assert changes.exit_code == 0, changes.output
    home = [(r["change"], r["category"], r["previous_observed_at"], r["observed_at"])
            for r in json.loads(changes.output) if r["url"] == HOME]
    assert home == [("new", "disease-cure", "2018-03-01T09:00:00Z", "2021-06-15T14:30:00Z"),
                    ("new", "unsupported-efficacy", "2018-03-01T09:00:00Z", "2021-06-15T14:30:00Z"),
                    ("removed", "disease-cure", "2021-06-15T14:30:00Z", "2024-09-02T08:00:00Z"),
                    ("removed", "unsupported-efficacy", "2021-06-15T14:30:00Z", "2024-09-02T08:00:00Z")]
    text = CliRunner().invoke(cli, ["changes", "--since", "0", "--db", str(db)]).output
    assert f'+ new      disease-cure/promoted: "{AUTISM}"' in text
    assert "present on 2021-06-15 14:30 UTC (crawl 3), absent on 2024-09-02 08:00 UTC (crawl 2)" in text
    assert text.index("seen on 2021-06-15") < text.index("absent on 2024-09-02")
    # the site's latest crawl is still today's, not the archive imported last
    latest = CliRunner().invoke(cli, ["changes", "--db", str(db)]).output
    assert latest.strip() == "No new or removed claims."

    # the claim pages' sightings follow the same order, and the review queue holds the claims
    # of each site's latest capture (today's crawl: none), not of the archive imported last
    db_ = sqlite_utils.Database(db)
    columns = ("first_seen_crawl", "first_seen_at", "last_seen_crawl", "last_seen_at", "crawls_seen", "present",
               "removed_in_crawl", "removed_observed_at", "removed_reason")
    for row in rows(db, "select * from claim_status"):
        assert queue.sightings(db_, row["claim_key"]) == {c: row[c] for c in columns}
    assert queue.queue_leaders(db_, queue.QueueFilter()) == []
    db_.close()

    # every imported page agrees with its archive record, inside the WACZ too
    verify = CliRunner().invoke(cli, ["verify", "--db", str(db)])
    assert verify.exit_code == 0, verify.output
    assert "pages checked against their WARC capture: 6 (1 from crawls without capture)" in verify.output

    # and the evidence bundle copies their records from the archives: the uncompressed
    # .warc's as gzip members, so its WARC stays valid
    bundle = tmp_path / "b.zip"
    export = CliRunner().invoke(cli, ["export", "--db", str(db), "--crawl", "3", "--out", str(bundle),
                                      "--unsigned", "--no-browser"])
    assert export.exit_code == 0, export.output
    checked = CliRunner().invoke(cli, ["verify", str(bundle)]).output
    assert "quotes checked against their captured pages: 3" in checked and "FAILED evidence.wacz" not in checked

    # importing everything again adds nothing
    before = rows(db, "select (select count(*) from pages) p, (select count(*) from claims) c, "
                      "(select count(*) from crawls) k")
    again = import_cli(str(archives), "--db", str(db))  # the folder: its .warc, .warc.gz and .wacz files
    assert again.exit_code == 0, again.output
    assert rows(db, "select (select count(*) from pages) p, (select count(*) from claims) c, "
                    "(select count(*) from crawls) k") == before
    assert "Read 4 archives: 16 records; 0 pages stored" in again.output  # 2024.warc.gz beside its WACZ
    assert "8 already imported" in again.output


def test_report_counts_what_was_skipped(archives, tmp_path):
    with Store(tmp_path / "a.db") as store:
        report = import_archives(store, [archives / "2018.warc.gz", archives / "2021.warc",
                                         archives / "2024.wacz"], detect=False)
    assert (report.records, report.pages, report.duplicates, report.errors) == (13, 6, 0, [])
    assert report.skipped == {"warcinfo record": 3, "request record": 2, "revisit record": 1,
                              "not a page: image/png": 1}
    assert [(f.path.rsplit("/", 1)[-1], f.records, f.pages) for f in report.files] == [
        ("2018.warc.gz", 5, 2), ("2021.warc", 5, 2), ("2024.wacz", 3, 2)]
    [home] = rows(tmp_path / "a.db", "select * from pages where fetched_at like '2021%' and url = ?", [HOME])
    assert AUTISM in home["text"] and home["title"] == "Harbor Clinic"
    assert json.loads(home["headers"]) == {"content-type": "text/html; charset=utf-8", "server": "nginx"}
    assert home["detector_version"] is None  # --no-detect: `reanalyze` reads them later
    assert rows(tmp_path / "a.db", "select domain, url from sites") == [
        {"domain": "example.org", "url": "https://www.harbor-clinic.example.org/"}]


def test_archive_written_by_wget(tmp_path):
    if shutil.which("wget") is None or "--warc-file" not in subprocess.run(
            ["wget", "--help"], capture_output=True, text=True).stdout:
        pytest.skip("needs GNU wget with --warc-file (Debian package wget)")
    routes = {
        "/": ok(html("Harbor Clinic", f"<p>{WELCOME}</p><p>{AUTISM}</p>",
                     links=["/knees", "/prices.pdf", "/logo.png"])),
        "/knees": ok(gzip.compress(html("Knees", "<p>Stem cell injections regrow cartilage in arthritic knees.</p>")),
                     **{"Content-Encoding": "gzip"}),
        "/prices.pdf": ok(tiny_pdf("Our stem cell treatment is FDA approved."), "application/pdf"),
        "/logo.png": ok(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"),
    }
    with Site(routes, robots="User-agent: *\nAllow: /\n") as site:
        done = subprocess.run(["wget", "-q", "-r", "-l", "2", "--warc-file", str(tmp_path / "site"),
                               "-P", str(tmp_path / "mirror"), site.url("/")], capture_output=True, timeout=60)
        assert done.returncode in (0, 8), done.stderr  # 8: some answer was an HTTP error
        base = site.base
    db = tmp_path / "w.db"
    result = import_cli(str(tmp_path / "site.warc.gz"), "--db", str(db))
    assert result.exit_code == 0, result.output
    pages = {p["url"].removeprefix(base): p for p in rows(db, "select * from pages")}
    assert set(pages) == {"/", "/knees", "/prices.pdf"}
    claims = {(c["url"].removeprefix(base), c["category"]) for c in rows(db, "select * from claims "
                                                                              "where stance = 'promoted'")}
    assert {("/", "disease-cure"), ("/knees", "cartilage-regrowth"),
            ("/prices.pdf", "regulatory-misrepresentation")} <= claims
    assert "robots.txt" in result.output and "not a page: image/png" in result.output
    assert "request record" in result.output and "resource record" in result.output  # wget's own log
    assert CliRunner().invoke(cli, ["verify", "--db", str(db)]).exit_code == 0


# -- damaged archives ------------------------------------------------------------------
def three_pages(path: Path, gzip: bool = True) -> Archive:
    archive = Archive(path, gzip=gzip)
    for i in range(3):
        archive.response(f"{HOME}p{i}", page(f"Page {i}", WELCOME, "x" * 3000 + str(i)), f"2019-01-0{i + 1}T10:00:00Z")
    archive.close()
    return archive


@pytest.mark.parametrize("gzipped", [True, False], ids=["warc.gz", "warc"])
def test_archive_cut_short_keeps_the_records_before_the_break(tmp_path, gzipped):
    archive = three_pages(tmp_path / ("cut.warc.gz" if gzipped else "cut.warc"), gzip=gzipped)
    data = archive.path.read_bytes()
    second = archive.offsets[1]
    archive.path.write_bytes(data[:second + (archive.offsets[2] - second) // 2])  # in the middle of record 2
    with Store(tmp_path / "a.db") as store:
        report = import_archives(store, [archive.path], detect=False)
    [error] = report.errors
    assert (error.file, error.offset, error.stopped) == (str(archive.path), second, True)
    assert f"{archive.path}, byte {second}: " in str(error)
    assert report.pages == 1 and not report.unreadable
    assert [p["url"] for p in rows(tmp_path / "a.db", "select url from pages")] == [f"{HOME}p0"]
    assert rows(tmp_path / "a.db", "select status from crawls") == [{"status": "damaged"}]


def test_garbage_is_reported_and_other_files_still_import(tmp_path):
    good = three_pages(tmp_path / "good.warc.gz")
    tail = tmp_path / "tail.warc.gz"  # whole records, then garbage
    tail.write_bytes(good.path.read_bytes()[:good.offsets[2]] + bytes(range(256)) * 8)
    garbage = tmp_path / "garbage.warc.gz"
    garbage.write_bytes(bytes(range(7, 256)) * 20)
    db = tmp_path / "g.db"

    result = import_cli(str(tail), "--db", str(db), "--no-detect")
    assert result.exit_code == 0, result.output  # two records read: the damage is reported, not fatal
    assert f"damaged: {tail}, byte {good.offsets[2]}: " in result.output

    result = import_cli(str(garbage), str(good.path), str(tmp_path / "missing.warc"), "--db", str(db), "--no-detect")
    assert result.exit_code == 1  # nothing could be read from two of them
    assert f"nothing could be read from {garbage}, byte 0: no WARC record starts here" in result.output
    assert f"{tmp_path / 'missing.warc'}: no such file" in result.output
    # the good file was imported anyway (its first two pages were already in from tail.warc.gz)
    assert "3 records, 1 stored, 2 already imported" in result.output
    assert len(rows(db, "select id from pages")) == 3


# -- batches, kills and re-runs -----------------------------------------------------------
def test_killed_import_keeps_its_batches_and_a_rerun_completes(tmp_path):
    archive = Archive(tmp_path / "big.warc.gz")
    for i in range(300):
        said = AUTISM if i % 2 else "We offer physiotherapy for knees and shoulders."
        archive.response(f"{HOME}page/{i}", page(f"Page {i}", WELCOME, said), f"2020-05-04T10:{i // 60:02d}:{i % 60:02d}Z")
    archive.close()
    db = tmp_path / "k.db"
    proc = subprocess.Popen([*STEMWATCH, "import", str(archive.path), "--db", str(db), "--workers", "1",
                             "--batch", "10"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    stored = rows(db, "select count(*) n from pages")[0]["n"]
                except sqlite3.DatabaseError:  # the file or its schema is still being made
                    stored = 0
                if stored:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    kept = rows(db, "select count(*) n, count(detector_version) analysed from pages")[0]
    assert 0 < kept["n"] < 300 and kept["n"] % 10 == 0  # whole batches only
    assert rows(db, "select status from crawls") == [{"status": "running"}]

    result = import_cli(str(archive.path), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert f"300 records, {300 - kept['n']} stored, {kept['n']} already imported" in result.output
    done = rows(db, "select count(*) n, count(distinct url) urls, count(detector_version) analysed from pages")[0]
    assert done == {"n": 300, "urls": 300, "analysed": 300}  # the pages the kill left unread were read too
    with_claim = rows(db, "select count(distinct page_id) n from claims where category = 'disease-cure'")[0]["n"]
    assert with_claim == 150
    assert rows(db, "select status, pages from crawls") == [{"status": "finished", "pages": 300}]


def test_a_page_captured_twice_in_a_day_is_two_observations(tmp_path):
    archive = Archive(tmp_path / "day.warc.gz")
    archive.response(HOME, page("Harbor Clinic", WELCOME, AUTISM), "2022-02-02T15:00:00Z")  # file order is
    archive.response(HOME, page("Harbor Clinic", WELCOME), "2022-02-02T09:00:00Z")  # not capture order
    archive.response(ABOUT, page("About us", "Founded in 1998."), "2022-02-02T09:00:01Z")
    archive.close()
    db = tmp_path / "d.db"
    assert import_cli(str(archive.path), "--db", str(db)).exit_code == 0
    crawls = rows(db, "select id, started_at, pages, json_extract(settings, '$.round') round from crawls")
    # the day's second record holds the home page's second capture in file order, the earlier one:
    # history goes by capture time, not by crawl id
    assert [(c["round"], c["started_at"], c["pages"]) for c in crawls] == [
        (1, "2022-02-02T09:00:01Z", 2), (2, "2022-02-02T09:00:00Z", 1)]
    [row] = [r for r in json.loads(CliRunner().invoke(cli, ["changes", "--since", "0", "--db", str(db), "--format",
                                                             "json"]).output) if r["category"] == "disease-cure"]
    assert (row["change"], row["previous_observed_at"], row["observed_at"]) == \
        ("new", "2022-02-02T09:00:00Z", "2022-02-02T15:00:00Z")


def test_capture_dates_and_what_is_no_page():
    from analysis.importer import capture_time, skip_reason

    assert capture_time("2021-06-15T14:30:00Z") == "2021-06-15T14:30:00Z"
    assert capture_time("2021-06-15T14:30:00.123456Z") == "2021-06-15T14:30:00Z"
    assert capture_time("2021-06-15T16:30:00+02:00") == "2021-06-15T14:30:00Z"
    assert capture_time("yesterday") is None and capture_time(None) is None
    assert skip_reason(HOME, 200, "text/html; charset=utf-8", None) is None
    assert skip_reason(HOME, 404, "text/html", None) is None  # kept: the page is gone
    assert skip_reason(HOME + "robots.txt", 200, "text/plain", None) == "robots.txt"
    assert skip_reason(HOME, 301, "text/html", None) == "redirect"
    assert skip_reason(HOME, 206, "text/html", None) == "HTTP 206"
    assert skip_reason(HOME, 200, "image/jpeg", None) == "not a page: image/jpeg"
    assert skip_reason(HOME, 200, "application/xhtml+xml", "length") == "truncated by the archiving crawler (length)"
