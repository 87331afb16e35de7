"""Screenshots of captured pages and the printed report, by a real headless Chromium
with the network cut off: the captured bytes are what is drawn, and the live site
never hears of it."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from analysis.evidence.render import (
    Capture, Renderer, RenderError, capture_table, chromium_path, file_under, fulfil_headers,
    follow_redirects, normalise_url, png_size,
)
from analysis.evidence.report import build_report
from servers import Site, ok
from test_evidence_report import clinic_pages, cover

# CI installs Debian's chromium and sets this, so a missing browser fails there.
REQUIRED = os.environ.get("STEMWATCH_REQUIRE_BROWSER") == "1"
TEAL = (17, 119, 102)
RED = (255, 0, 0)


@pytest.fixture(scope="module")
def renderer():
    try:
        chromium_path()
        if importlib.util.find_spec("playwright") is None:
            raise RenderError("Playwright is not installed (pip install playwright)")
    except RenderError as e:
        if REQUIRED:
            pytest.fail(f"no browser to render with: {e}")
        pytest.skip(f"no browser to render with: {e}")
    with Renderer() as r:
        yield r


class LiveSite:
    """The clinic's live server: counts every request and every TCP connection, so a
    test can show that rendering from captures reached neither."""

    def __init__(self):
        self.site = Site(default=ok(b"<html><body style='background:red'>LIVE</body></html>"))
        self.connections: list = []
        accept = self.site.server.get_request

        def counting():
            conn = accept()
            self.connections.append(conn[1])
            return conn

        self.site.server.get_request = counting

    def __enter__(self):
        self.site.start()
        return self

    def __exit__(self, *exc):
        self.site.stop()


@pytest.fixture
def live():
    with LiveSite() as site:
        yield site


def html_capture(url: str, body: str, status: int = 200, headers=()) -> Capture:
    return Capture(url, status, [("Content-Type", "text/html; charset=utf-8"), *headers], body.encode())


def png_pixels(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def pdf_pages(path: Path) -> int:
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
        return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    return len(PdfReader(path).pages)


def pdf_text(path: Path, first: int | None = None, last: int | None = None) -> str:
    if shutil.which("pdftotext"):
        pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
        return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True,
                              text=True, check=True).stdout
    reader = PdfReader(path)
    return "\n".join(p.extract_text() for p in reader.pages[(first or 1) - 1:last])


def pdf_image_sizes(path: Path) -> list[tuple[int, int]]:
    """(width, height) of each distinct image the PDF embeds."""
    seen: dict = {}
    for page in PdfReader(path).pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        for ref in xobjects.values():
            image = ref.get_object()
            if image.get("/Subtype") == "/Image":
                seen[ref.idnum if hasattr(ref, "idnum") else id(image)] = (int(image["/Width"]), int(image["/Height"]))
    return list(seen.values())


# -- pure helpers, no browser ----------------------------------------------------

def test_normalise_url():
    assert normalise_url("HTTP://Clinic.Example:80/a?b=1#top") == "http://clinic.example/a?b=1"
    assert normalise_url("https://clinic.example:443") == "https://clinic.example/"
    assert normalise_url("https://clinic.example:8443/x") == "https://clinic.example:8443/x"
    assert normalise_url("https://clinic.example/caf\u00e9 menu") == "https://clinic.example/caf%C3%A9%20menu"
    assert normalise_url("https://clinic.example/a?b=1") != normalise_url("https://clinic.example/a?b=2")
    assert normalise_url("https://clinic.example/A") != normalise_url("https://clinic.example/a")


def test_capture_table_refuses_two_captures_of_one_url():
    a = html_capture("https://clinic.example/", "a")
    b = html_capture("https://clinic.example/#x", "b")
    assert list(capture_table({"https://clinic.example/": a})) == ["https://clinic.example/"]
    with pytest.raises(RenderError, match="two captures"):
        capture_table({"https://clinic.example/": a, "https://CLINIC.example/#x": b})


def test_follow_redirects_within_the_captures():
    def moved(url, location, status=301):
        return Capture(url, status, [("Location", location)], b"")

    a, b, c = (f"https://clinic.example/{x}" for x in "abc")
    end = html_capture(c, "end")
    table = capture_table({a: moved(a, "/b"), b: moved(b, c, 302), c: end})
    hops = follow_redirects(a, table)
    assert hops.chain == [a, b, c] and hops.capture is end
    assert follow_redirects(c, table).chain == [c]
    lost = follow_redirects(a, capture_table({a: moved(a, "/gone")}))
    assert lost.chain == [a, "https://clinic.example/gone"] and lost.capture is None
    loop = follow_redirects(a, capture_table({a: moved(a, b), b: moved(b, a)}))
    assert loop.capture is None
    nowhere = follow_redirects(a, capture_table({a: Capture(a, 302, [], b"")}))
    assert nowhere.capture is None


def test_fulfil_headers_drop_transfer_headers_and_join_repeats():
    headers = [("Content-Type", "text/css"), ("Content-Encoding", "gzip"), ("Content-Length", "99"),
               ("Transfer-Encoding", "chunked"), ("Set-Cookie", "id=1"), ("Vary", "Accept"), ("vary", "Cookie")]
    assert fulfil_headers(headers) == {"Content-Type": "text/css", "Vary": "Accept, Cookie"}


def test_png_size_and_file_under(tmp_path):
    assert png_size(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + struct.pack(">II", 640, 480) + b"\x08\x06\0\0\0") == (640, 480)
    with pytest.raises(RenderError):
        png_size(b"GIF89a")
    base = tmp_path / "bundle"
    (base / "screenshots").mkdir(parents=True)
    (base / "screenshots" / "p1.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    (base / "link.png").symlink_to(tmp_path / "secret.png")
    assert file_under((base / "screenshots" / "p1.png").as_uri(), base) == base / "screenshots" / "p1.png"
    assert file_under(base.as_uri() + "/screenshots/../../secret.png", base) is None
    assert file_under((base / "link.png").as_uri(), base) is None  # a symbolic link out of the bundle
    assert file_under((base / "missing.png").as_uri(), base) is None
    assert file_under("http://127.0.0.1/screenshots/p1.png", base) is None


def test_missing_chromium_is_a_render_error_with_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMWATCH_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(RenderError, match="apt-get install chromium"):
        chromium_path()
    with pytest.raises(RenderError, match="apt-get install chromium"):
        with Renderer():
            pass


# -- screenshots -----------------------------------------------------------------

def test_screenshot_draws_only_the_capture_and_the_live_site_hears_nothing(renderer, live, tmp_path):
    base = live.site.base
    url = f"{base}/treatments/knee"
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={base}/elsewhere">
<link rel="preconnect" href="{base}/"><link rel="dns-prefetch" href="//cdn.novacell-institute.example">
<link rel="prefetch" href="{base}/next"><link rel="stylesheet" href="/static/site.css"><title>Knee cartilage</title>
<script type="speculationrules">{{"prerender": [{{"source": "list", "urls": ["{base}/prerendered"]}}]}}</script></head>
<body><script>document.documentElement.style.background = "rgb(255, 0, 0)";
document.body.style.background = "rgb(255, 0, 0)";</script>
<img src="{base}/static/knee.png" width="60" height="60" alt="">
<h1>Regrow your cartilage</h1></body></html>"""
    captures = {
        url: html_capture(url, page),
        # Headers as the crawler stored them, for a body it stored decoded.
        f"{base}/static/site.css": Capture(f"{base}/static/site.css", 200, [
            ("Content-Type", "text/css"), ("Content-Encoding", "gzip"), ("Content-Length", "3")],
            b"html, body { background: rgb(17, 119, 102); margin: 0; min-height: 100%; }"),
    }
    result = renderer.screenshot(url, captures, tmp_path / "shot.png", width=320, max_height=240)
    data = result.path.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    width, height, pixels = png_pixels(data)
    assert (width, height) == (result.width, result.height) == (320, 240)
    flat = [p for row in pixels for p in row]
    assert flat.count(RED) == 0  # the script did not run
    assert flat.count(TEAL) > 0.8 * len(flat)  # the captured stylesheet painted the page
    assert pixels[-1][0] == pixels[-1][-1] == pixels[0][-1] == TEAL  # the top left holds the blocked image
    assert result.served == [url, f"{base}/static/site.css"]
    assert f"{base}/static/knee.png" in result.blocked
    assert f"{base}/elsewhere" in result.blocked
    assert live.site.hits == {}  # no request reached the live server...
    assert live.connections == []  # ...not even the preconnect's bare TCP connection


