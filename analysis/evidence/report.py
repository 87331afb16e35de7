"""The evidence report: one self-contained HTML document for a person at a regulator
(the FDA, the FTC, a medical board) or a consumer-protection lawyer to read and print.

It has a cover (who exported what, when, with which tool, and how the pages were
collected), a summary table of the claims, one section per captured page with its
screenshot and claims, and an appendix of hashes. Print CSS keeps the cover on its own
page, claims whole, and screenshots cropped, so a large export stays a short document.

Every field that came from a crawled page is untrusted: it is HTML-escaped and passed
through `visible()` so bidirectional overrides and control characters show instead of
acting; a crawled URL becomes a link only if it is plain http or https. The document
runs no script and loads nothing but the screenshots, by relative path.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from analysis.detect.text import match_span
from analysis.display import visible

SUMMARY_QUOTE_LIMIT = 110
SHORT_URL_LIMIT = 46
VERDICT_LABELS = {
    "confirmed": "Confirmed",
    "false-alarm": "False alarm",
    "false_alarm": "False alarm",
    "unsure": "Unsure",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A link target must be exactly this: no whitespace or control character anywhere, as
# browsers strip some of them and would read "java\tscript:" as "javascript:".
_LINKABLE = re.compile(r"https?://[^\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+",
                       re.IGNORECASE)


@dataclass(frozen=True)
class ReportClaim:
    claim_id: int | str
    category: str
    category_label: str
    why: str  # why the claim misleads
    stance: str
    severity: str | None
    quote: str  # the sentence, as the page said it
    matched_text: str
    verdict: str | None = None  # confirmed, false-alarm (or false_alarm), unsure; None: not reviewed
    verdict_by: str | None = None
    verdict_note: str | None = None
    captured_at: str = ""  # defaults to the page's
    url: str = ""  # defaults to the page's


@dataclass(frozen=True)
class ReportPage:
    url: str
    site_name: str
    title: str
    captured_at: str  # UTC, ISO 8601
    http_status: int | None
    page_sha256: str  # hex
    warc_record_id: str
    warc_payload_digest: str  # sha256:BASE32, as in the WARC record
    screenshot: str | None = None  # relative to the report, e.g. screenshots/p1.png
    screenshot_sha256: str | None = None
    claims: list[ReportClaim] = field(default_factory=list)
    content_encoding: str | None = None  # the server compressed the body it sent (gzip, br...)


@dataclass(frozen=True)
class ReportCrawl:
    id: int | str
    started_at: str
    finished_at: str | None
    user_agent: str
    robots_obeyed: bool
    politeness: str  # e.g. "2 s between requests, AutoThrottle on"
    page_cap: int | None = None


@dataclass(frozen=True)
class ReportCover:
    exported_at: str
    operator: str
    contact: str
    tool_version: str
    detector_version: str
    crawls: list[ReportCrawl]
    selection: str  # e.g. "site novacell-institute.example, promoted claims"
    signer_fingerprint: str | None = None


# -- pure helpers ----------------------------------------------------------------

def text(value) -> str:
    """Any value as safe HTML text: hidden characters made visible, then escaped."""
    if value is None:
        return ""
    return html.escape(visible(str(value)))


def shorten(sentence: str, span: tuple[int, int] | None, limit: int = SUMMARY_QUOTE_LIMIT
            ) -> tuple[str, tuple[int, int] | None]:
    """About `limit` characters of the sentence with the span in the middle, cut at
    spaces (never inside the span), an ellipsis where words were left out; the span
    moved to match."""
    if len(sentence) <= limit:
        return sentence, span
    s, e = span or (0, 0)
    start = max(0, min(s - max(limit - (e - s), 0) // 2, len(sentence) - limit))
    end = max(e, start + limit)
    if start > 0:
        space = sentence.find(" ", start, s if span else end)
        if space >= 0:
            start = space + 1
    if end < len(sentence):
        space = sentence.rfind(" ", e if span else start, end)
        if space > start:
            end = space
    prefix = "\u2026" if start > 0 else ""
    suffix = "\u2026" if end < len(sentence) else ""
    short = prefix + sentence[start:end] + suffix
    if span is None:
        return short, None
    moved = s - start + len(prefix)
    return short, (moved, moved + e - s)


def highlight(quote: str, matched: str, limit: int | None = None) -> str:
    """The quote as HTML with the matched words in <mark>, optionally shortened."""
    shown = visible(quote or "")
    span = match_span(shown, visible(matched or ""))
    if limit is not None:
        shown, span = shorten(shown, span, limit)
    if span is None:
        return html.escape(shown)
    a, b = span
    return f"{html.escape(shown[:a])}<mark>{html.escape(shown[a:b])}</mark>{html.escape(shown[b:])}"


def safe_href(url: str | None) -> str | None:
    """The URL if it may be a link: absolute http or https with a host and nothing
    hidden in it; None otherwise (shown as text)."""
    if not url or not _LINKABLE.fullmatch(url):
        return None
    try:
        return url if urlsplit(url).hostname else None
    except ValueError:
        return None


def short_url(url: str, limit: int = SHORT_URL_LIMIT) -> str:
    """Host and path, without the scheme or a leading "www.", the middle elided if long
    (plain text)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.removeprefix("www.")
        shown = (host + parts.path + (f"?{parts.query}" if parts.query else "")) or url
    except ValueError:
        shown = url
    if len(shown) <= limit:
        return shown
    head = (limit - 1) * 2 // 3
    return shown[:head] + "\u2026" + shown[len(shown) - (limit - 1 - head):]


