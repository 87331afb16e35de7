"""Evidence bundles: archived copy, quotes, capture times and hashes that verify."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import zlib

from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from analysis.cli import cli
from analysis.models import Claim, PageAnalysis

BODY = (
    b"<html><body><h1>Knee clinic</h1><p>Our amniotic injection contains millions of live stem "
    b"cells.</p><p>Call today.</p></body></html>"
)
SENTENCE = "Our amniotic injection contains millions of live stem cells."


def _seed(store):
    crawl = store.start_crawl([{"url": "https://www.kneeclinic.example.org/", "name": "Knee Clinic"}])
    [pid] = store.add_pages([{
        "crawl_id": crawl, "site": "example.org", "url": "https://www.kneeclinic.example.org/amniotic/",
        "status": 200, "content_type": "text/html; charset=utf-8", "fetched_at": "2026-11-20T10:00:00Z",
        "title": "Amniotic", "text": "Knee clinic\n" + SENTENCE + "\nCall today.", "body": BODY,
        "headers": {"content-type": "text/html; charset=utf-8", "content-encoding": "gzip", "server": "x"},
    }])
    claims = [
        Claim("live-cells-in-processed-product", "promoted", "contains millions of live stem cells", SENTENCE,
              35, 71, "live-cells", "high", "Processed birth-tissue products hold no living stem cells."),
        Claim("disease-cure", "negated", "cure", "We do not cure anything.", 0, 4, "x", "low", ""),
    ]
    store.add_analyses([(pid, PageAnalysis(page_kind="clinic", claims=claims, detector_version="t"))])
    store.finish_crawl(crawl, "finished")


def test_export_bundle_verifies(fresh_db, db_path, tmp_path):
    _seed(fresh_db)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(cli, ["export", str(out), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "Exported 1 claims from 1 archived pages" in result.output

    # The WARC holds the exact bytes, with a SHA-256 payload digest, date and URL.
    with open(out / "evidence.warc.gz", "rb") as f:
        records = [(r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read()) for r in ArchiveIterator(f)]
    assert [r[0] for r in records] == ["warcinfo", "response"]
    _, headers, http, payload = records[1]
    assert payload == BODY
    assert headers.get_header("WARC-Target-URI") == "https://www.kneeclinic.example.org/amniotic/"
    assert headers.get_header("WARC-Date") == "2026-11-20T10:00:00Z"
    assert headers.get_header("WARC-Payload-Digest").startswith("sha256:")
    assert http.get_statuscode() == "200" and http.get_header("Content-Encoding") is None

    [row] = list(csv.DictReader(open(out / "claims.csv", encoding="utf-8")))
    assert row["quote"] == SENTENCE and row["stance"] == "promoted"
    assert row["page_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert row["captured_at"] == "2026-11-20T10:00:00Z"
    assert row["warc_record_id"] == headers.get_header("WARC-Record-ID")
    assert json.loads((out / "claims.jsonl").read_text())["url"] == row["url"]
    assert "<mark>contains millions of live stem cells</mark>" in (out / "report.html").read_text()

    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (out / "claims.csv").write_text("tampered\n")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True).returncode != 0


def test_export_refuses_an_altered_snapshot(fresh_db, db_path, tmp_path):
    _seed(fresh_db)
    fresh_db.db.execute("update snapshots set body = ?", [zlib.compress(BODY.replace(b"live", b"dead"))])
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "b"), "--db", str(db_path)])
    assert result.exit_code != 0
    assert "altered" in result.output


def test_export_with_nothing_selected_says_so(fresh_db, db_path, tmp_path):
    _seed(fresh_db)
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "b"), "--db", str(db_path), "--category", "rejection-free"])
    assert result.exit_code != 0
    assert "no claims match" in result.output
    assert not (tmp_path / "b").exists()