def test_screenshot_is_clipped_and_a_refresh_to_a_captured_page_is_refused(renderer, tmp_path):
    url = "https://www.novacell-institute.example/long"
    other = "https://www.novacell-institute.example/other"
    captures = {
        url: html_capture(url, f'<meta http-equiv="refresh" content="0;url={other}">'
                               '<body style="margin:0;background:rgb(17,119,102)"><div style="height:30000px"></div>'),
        other: html_capture(other, '<body style="background:rgb(255,0,0)">other</body>'),
    }
    result = renderer.screenshot(url, captures, tmp_path / "long.png", max_height=3000)
    assert (result.width, result.height) == (1280, 3000)
    assert png_size(result.path.read_bytes()) == (1280, 3000)
    assert result.served == [url] and result.blocked == [other]


def test_a_captured_redirect_is_followed_within_the_captures(renderer, tmp_path):
    start = "https://regenera-clinic.example.org/old"
    final = "https://regenera-clinic.example.org/new"
    captures = {
        start: Capture(start, 301, [("Location", final), ("Content-Type", "text/html")], b""),
        final: html_capture(final, '<body style="margin:0;background:rgb(17,119,102)">moved</body>'),
    }
    result = renderer.screenshot(start, captures, tmp_path / "moved.png", width=200, max_height=100)
    assert result.served == [start, final] and result.blocked == []
    _, _, pixels = png_pixels(result.path.read_bytes())
    assert pixels[-1][-1] == TEAL