def site_host(url: str) -> str:
    """The host of a URL without a leading "www." (the URL itself if it has none)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return host.removeprefix("www.") if host else url


def image_src(path: str) -> str:
    """A screenshot's relative path as an img src. Anything but a plain relative path is
    refused: the report must not load from elsewhere."""
    if (not path or path.startswith(("/", "\\")) or "\\" in path or ":" in path
            or any(ch < " " for ch in path) or ".." in path.split("/")):
        raise ValueError(f"a screenshot must be a relative path inside the bundle, not {path!r}")
    return "/".join(quote(part) for part in path.split("/"))


def warc_digest(hex_sha256: str) -> str | None:
    """The WARC form (sha256:BASE32) of a hex SHA-256; None if it is not one."""
    if not _HEX64.fullmatch(hex_sha256 or ""):
        return None
    return "sha256:" + base64.b32encode(binascii.unhexlify(hex_sha256)).decode()


def verdict_label(verdict: str | None) -> str:
    if not verdict:
        return "Not reviewed"
    return VERDICT_LABELS.get(verdict, verdict)


def when(value: str | None) -> str:
    """An ISO 8601 time as "YYYY-MM-DD HH:MM:SS UTC"; other text as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # stored times are UTC
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the document ----------------------------------------------------------------

CSS = """
:root{color-scheme:light}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{font:15px/1.45 "Liberation Sans",Arial,Helvetica,sans-serif;color:#111;background:#fff;max-width:62em;margin:2em auto;padding:0 1em}
h1{font-size:1.7em;margin:0 0 .3em}
h2{font-size:1.3em;border-bottom:2px solid #333;padding-bottom:.1em;margin:1.6em 0 .5em}
h3{font-size:1.1em;margin:1.4em 0 .3em;padding-top:.3em;border-top:3px double #999}
p{margin:.35em 0}
mark{background:#ffe066;color:#000;padding:0 .1em}
code{font-family:"DejaVu Sans Mono","Liberation Mono",monospace;font-size:.85em;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:.2em .35em;text-align:left;vertical-align:top}
th{background:#e9e9e9}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.4em 0}
dt{font-weight:bold}
dd{margin:0;overflow-wrap:anywhere}
.lede{font-size:1.1em}
.note{color:#333}
.live-tag{display:inline-block;background:#fde2e1;color:#8a1c13;border:1px solid #8a1c13;font-size:.72em;font-weight:bold;padding:0 .3em;letter-spacing:.03em;text-transform:uppercase}
.live-url{color:#555;overflow-wrap:anywhere}
.addr,.meta{margin:.15em 0}
.meta{color:#333}
.shot{margin:.5em 0}
.shot .crop{border:1px solid #888;max-height:70vh;overflow:auto}
.shot img{display:block;width:100%;height:auto}
.shot figcaption{font-size:.8em;color:#444}
.noshot{color:#666;font-style:italic}
.claim{border-top:1px solid #ccc;padding:.35em 0}
.claim-head{margin:0}
.tags{color:#333;font-size:.9em}
blockquote{margin:.15em 0;padding:.1em .6em;border-left:4px solid #888;background:#f5f5f5}
.why{margin:.1em 0;font-size:.92em}
.v-confirmed{color:#0a5d00;font-weight:bold}
.v-false-alarm,.v-false_alarm{color:#555;font-style:italic}
.v-unsure{color:#8a5a00;font-weight:bold}
.v-none{color:#666}
.warn{color:#8a1c13;font-weight:bold}
.c-hpage{width:24%}.c-hlabel{width:17%}
.hashes td{white-space:nowrap}.hashes td:first-child{white-space:normal;overflow-wrap:anywhere}
.num{white-space:nowrap}
.c-num{width:4%}.c-quote{width:45%}.c-cat{width:14%}.c-page{width:19%}.c-time{width:10%}.c-verdict{width:8%}
.where{overflow-wrap:anywhere}
@media print{
  body{font-size:8pt;line-height:1.18;max-width:none;margin:0;padding:0}
  h1{font-size:17pt}
  h2{font-size:12pt;margin:.6em 0 .35em;break-after:avoid}
  h3{font-size:9.5pt;margin:.6em 0 .15em;padding-top:.2em;break-after:avoid;clear:both}
  .cover{break-after:page}
  .lede{font-size:10pt}
  .summary table{font-size:7pt;table-layout:fixed}
  .summary th,.summary td{padding:.05em .25em}
  .summary .num{white-space:normal}
  thead{display:table-header-group}
  tr{break-inside:avoid}
  .addr,.meta{break-after:avoid}
  .shot{float:right;width:34%;margin:0 0 1mm 3mm}
  .shot .crop{max-height:60mm;overflow:hidden}
  .shot figcaption{font-size:6.5pt}
  .claim{break-inside:avoid;padding:.1em 0}
  blockquote{padding:0 .4em}
  .why{font-size:7.5pt}
  a{color:inherit;text-decoration:none}
  .appendix{clear:both}
  .appendix table{font-size:7pt;table-layout:fixed}
  .appendix td{padding:.1em .25em}
}
"""

