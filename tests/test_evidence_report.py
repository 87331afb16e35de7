"""The evidence report's HTML: what it shows, and that nothing from a crawled page can
act in it (no script, no hidden characters, no dangerous link, no external load)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given, strategies as st

from analysis.evidence.report import (
    ReportClaim, ReportCover, ReportCrawl, ReportPage, build_report, highlight, image_src,
    safe_href, short_url, shorten, verdict_label, warc_digest, when,
)

CLINICS = [
    ("NovaCell Institute", "novacell-institute.example"),
    ("Regenera Spine & Joint", "regenera-clinic.example.org"),
    ("Lumen Stem Wellness", "lumen-stem.example.net"),
]
SENTENCES = [
    "Our stem cell therapy cures Parkinson's disease in most patients within weeks.",
    "Patients regrow cartilage in the knee after a single injection of our cells.",
    "The FDA approved our umbilical cord product for autism and multiple sclerosis.",
    "Every treatment is guaranteed to work, or we repeat it at no cost to you.",
    "Our amniotic fluid injections contain millions of live stem cells that rebuild damaged tissue, "
    "according to the testimonials of hundreds of satisfied patients who travelled to our clinic from all "
    "over the world to receive what we call the most advanced regenerative protocol available anywhere today.",
    "Because the cells come from your own body there is zero risk of rejection.",
]
MATCHES = ["cures Parkinson's disease", "regrow cartilage", "FDA approved", "guaranteed to work",
           "live stem cells", "zero risk of rejection"]
CATEGORIES = [("disease-cure", "Disease cure"), ("cartilage-regrowth", "Cartilage regrowth"),
              ("regulatory-misrepresentation", "Regulatory misrepresentation"),
              ("miracle-guarantee", "Miracle or guarantee"),
              ("live-cells-in-processed-product", "Live cells in a processed product"),
              ("rejection-free", "Rejection-free")]
VERDICTS = [("confirmed", "A. Reviewer", "Matches the FTC warning letter wording."), (None, None, None),
            ("unsure", "B. Checker", None), ("false-alarm", "A. Reviewer", "Quoted from a news article.")]


def cover(**changes) -> ReportCover:
    values = dict(
        exported_at="2026-03-02T09:15:00Z", operator="Consumer Health Watch (volunteer desk)",
        contact="evidence@consumer-health-watch.example.org", tool_version="0.1.0",
        detector_version="rules-2026.02+learned-3",
        crawls=[ReportCrawl(id=7, started_at="2026-02-27T22:00:03Z", finished_at="2026-02-28T01:12:44Z",
                            user_agent="stemwatch/0.1 (+https://stemwatch.example.org/bot)", robots_obeyed=True,
                            politeness="2 s between requests to a site, AutoThrottle on", page_cap=500)],
        selection="site novacell-institute.example, promoted claims", signer_fingerprint="SHA256:q1w2e3r4t5y6",
    )
    values.update(changes)
    return ReportCover(**values)


def clinic_pages(n_pages: int = 13, n_claims: int = 63, screenshot=lambda i: None) -> list[ReportPage]:
    """Invented pages of fictional clinics, the claims spread over them in turn."""
    per_page = [n_claims // n_pages + (1 if i < n_claims % n_pages else 0) for i in range(n_pages)]
    pages, k = [], 0
    for i, count in enumerate(per_page):
        name, host = CLINICS[i % len(CLINICS)]
        url = f"https://www.{host}/treatments/condition-{i}?lang=en"
        body = f"page {i} as fetched".encode()
        sha = hashlib.sha256(body).hexdigest()
        claims = []
        for _ in range(count):
            j = k % len(SENTENCES)
            verdict, by, note = VERDICTS[k % len(VERDICTS)]
            category, label = CATEGORIES[j]
            claims.append(ReportClaim(
                claim_id=1000 + k, category=category, category_label=label,
                why="Consumer warnings single this claim out: no approved stem-cell product does this.",
                stance="promoted", severity="high", quote=f"{SENTENCES[j]} (claim {k + 1})", matched_text=MATCHES[j],
                verdict=verdict, verdict_by=by, verdict_note=note, captured_at="2026-02-28T00:0%d:00Z" % (i % 10),
                url=url))
            k += 1
        pages.append(ReportPage(
            url=url, site_name=name, title=f"Stem cell treatment for condition {i}",
            captured_at="2026-02-28T00:0%d:00Z" % (i % 10), http_status=200, page_sha256=sha,
            warc_record_id=f"<urn:uuid:00000000-0000-4000-8000-{i:012d}>",
            warc_payload_digest="sha256:" + base64.b32encode(hashlib.sha256(body).digest()).decode(),
            screenshot=screenshot(i), screenshot_sha256=("ab" * 32) if screenshot(i) else None, claims=claims))
    return pages


HOSTILE = "\u202eevorppa ADF"  # reads "FDA approve" when obeyed


def hostile_page() -> ReportPage:
    claim = ReportClaim(
        claim_id="1<script>", category="disease-cure", category_label="Disease <b>cure</b>",
        why='<img src=x onerror="alert(1)">', stance="promoted", severity="high",
        quote=f"Cures </textarea><script>alert('quote')</script> autism {HOSTILE} today",
        matched_text="<script>alert('quote')</script>", verdict="confirmed",
        verdict_by='"><svg onload=alert(2)>', verdict_note="</td></tr></table><script>x()</script>",
        captured_at="2026-02-28T00:00:00Z", url="javascript:alert(document.cookie)")
    return ReportPage(
        url="javascript:alert(document.cookie)", site_name='Evil"><script>alert(3)</script>',
        title=f"</title><script>alert(4)</script>{HOSTILE}", captured_at="2026-02-28T00:00:00Z", http_status=200,
        page_sha256="0" * 64, warc_record_id="<urn:uuid:x>", warc_payload_digest="sha256:<script>",
        screenshot="screenshots/p1.png", claims=[claim])


# -- hostile input ---------------------------------------------------------------

def test_hostile_fields_are_escaped_and_hidden_characters_shown():
    out = build_report(cover(operator="<script>op()</script>", selection=HOSTILE), [hostile_page()])
    assert "<script" not in out.lower()
    assert "</textarea>" not in out and "&lt;/textarea&gt;" in out
    assert "<img src=x" not in out and "<svg" not in out and "<b>cure</b>" not in out
    assert "\u202e" not in out and "[RLO]evorppa ADF" in out
    # The matched words are still highlighted, as text.
    assert "<mark>&lt;script&gt;alert(&#x27;quote&#x27;)&lt;/script&gt;</mark>" in out


def test_no_dangerous_links_only_http_with_rel():
    pages = [hostile_page(), *clinic_pages(2, 3)]
    pages.append(ReportPage(
        url="java\tscript:alert(1)", site_name="s", title="t", captured_at="2026-02-28T00:00:00Z", http_status=200,
        page_sha256="0" * 64, warc_record_id="r", warc_payload_digest="d",
        claims=[]))
    pages.append(ReportPage(
        url="data:text/html,<script>alert(1)</script>", site_name="s", title="t", captured_at="", http_status=None,
        page_sha256="0" * 64, warc_record_id="r", warc_payload_digest="d", claims=[]))
    out = build_report(cover(), pages)
    anchors = re.findall(r"<a\b[^>]*>", out)
    hrefs = [re.search(r'href="([^"]*)"', a).group(1) for a in anchors]
    assert hrefs and all(h.startswith(("#", "https://", "http://")) for h in hrefs)
    external = [a for a in anchors if 'href="http' in a]
    assert len(external) == 2 * 2  # each of the two clinic pages: its section and the appendix
    assert all('rel="noreferrer noopener"' in a for a in external)
    assert "javascript:alert(document.cookie)" in out  # shown as text, not a link
    assert "data:text/html" in out


def test_nothing_loaded_but_relative_screenshots():
    out = build_report(cover(), clinic_pages(3, 6, screenshot=lambda i: f"screenshots/p{i + 1}.png"))
    assert re.findall(r'src="([^"]*)"', out) == [f"screenshots/p{i}.png" for i in (1, 2, 3)]
    assert "<link" not in out and "@import" not in out and "url(" not in out
    assert "<script" not in out and "<iframe" not in out and "<form" not in out
    assert "default-src 'none'" in out  # a CSP, in case an escape were ever missed


# -- content ---------------------------------------------------------------------

def test_cover_summary_sections_and_appendix():
    pages = clinic_pages(4, 10, screenshot=lambda i: f"screenshots/p{i + 1}.png")
    out = build_report(cover(), pages)
    cover_html = out[:out.index('<section class="summary"')]
    for expected in ("Consumer Health Watch", "evidence@consumer-health-watch.example.org", "stemwatch 0.1.0",
                     "rules-2026.02+learned-3", "stemwatch/0.1 (+https://stemwatch.example.org/bot)", "obeyed",
                     "2 s between requests", "500", "SHA256:q1w2e3r4t5y6", "2026-03-02 09:15:00 UTC",
                     "10 claims on 4 pages of 3 sites", "stemwatch verify BUNDLE.zip"):
        assert expected in cover_html, expected
    summary = out[out.index('<section class="summary"'):out.index('<section class="pages"')]
    assert summary.count("<tr><td class=\"num\">") == 10
    assert summary.count("<mark>") == 10
    assert '<a href="#claim-10">10</a>' in summary and '<a href="#page-4">' in summary
    sections = out[out.index('<section class="pages"'):out.index('<section class="appendix"')]
    assert sections.count('<section class="page"') == 4
    assert sections.count("live address, not the evidence") == 4
    assert sections.count('<article class="claim"') == 10
    assert "Why it misleads:" in sections and "Matches the FTC warning letter wording." in sections
    assert "Not reviewed" in sections and "False alarm" in sections and "by A. Reviewer" in sections
    appendix = out[out.index('<section class="appendix"'):]
    for page in pages:
        assert page.page_sha256 in appendix and page.warc_payload_digest in appendix
    assert "sha256sum" in appendix and "base64.b32encode" in appendix
    assert 'class="warn"' not in appendix  # every page's two digests agree


def test_unsigned_export_and_crawl_without_robots():
    crawl = ReportCrawl(id=1, started_at="2026-01-01T00:00:00Z", finished_at=None, user_agent="ua",
                        robots_obeyed=False, politeness="none", page_cap=None)
    out = build_report(cover(signer_fingerprint=None, crawls=[crawl]), clinic_pages(1, 1))
    assert "Not signed" in out and "not obeyed" in out and "not finished" in out


def test_appendix_warns_when_the_two_digests_differ():
    page = clinic_pages(1, 1)[0]
    other = ReportPage(**{**page.__dict__, "warc_payload_digest": warc_digest("1" * 64)})
    assert 'class="warn"' in build_report(cover(), [other])
    bad_hex = ReportPage(**{**page.__dict__, "page_sha256": "not-a-hash"})
    assert "not a 64-digit hexadecimal hash" in build_report(cover(), [bad_hex])


def test_warc_digest_is_base32_of_the_same_hash():
    data = b"<html>the page as fetched</html>"
    expected = "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()
    assert warc_digest(hashlib.sha256(data).hexdigest()) == expected
    assert warc_digest("xyz") is None


def test_highlight_marks_the_match_ignoring_case():
    assert highlight("Stem cells CURE Autism.", "cure autism") == "Stem cells <mark>CURE Autism</mark>."
    assert highlight("No match here", "cure") == "No match here"
    assert highlight("a < b & cure", "cure") == "a &lt; b &amp; <mark>cure</mark>"


def test_shorten_keeps_the_match_and_marks_cuts():
    sentence = " ".join(f"word{i}" for i in range(80)) + " regrows cartilage " + " ".join("tail" for _ in range(40))
    start = sentence.index("regrows")
    short, span = shorten(sentence, (start, start + len("regrows cartilage")), 100)
    assert short.startswith("\u2026") and short.endswith("\u2026")
    assert short[span[0]:span[1]] == "regrows cartilage"
    assert len(short) <= 102
    assert "<mark>regrows cartilage</mark>" in highlight(sentence, "regrows cartilage", 100)


@given(st.lists(st.sampled_from(["ab", "cdef", "g", "stem", "cell"]), min_size=1, max_size=80),
       st.integers(0, 79), st.integers(1, 6), st.integers(20, 120))
def test_shorten_never_loses_the_span(words, at, length, limit):
    sentence = " ".join(words)
    a = min(at, len(words) - 1)
    b = min(a + length, len(words))
    start = len(" ".join(words[:a])) + (1 if a else 0)
    end = len(" ".join(words[:b]))
    short, span = shorten(sentence, (start, end), limit)
    assert short[span[0]:span[1]] == sentence[start:end]
    assert len(short) <= max(limit, end - start) + 2


def test_safe_href():
    assert safe_href("https://clinic.example/a?b=c") == "https://clinic.example/a?b=c"
    assert safe_href("HTTP://clinic.example/") == "HTTP://clinic.example/"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:x", "java\tscript:x", "data:text/html,x",
                "vbscript:x", "//clinic.example/", "/relative", "https://", "https://a\u202e.example/",
                "https://clinic.example/\nx", None, ""):
        assert safe_href(bad) is None, bad


def test_image_src_accepts_only_plain_relative_paths():
    assert image_src("screenshots/p1.png") == "screenshots/p1.png"
    assert image_src("screenshots/page 1 \"x\".png") == "screenshots/page%201%20%22x%22.png"
    for bad in ("../secret.png", "screenshots/../../x.png", "/etc/x.png", "http://clinic.example/x.png",
                "javascript:alert(1)", "C:\\x.png", "file:///etc/passwd", ""):
        with pytest.raises(ValueError):
            image_src(bad)


def test_short_url_verdict_and_time_labels():
    assert short_url("https://www.clinic.example/a") == "clinic.example/a"
    long = short_url("https://www.clinic.example/" + "x" * 200, 40)
    assert len(long) == 40 and "\u2026" in long and long.startswith("clinic.example/")
    assert verdict_label(None) == "Not reviewed" and verdict_label("false-alarm") == "False alarm"
    assert verdict_label("false_alarm") == "False alarm" and verdict_label("confirmed") == "Confirmed"
    assert when("2026-02-28T01:02:03+01:00") == "2026-02-28 00:02:03 UTC"
    assert when("2026-02-28T01:02:03") == "2026-02-28 01:02:03 UTC"
    assert when("yesterday") == "yesterday"