def test_a_page_that_was_not_captured_is_an_error(renderer, tmp_path):
    with pytest.raises(RenderError, match="no capture"):
        renderer.screenshot("https://clinic.example/", {}, tmp_path / "x.png")


# -- PDF -------------------------------------------------------------------------

def _small_shot(renderer, tmp: Path, out: Path, width: int, height: int, colour: str) -> None:
    url = f"https://shots.example/{width}x{height}"
    page = f'<body style="margin:0;background:{colour}"><div style="height:{height * 2}px"></div>'
    renderer.screenshot(url, {url: html_capture(url, page)}, out, width=width, max_height=height)


def test_pdf_loads_only_files_under_the_bundle(renderer, live, tmp_path):
    bundle = tmp_path / "bundle"
    _small_shot(renderer, tmp_path, bundle / "inside.png", 200, 100, "rgb(17,119,102)")
    _small_shot(renderer, tmp_path, tmp_path / "outside.png", 300, 150, "rgb(255,0,0)")
    html = (f'<h1>Images</h1><img src="inside.png" alt=""><img src="../outside.png" alt="">'
            f'<img src="{(tmp_path / "outside.png").as_uri()}" alt=""><img src="{live.site.base}/live.png" alt="">'
            f'<link rel="stylesheet" href="{live.site.base}/print.css">')
    out = renderer.pdf(html, bundle / "images.pdf", base_dir=bundle)
    assert pdf_image_sizes(out) == [(200, 100)]
    assert live.site.hits == {} and live.connections == []


def test_report_of_63_claims_on_13_pages_prints_under_10_pages(renderer, tmp_path):
    bundle = tmp_path / "bundle"
    shots = bundle / "screenshots"
    heights = [900 + 250 * i for i in range(13)]  # some tall, to be cropped in print
    for i, height in enumerate(heights):
        url = f"https://www.clinic-{i}.example.org/"
        page = (f'<body style="margin:0;background:hsl({i * 27},60%,80%);font:40px sans-serif">'
                f'<h1>Clinic {i}</h1><p>Stem cell therapy cures everything.</p><div style="height:{height}px"></div>')
        renderer.screenshot(url, {url: html_capture(url, page)}, shots / f"p{i + 1}.png", max_height=4000)
    pages = clinic_pages(13, 63, screenshot=lambda i: f"screenshots/p{i + 1}.png")
    assert sum(len(p.claims) for p in pages) == 63
    out = renderer.pdf(build_report(cover(), pages), bundle / "report.pdf", base_dir=bundle)
    count = pdf_pages(out)
    assert 3 <= count < 10, count
    every = re.sub(r"\s+", " ", pdf_text(out))
    assert "Summary of claims" in every and "Appendix: hashes" in every
    assert "(claim 37)" in every and "zero risk of rejection" in every
    assert f"Page 1 of {count}" in every and f"Page {count} of {count}" in every
    first = pdf_text(out, 1, 1)
    assert "Evidence report" in first and "Summary of claims" not in first  # the cover stands alone
    assert [w for w, _ in pdf_image_sizes(out)] == [1280] * 13  # every screenshot, loaded from the bundle