# Defence in depth if an escape were ever missed: no script, no form, no external load.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' file:; "
        "base-uri 'none'; form-action 'none'")


def _link(url: str, label: str | None = None) -> str:
    shown = text(url if label is None else label)
    href = safe_href(url)
    if href is None:
        return f'<span class="live-url">{shown}</span>'
    return f'<a class="live-url" href="{html.escape(href)}" rel="noreferrer noopener">{shown}</a>'


def _verdict(claim: ReportClaim, detail: bool) -> str:
    css = "v-" + re.sub(r"[^a-z_-]", "", claim.verdict or "none")
    out = f'<span class="{css}">{text(verdict_label(claim.verdict))}</span>'
    if detail and claim.verdict and claim.verdict_by:
        out += f" by {text(claim.verdict_by)}"
    if detail and claim.verdict_note:
        out += f' <span class="note">\u2014 {text(claim.verdict_note)}</span>'
    return out


def _numbered(pages: list[ReportPage]) -> list[tuple[int, ReportPage, list[tuple[int, ReportClaim]]]]:
    """Pages and claims with the numbers the report gives them (1, 2, ... in order)."""
    out, n = [], 0
    for i, page in enumerate(pages, 1):
        claims = []
        for claim in page.claims:
            n += 1
            claims.append((n, claim))
        out.append((i, page, claims))
    return out


