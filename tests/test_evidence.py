"""Evidence bundles: a real crawl captured at fetch time, exported as one signed
zip, read back by third-party tools (warcio, the wacz package, poppler) and
checked by `stemwatch verify`, which names each file that fails."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

from analysis.cli import cli
from analysis.evidence.signing import generate_key, sign
from analysis.models import Claim, PageAnalysis
from tests.servers import Site, html, ok, run_crawl_cli
from tests.test_timestamp import no_proxy_for_loopback, tsa  # noqa: F401  (fixtures: a local RFC 3161 authority)

REQUIRED = os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1"
CSS = b"body { background: rgb(10, 120, 200); color: white; } h1 { font-size: 40px; }"
CLAIM = "Our stem cell therapy cures autism in most children."
OTHER = "Our stem cell therapy reverses Parkinson disease without surgery."


def clinic():
    head = '<link rel="stylesheet" href="/assets/site.css">'
    return {
        "/robots.txt": ok(b"User-agent: *\nAllow: /\n", "text/plain"),
        "/": ok(html("Hope Cell Clinic", f"{head}<p>{CLAIM} Book your consultation today.</p>"
                     "<img src='/logo.png'>", ["/parkinsons"])),
        "/parkinsons": ok(html("Parkinsons treatment", f"{head}<p>{OTHER} Call our clinic today.</p>")),
        "/assets/site.css": ok(CSS, "text/css"),
        "/logo.png": ok(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"),
    }


def chromium_or_skip():
    if shutil.which(os.environ.get("STEMWATCH_CHROMIUM") or "chromium") or os.path.exists("/usr/bin/chromium"):
        return
    if REQUIRED:
        pytest.fail("Chromium is required (STEMWATCH_REQUIRE_BROWSER=1) but is not installed")
    pytest.skip("no Chromium to render screenshots and the PDF")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    chromium_or_skip()
    tmp = tmp_path_factory.mktemp("evidence")
    db = tmp / "clinics.db"
    with Site(clinic()) as site:
        seeds = tmp / "seeds.csv"
        seeds.write_text(f"url,name\n{site.url('/')},Hope Cell Clinic\n")
        result = run_crawl_cli([str(seeds)], db, "--page-resources", settings={"STEMWATCH_DETECT": "1"})
        assert result.returncode == 0, result.stderr
    key = generate_key(tmp / "keys" / "signing-key.pem")
    env = {"STEMWATCH_KEY": str(tmp / "keys" / "signing-key.pem"), "STEMWATCH_OPERATOR": "Consumer Desk"}
    bundle = tmp / "hope.zip"
    result = CliRunner(env=env).invoke(cli, ["export", "--db", str(db), "--site", "Hope Cell Clinic",
                                             "--out", str(bundle)])
    assert result.exit_code == 0, result.output
    yield {"db": db, "bundle": bundle, "key": key, "env": env, "tmp": tmp, "site": site}


def member(bundle, name) -> bytes:
    with zipfile.ZipFile(bundle) as z:
        return z.read(name)


def verify(*args):
    return CliRunner().invoke(cli, ["verify", *map(str, args)])


def test_the_bundle_holds_everything_listed_and_verifies(exported):
    bundle = exported["bundle"]
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"manifest.json", "manifest.json.sig", "signer.pub", "evidence.wacz", "claims.csv", "claims.jsonl",
            "report.html", "report.pdf", "screenshots/page-1.png", "screenshots/page-2.png"} <= names
    manifest = json.loads(member(bundle, "manifest.json"))
    assert {f["name"] for f in manifest["files"]} == names - {"manifest.json", "manifest.json.sig", "signer.pub"}
    assert manifest["operator"] == "Consumer Desk" and manifest["signer"] == exported["key"].fingerprint
    assert manifest["tool"].startswith("stemwatch ") and manifest["crawls"][0]["robots_obeyed"] is True
    assert manifest["crawls"][0]["user_agent"].startswith("stemwatch/")
    assert {c["quote"] for c in manifest["claims"]} >= {CLAIM, OTHER}
    assert all(p["capture"] == "at fetch time" and p["ip_address"] == "127.0.0.1" for p in manifest["pages"])
    result = verify(bundle)
    assert result.exit_code == 0, result.output
    assert exported["key"].fingerprint in result.output and "ok" in result.output.splitlines()[-1]
    assert verify(bundle, "--signer", exported["key"].fingerprint).exit_code == 0


def test_claims_files_carry_quote_capture_and_hash(exported):
    rows = list(csv.DictReader(io.StringIO(member(exported["bundle"], "claims.csv").decode("utf-8"))))
    [row] = [r for r in rows if r["quote"] == CLAIM and r["category"] == "disease-cure"]
    assert row["url"] == exported["site"].url("/") and row["http_status"] == "200"
    assert row["matched_text"] == "therapy cures autism" and row["why"] and len(row["page_sha256"]) == 64
    assert row["captured_at"].endswith("Z") and row["warc_record_id"].startswith("<urn:uuid:")
    jsonl = [json.loads(line) for line in member(exported["bundle"], "claims.jsonl").decode().splitlines()]
    assert {r["claim_id"] for r in jsonl} == {int(r["claim_id"]) for r in rows}


def test_third_party_readers_accept_the_archive(exported, tmp_path):
    wacz = tmp_path / "evidence.wacz"
    wacz.write_bytes(member(exported["bundle"], "evidence.wacz"))
    validate = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(wacz)],
                              capture_output=True, text=True)
    assert validate.returncode == 0 and "is valid" in validate.stdout, validate.stdout + validate.stderr
    warc = tmp_path / "evidence.warc.gz"
    warc.write_bytes(zipfile.ZipFile(wacz).read("archive/evidence.warc.gz"))
    check = subprocess.run([sys.executable, "-m", "warcio.cli", "check", "-v", str(warc)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "fail" not in check.stdout, check.stdout
    index = subprocess.run([sys.executable, "-m", "warcio.cli", "index", "-f",
                            "warc-type,warc-target-uri,http:status", str(warc)], capture_output=True, text=True)
    entries = [json.loads(line) for line in index.stdout.splitlines()]
    site = exported["site"]
    responses = {e["warc-target-uri"]: e["http:status"] for e in entries if e["warc-type"] == "response"}
    # the page, and the stylesheet it was seen with, both answered 200 when captured
    assert responses[site.url("/")] == "200" and responses[site.url("/assets/site.css")] == "200"
    assert sum(e["warc-type"] == "request" for e in entries) == len(responses)


def test_pywb_replays_the_page_with_its_stylesheet(exported, tmp_path):
    """pywb, a third-party replay tool (installed by `make test` in its own environment)."""
    wayback = os.environ.get("STEMWATCH_PYWB")
    if not wayback:
        pytest.skip("STEMWATCH_PYWB is not set (make test sets it)")
    from conftest import free_port, wait_for_http

    tools = os.path.dirname(wayback)
    wacz = tmp_path / "evidence.wacz"
    wacz.write_bytes(member(exported["bundle"], "evidence.wacz"))
    subprocess.run([f"{tools}/wb-manager", "init", "evidence"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([f"{tools}/wb-manager", "add", "--unpack-wacz", "evidence", str(wacz)], cwd=tmp_path,
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([wayback, "-p", str(port), "-b", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/evidence/id_/"
        wait_for_http(f"http://127.0.0.1:{port}/", proc=server)
        site = exported["site"]
        import urllib.request

        with urllib.request.urlopen(base + site.url("/")) as page:
            assert page.status == 200 and CLAIM.encode() in page.read()
        with urllib.request.urlopen(base + site.url("/assets/site.css")) as css:
            assert css.status == 200 and css.read() == CSS
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_report_pdf_has_the_summary_and_the_quotes(exported, tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(member(exported["bundle"], "report.pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    squashed = " ".join(text.split())
    assert "Summary" in squashed and "stem cell therapy cures autism in most children" in squashed
    assert "Consumer Desk" in squashed and exported["key"].fingerprint[:20] in squashed
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert int(next(line.split()[-1] for line in pages.splitlines() if line.startswith("Pages:"))) < 10


def test_the_screenshot_is_the_captured_page_with_its_stylesheet(exported):
    from tests.test_evidence_render import png_pixels  # the PNG reader of the render tests

    _, _, rows = png_pixels(member(exported["bundle"], "screenshots/page-1.png"))
    assert tuple(rows[5][5][:3]) == (10, 120, 200)


def _rewrite(bundle, out, change):
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]


@pytest.mark.parametrize("name", ["manifest.json", "claims.csv", "evidence.wacz", "screenshots/page-1.png",
                                  "report.pdf", "report.html", "manifest.json.sig"])
def test_one_changed_byte_in_any_member_fails_naming_it(exported, tmp_path, name):
    out = tmp_path / "changed.zip"
    _rewrite(exported["bundle"], out, lambda n, d: _flip(d) if n == name else d)
    result = verify(out)
    assert result.exit_code == 1
    named = {"manifest.json": "manifest.json.sig"}.get(name, name)  # a changed manifest breaks its signature
    assert f"FAILED {named}:" in result.output, result.output


def test_a_removed_or_added_file_is_named(exported, tmp_path):
    out = tmp_path / "removed.zip"
    _rewrite(exported["bundle"], out, lambda n, d: None if n == "claims.jsonl" else d)
    result = verify(out)
    assert result.exit_code == 1 and "FAILED claims.jsonl: listed in the manifest but missing" in result.output
    out = tmp_path / "added.zip"
    _rewrite(exported["bundle"], out, lambda n, d: d)
    with zipfile.ZipFile(out, "a") as z:
        z.writestr("screenshots/extra.png", b"x")
    result = verify(out)
    assert result.exit_code == 1 and "FAILED screenshots/extra.png: not listed" in result.output


def test_a_manifest_re_signed_by_another_key_fails_under_signer(exported, tmp_path):
    other = generate_key(tmp_path / "other.pem")
    manifest = json.loads(member(exported["bundle"], "manifest.json"))
    manifest["operator"] = "Someone Else"
    forged = json.dumps(manifest).encode()

    def change(name, data):
        return {"manifest.json": forged, "manifest.json.sig": base64.b64encode(sign(forged, other)),
                "signer.pub": other.public_pem}.get(name, data)

    out = tmp_path / "resigned.zip"
    _rewrite(exported["bundle"], out, change)
    alone = verify(out)
    assert alone.exit_code == 0 and other.fingerprint in alone.output  # consistent, but whose?
    trusted = verify(out, "--signer", exported["key"].fingerprint)
    assert trusted.exit_code == 1 and "FAILED signer.pub:" in trusted.output and other.fingerprint in trusted.output


def test_a_quote_not_in_its_captured_page_fails(exported, tmp_path):
    manifest = json.loads(member(exported["bundle"], "manifest.json"))
    manifest["claims"][0]["quote"] = "Our clinic guarantees a cure for every disease."
    forged = json.dumps(manifest).encode()
    out = tmp_path / "quote.zip"
    _rewrite(exported["bundle"], out, lambda n, d: {"manifest.json": forged}.get(n, d) if n != "manifest.json.sig"
             else base64.b64encode(sign(forged, exported["key"])))
    result = verify(out, "--signer", exported["key"].fingerprint)
    assert result.exit_code == 1
    assert f"claim {manifest['claims'][0]['claim_id']}: the quote is not in its captured page" in result.output


def test_an_existing_bundle_is_kept_without_force(exported):
    before = exported["bundle"].read_bytes()
    args = ["export", "--db", str(exported["db"]), "--site", "Hope Cell Clinic", "--out", str(exported["bundle"]),
            "--no-browser"]
    result = CliRunner(env=exported["env"]).invoke(cli, args)
    assert result.exit_code == 1 and "exists" in result.output and "--force" in result.output
    assert exported["bundle"].read_bytes() == before


@pytest.mark.parametrize("site", ["Hope Cell Clinic", "hope cell clinic", "{key}", "{base}/parkinsons"])
def test_site_by_name_domain_or_url(exported, tmp_path, site):
    out = tmp_path / "b.zip"
    base = exported["site"].base
    site = site.format(base=base, key=base.split("//")[1])  # an address's site key keeps its port
    result = CliRunner().invoke(cli, ["export", "--db", str(exported["db"]), "--site", site, "--out", str(out),
                                      "--unsigned", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert "claims from 2 pages" in result.output


@pytest.mark.parametrize("args, message", [
    (["--site", "nosuch.example.org"], "no site 'nosuch.example.org'"),
    (["--crawl", "99"], "no crawl 99"),
    (["--claim", "9999"], "no claim 9999"),
    (["--verdict", "confirmed"], "no claims match"),
])
def test_unknown_selections_are_named(exported, tmp_path, args, message):
    out = tmp_path / "b.zip"
    result = CliRunner().invoke(cli, ["export", "--db", str(exported["db"]), *args, "--out", str(out),
                                      "--unsigned", "--no-browser"])
    assert result.exit_code == 1 and message in result.output
    assert not out.exists()


def test_verdict_filter_and_reviewer_notes(exported, tmp_path):
    rows = list(csv.DictReader(io.StringIO(member(exported["bundle"], "claims.csv").decode())))
    cid = next(r["claim_id"] for r in rows if r["quote"] == CLAIM and r["category"] == "disease-cure")
    copy = tmp_path / "reviewed.db"
    subprocess.run(["sqlite3", str(exported["db"]), f".backup {copy}"], check=True)
    (tmp_path / "clinics.db.warc").symlink_to(exported["db"].parent / "clinics.db.warc")  # where crawls.warc_dir says
    review = CliRunner().invoke(cli, ["review", cid, "--verdict", "confirmed", "--by", "ana",
                                      "--note", "Seen on the home page", "--db", str(copy)])
    assert review.exit_code == 0, review.output
    out = tmp_path / "confirmed.zip"
    result = CliRunner().invoke(cli, ["export", "--db", str(copy), "--verdict", "confirmed", "--out", str(out),
                                      "--unsigned", "--no-browser"])
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(member(out, "claims.csv").decode())))
    assert row["claim_id"] == cid and (row["quote"], row["verdict"], row["verdict_by"], row["verdict_note"]) == \
        (CLAIM, "confirmed", "ana", "Seen on the home page")
    assert "Seen on the home page" in member(out, "report.html").decode()


def test_timestamped_by_a_local_authority(exported, tmp_path, tsa):  # noqa: F811
    out = tmp_path / "stamped.zip"
    result = CliRunner(env=exported["env"]).invoke(cli, [
        "export", "--db", str(exported["db"]), "--site", "Hope Cell Clinic", "--out", str(out), "--no-browser",
        "--tsa", tsa.url])
    assert result.exit_code == 0, result.output
    (tmp_path / "tsa.pem").write_bytes(tsa.cert)
    checked = verify(out, "--tsa-cert", tmp_path / "tsa.pem")
    assert checked.exit_code == 0, checked.output
    assert "timestamped: 20" in checked.output
    wrong = (tmp_path / "other.pem")
    wrong.write_bytes(tsa.other_cert)
    assert verify(out, "--tsa-cert", wrong).exit_code == 1


def test_a_failed_export_leaves_nothing_behind(exported, tmp_path):
    out = tmp_path / "failed.zip"
    result = CliRunner(env=exported["env"]).invoke(cli, [
        "export", "--db", str(exported["db"]), "--out", str(out), "--no-browser",
        "--tsa", "http://127.0.0.1:9/tsa"])  # nothing listens there: the last step fails
    assert result.exit_code == 1 and "127.0.0.1:9" in result.output
    assert list(tmp_path.iterdir()) == []


def test_pages_crawled_before_capture_are_rebuilt_and_say_so(fresh_db, db_path, tmp_path):
    body = b"<html><body><p>Our amniotic injection contains millions of live stem cells.</p></body></html>"
    crawl = fresh_db.start_crawl([{"url": "https://www.kneeclinic.example.org/", "name": "Knee Clinic"}])
    [pid] = fresh_db.add_pages([{
        "crawl_id": crawl, "site": "example.org", "url": "https://www.kneeclinic.example.org/amniotic/",
        "status": 200, "content_type": "text/html; charset=utf-8", "fetched_at": "2026-11-20T10:00:00Z",
        "title": "Amniotic", "text": "Our amniotic injection contains millions of live stem cells.", "body": body,
        "headers": {"content-type": "text/html; charset=utf-8"}}])
    sentence = "Our amniotic injection contains millions of live stem cells."
    claim = Claim("live-cells-in-processed-product", "promoted", "contains millions of live stem cells", sentence,
                  24, 60, "live-cells", "high", "Processed birth-tissue products hold no living stem cells.")
    fresh_db.add_analyses([(pid, PageAnalysis(page_kind="clinic", claims=[claim], detector_version="t"))])
    fresh_db.finish_crawl(crawl, "finished")
    out = tmp_path / "old.zip"
    result = CliRunner().invoke(cli, ["export", "--db", str(db_path), "--out", str(out), "--unsigned", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert "1 pages were crawled before capture" in result.output
    assert json.loads(member(out, "manifest.json"))["pages"][0]["capture"] == "rebuilt from the stored page"
    checked = verify(out)
    assert checked.exit_code == 1 and "the bundle is not signed" in checked.output  # unsigned: said, not hidden
    assert "quotes checked against their captured pages: 1" in checked.output