def _cover(cover: ReportCover, pages: list[ReportPage], claim_count: int) -> str:
    sites = sorted({p.site_name for p in pages if p.site_name})
    signed = (f"<code>{text(cover.signer_fingerprint)}</code>" if cover.signer_fingerprint
              else "Not signed")
    crawl_rows = "".join(
        f"<tr><td>{text(c.id)}</td><td>{text(when(c.started_at))}</td><td>{text(when(c.finished_at)) or 'not finished'}</td>"
        f"<td><code>{text(c.user_agent)}</code></td><td>{'obeyed' if c.robots_obeyed else 'not obeyed'}</td>"
        f"<td>{text(c.politeness)}</td><td>{text(c.page_cap) if c.page_cap is not None else 'none'}</td></tr>"
        for c in cover.crawls
    )
    crawls = (
        "<table><thead><tr><th>Crawl</th><th>Started</th><th>Finished</th><th>User-Agent</th>"
        f"<th>robots.txt</th><th>Politeness</th><th>Page cap</th></tr></thead><tbody>{crawl_rows}</tbody></table>"
        if cover.crawls else "<p>No crawl is recorded for these pages.</p>"
    )
    plural = "s" if len(sites) != 1 else ""
    return f"""<header class="cover">
<h1>Evidence report: stem-cell marketing claims</h1>
<p class="lede">{text(cover.selection)}</p>
<dl class="facts">
<dt>Exported</dt><dd>{text(when(cover.exported_at))}</dd>
<dt>Exported by</dt><dd>{text(cover.operator)}</dd>
<dt>Contact</dt><dd>{text(cover.contact)}</dd>
<dt>Tool</dt><dd>stemwatch {text(cover.tool_version)}, detector {text(cover.detector_version)}</dd>
<dt>Contents</dt><dd>{claim_count} claim{'s' if claim_count != 1 else ''} on {len(pages)} page{'s' if len(pages) != 1 else ''} of {len(sites)} site{plural}{': ' + text(', '.join(sites)) if sites else ''}</dd>
<dt>Signing key</dt><dd>{signed}</dd>
</dl>
<h2>How the pages were collected</h2>
<p>The pages were fetched by the stemwatch crawler. For each crawl: when it ran, the User-Agent it sent, whether it
obeyed the sites' robots.txt, how it paced its requests, and the most pages it would fetch.</p>
{crawls}
<h2>What this bundle contains</h2>
<p>Each page listed here was fetched on the date shown and its response stored unchanged: the bundle holds
those archived responses in a web archive (WARC), a screenshot of each page, this report, and a manifest of the
SHA-256 hash of every file{', signed with the key above' if cover.signer_fingerprint else ''}. The screenshots were
made at export time from the archived responses alone, with the network cut off and JavaScript disabled: they show
the capture, not the site as it is today, and their layout may differ from what a visitor's browser showed. The claims
were flagged by an automatic detector; where a person reviewed a claim, the verdict is shown, and a claim marked
"Not reviewed" has not been checked by anyone. The address of each page is given as its live address, for reference
only: what it serves now may differ from the evidence. The appendix lists the hashes that tie each page to the archive;
<code>stemwatch verify BUNDLE.zip</code> checks all of them.</p>
</header>"""


def _summary(numbered) -> str:
    rows = []
    for i, page, claims in numbered:
        for n, claim in claims:
            url = claim.url or page.url
            captured = when(claim.captured_at or page.captured_at)
            rows.append(
                f'<tr><td class="num"><a href="#claim-{n}">{n}</a></td>'
                f'<td>{highlight(claim.quote, claim.matched_text, SUMMARY_QUOTE_LIMIT)}</td>'
                f"<td>{text(claim.category_label or claim.category)}</td>"
                f'<td class="where"><a href="#page-{i}">p.\u00a0{i}</a> {text(site_host(url))}</td>'
                f"<td>{text(captured.removesuffix(' UTC'))}</td>"
                f"<td>{_verdict(claim, detail=False)}</td></tr>"
            )
    return ('<section class="summary"><h2 id="summary">Summary of claims</h2>'
            '<table><colgroup><col class="c-num"><col class="c-quote"><col class="c-cat"><col class="c-page">'
            '<col class="c-time"><col class="c-verdict"></colgroup>'
            "<thead><tr><th>#</th><th>Quote (matched words highlighted)</th><th>Category</th>"
            "<th>Page</th><th>Captured (UTC)</th><th>Verdict</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _screenshot(page: ReportPage) -> str:
    if not page.screenshot:
        return '<p class="noshot">No screenshot of this page.</p>'
    src = image_src(page.screenshot)
    return (f'<figure class="shot"><div class="crop"><img src="{html.escape(src)}" '
            f'alt="Screenshot of the captured page {text(short_url(page.url))}"></div>'
            f"<figcaption>Rendered from the archived response, network cut off; cropped in print, "
            f"whole in <code>{text(page.screenshot)}</code>.</figcaption></figure>")


def _claim(n: int, claim: ReportClaim) -> str:
    severity = f", severity {text(claim.severity)}" if claim.severity else ""
    return (f'<article class="claim" id="claim-{n}">'
            f'<p class="claim-head"><b>Claim {n}: {text(claim.category_label or claim.category)}</b> '
            f'<span class="tags">Stance {text(claim.stance)}{severity} \u00b7 '
            f"Verdict: {_verdict(claim, detail=True)} \u00b7 id {text(claim.claim_id)}</span></p>"
            f"<blockquote>{highlight(claim.quote, claim.matched_text)}</blockquote>"
            f'<p class="why"><b>Why it misleads:</b> {text(claim.why)}</p></article>')


def _page(i: int, page: ReportPage, claims: list[tuple[int, ReportClaim]], total: int) -> str:
    heading = text(page.site_name) + (f" \u2014 {text(page.title)}" if page.title else "")
    status = text(page.http_status) if page.http_status is not None else "unknown"
    count = f"{len(claims)} claim{'s' if len(claims) != 1 else ''}"
    return (f'<section class="page" id="page-{i}">'
            f"<h3>Page {i} of {total}: {heading}</h3>"
            f"{_screenshot(page)}"
            f'<p class="addr"><span class="live-tag">live address, not the evidence</span> {_link(page.url)}</p>'
            f'<p class="meta">Captured {text(when(page.captured_at))}, HTTP status {status} \u00b7 '
            f"archived as WARC record <code>{text(page.warc_record_id)}</code> \u00b7 {count}</p>"
            + "".join(_claim(n, c) for n, c in claims) + "</section>")


def _hashes(i: int, page: ReportPage) -> str:
    expected = warc_digest(page.page_sha256.lower()) if page.page_sha256 else None
    if expected is None:
        check = '<br><span class="warn">The SHA-256 is not a 64-digit hexadecimal hash.</span>'
    elif page.content_encoding:
        check = (f"<br>The server sent this page compressed ({text(page.content_encoding)}): the WARC digest is "
                 "of the bytes as sent, the SHA-256 of the page once decompressed.")
    elif expected != page.warc_payload_digest:
        check = '<br><span class="warn">These two values do not encode the same hash.</span>'
    else:
        check = ""
    # The WARC record's id is in the page's section.
    labels = ["SHA-256 (hex)", "WARC payload digest"]
    values = [page.page_sha256, page.warc_payload_digest]
    if page.screenshot_sha256:
        labels.append("Screenshot SHA-256")
        values.append(page.screenshot_sha256)
    return (f'<tr class="hashes"><td><a href="#page-{i}">Page {i}</a><br>{_link(page.url, short_url(page.url, 40))}</td>'
            f"<td>{'<br>'.join(labels)}</td>"
            f"<td>{'<br>'.join(f'<code>{text(v)}</code>' for v in values)}{check}</td></tr>")


_CHECK = (
    '<p>For each page, the SHA-256 and the WARC payload digest are the same SHA-256 hash of the page body as '
    "fetched, written in two encodings: hexadecimal, as <code>sha256sum</code> prints it, and base32, as the WARC "
    "record states it. To check a page, extract its record's body from the archive and run <code>sha256sum</code> "
    "on it; to turn the hexadecimal form into the WARC form, run "
    "<code>python3 -c \"import base64,sys; print('sha256:' + base64.b32encode(bytes.fromhex(sys.argv[1])).decode())\" HEX</code>. "
    "<code>stemwatch verify BUNDLE.zip</code> checks every hash and signature in the bundle at once.</p>"
)


def build_report(cover: ReportCover, pages: list[ReportPage]) -> str:
    """The report as one HTML document (inline CSS, no script; it loads only the
    screenshots, by their relative paths)."""
    numbered = _numbered(pages)
    claim_count = sum(len(claims) for _, _, claims in numbered)
    sections = "".join(_page(i, page, claims, len(pages)) for i, page, claims in numbered)
    appendix = "".join(_hashes(i, page) for i, page, _ in numbered)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>stemwatch evidence report: {text(cover.selection)}</title><style>{CSS}</style></head><body>"
        + _cover(cover, pages, claim_count)
        + _summary(numbered)
        + f'<section class="pages"><h2 id="pages">Pages and their claims</h2>{sections}</section>'
        + f'<section class="appendix"><h2 id="hashes">Appendix: hashes</h2>{_CHECK}'
        + f'<table><colgroup><col class="c-hpage"><col class="c-hlabel"><col></colgroup><tbody>{appendix}</tbody></table></section>'
        + "</body></html>"
    )
