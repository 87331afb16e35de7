"""Spider callbacks, content decoding and settings, without a network:
real Scrapy objects (HtmlResponse, Request, Crawler), no mocks."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from crawler.run import project_settings
from analysis.extract.content import ContentError, decode_body, read_body
from analysis.extract.sniff import is_binary
from crawler.middlewares import BlockedRequest, PrivateAddressGuard, parse_retry_after
from crawler.spiders.clinics import ClinicsSpider, url_pattern

SEEDS = [{"url": "https://www.clinic.com/", "site": "clinic.com", "name": "Clinic"}]


def make_spider(**settings):
    crawler = get_crawler(ClinicsSpider, {**project_settings().copy_to_dict(), "TWISTED_REACTOR_ENABLED": False, **settings})
    return ClinicsSpider.from_crawler(crawler, seed_list=[dict(s) for s in SEEDS])


def response(url, body, spider, depth=0, ctype="text/html; charset=utf-8"):
    request = Request(url, meta={"site": "clinic.com", "depth": depth})
    return HtmlResponse(url, body=body, headers={"Content-Type": ctype}, request=request)


def run_parse(spider, resp):
    out = list(spider.parse(resp))
    items = [o for o in out if not isinstance(o, Request)]
    return [o for o in out if isinstance(o, Request)], items


def test_parse_follows_same_site_links_once_and_records_all():
    spider = make_spider()
    body = b"""<html><head><title>Home</title></head><body>
      <a href="/about#team">About</a> <a href="https://clinic.com/about?utm_medium=x">About again</a>
      <a href="https://shop.clinic.com/">Shop (subdomain)</a> <a href="https://www.fda.gov/">FDA</a>
      <a href="/img/photo.JPG">photo</a> <a href="mailto:a@b.c">mail</a>
      <p>Stem cells.</p></body></html>"""
    requests, [item] = run_parse(spider, response("https://www.clinic.com/", body, spider))
    assert [r.url for r in requests] == [
        "https://www.clinic.com/about", "https://clinic.com/about", "https://shop.clinic.com/"]
    assert all(r.meta["depth"] == 1 and r.meta["site"] == "clinic.com" for r in requests)
    assert requests[0].headers["Referer"] == b"https://www.clinic.com/"
    assert item["links"] == [
        "https://www.clinic.com/about", "https://clinic.com/about", "https://shop.clinic.com/",
        "https://www.fda.gov/", "https://www.clinic.com/img/photo.JPG",
    ]
    assert item["title"] == "Home" and item["text"].endswith("Stem cells.")
    assert item["status"] == 200 and item["error"] is None and item["body"] == body
    # The same links on another page are not requested again.
    requests, _ = run_parse(spider, response("https://www.clinic.com/x", body, spider))
    assert requests == []


def test_page_cap_and_depth_limit_in_the_spider():
    spider = make_spider(STEMWATCH_MAX_PAGES_PER_SITE=3, DEPTH_LIMIT=2)
    links = "".join(f'<a href="/p{i}">p</a>' for i in range(10)).encode()
    requests, _ = run_parse(spider, response("https://www.clinic.com/", b"<html><body>" + links, spider))
    assert len(requests) == 3
    spider = make_spider(DEPTH_LIMIT=2)
    requests, _ = run_parse(spider, response("https://www.clinic.com/deep", b"<a href='/deeper'>x</a>", spider, depth=2))
    assert requests == []
    assert spider.crawler.stats.get_value("stemwatch/skipped/depth") == 1


def test_error_statuses_and_failures_become_rows():
    spider = make_spider()
    resp = response("https://www.clinic.com/gone", b"<html>gone</html>", spider)
    resp.status = 404
    _, [item] = run_parse(spider, resp)
    assert item["error"] == "HTTP 404" and item["status"] == 404 and item["text"] is None
    request = Request("http://10.0.0.1/", meta={"site": "clinic.com", "depth": 1,
                                                "redirect_urls": ["https://www.clinic.com/go"]})
    failure = Failure(BlockedRequest("blocked (after a redirect): 10.0.0.1 is a private address"))
    failure.request = request
    [row] = list(spider.failed(failure))
    assert row["url"] == "https://www.clinic.com/go" and row["final_url"] == "http://10.0.0.1/"
    assert row["error"].startswith("blocked (after a redirect)") and row["status"] is None


def test_guard_middleware_refuses_literals_unless_allowed():
    guard = PrivateAddressGuard(frozenset({"127.0.0.1"}))
    assert guard.process_request(Request("http://127.0.0.1:8000/")) is None
    with pytest.raises(BlockedRequest, match="private"):
        guard.process_request(Request("http://192.168.1.1/"))
    with pytest.raises(BlockedRequest, match=r"after a redirect\): \[?::1"):
        guard.process_request(Request("http://[::1]/", meta={"redirect_urls": ["http://127.0.0.1/"]}))


def test_charset_decoding():
    assert decode_body("Clínica".encode("latin-1"), "text/html; charset=ISO-8859-1")[0] == "Clínica"
    body = '<meta charset="windows-1252"><p>\u201cquoted\u201d 5\u20ac</p>'.encode("cp1252")
    assert "\u201cquoted\u201d 5\u20ac" in decode_body(body, "text/html")[0]
    assert decode_body("déjà vu".encode("utf-8"), "text/html")[0] == "déjà vu"
    text, enc = decode_body("Traitement à Montréal, très “efficace”".encode("cp1252"), "text/html")
    assert text == "Traitement à Montréal, très “efficace”" and enc == "cp1252"
    text, _ = decode_body("Лечение стволовыми клетками излечивает болезни".encode("cp1251"), "text/html")
    assert "стволовыми" in text


# (body, served as, binary?) -- the WHATWG sniffing rules: a signature is binary whatever the
# label; a page served as HTML is HTML whatever stray bytes it holds; plain or unknown text
# is binary only with a binary data byte in its first 1,445 bytes
SNIFF = [
    (b"\x89PNG\r\n\x1a\n\0\0\0", "text/html", True),
    (b"GIF89a\x01\x00", "text/plain", True),
    (b"PK\x03\x04rest", "", True),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "text/html", True),
    (b"<html><body><!--\x00--><p>Stem cells</p></body></html>", "text/html", False),
    (b"<p>a</p>\x01\x02\x03\x04\x05\x06\x07\x08" * 50, "application/xhtml+xml", False),
    ("plain text é".encode(), "text/plain", False),
    (b"plain\x00text", "text/plain", True),
    (b"plain\x00text", "", True),
    (b"\xff\xfep\x00l\x00a\x00i\x00n\x00", "text/plain", False),  # UTF-16 with its BOM
    (b"x" * 1445 + b"\x00", "text/plain", False),  # beyond the resource header
    (b"", "text/html", False),
]


@pytest.mark.parametrize("body,mtype,binary", SNIFF)
def test_binary_is_decided_as_browsers_sniff(body, mtype, binary):
    assert is_binary(body, mtype) is binary


def test_a_nul_byte_hides_no_html_page():
    body = b"<html><head><title>Clinic</title></head><body><!--\x00--><p>Stem cells cure autism.</p></body></html>"
    page, kind = read_body(body, "text/html", "http://x.com/")
    assert kind == "html" and "Stem cells cure autism." in page.text and "\x00" not in page.text
    with pytest.raises(ContentError, match="binary content served as text/html"):
        read_body(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "text/html", "http://x.com/")


def test_text_plain_and_html_sniffed_in_text():
    page, kind = read_body(b"line one\n\n  line two  ", "text/plain", "http://x.com/a.txt")
    assert (page.text, kind) == ("line one\nline two", "text")
    page, kind = read_body(b"<html><title>T</title><body>x</body></html>", "text/plain", "http://x.com/")
    assert kind == "html" and page.title == "T"


def test_url_patterns_group_calendar_and_pagination():
    assert url_pattern("https://c.com/events/2031/05") == url_pattern("https://c.com/events/2029/12")
    assert url_pattern("https://c.com/blog?page=2") == url_pattern("https://c.com/blog?page=9")
    assert url_pattern("https://c.com/post-1") != url_pattern("https://c.com/post-2")


def test_retry_after_parsing():
    assert parse_retry_after(b"120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_polite_settings_and_identity():
    s = project_settings({"STEMWATCH_CONTACT": "me@lab.org"})
    assert s.getbool("ROBOTSTXT_OBEY") and s.getbool("AUTOTHROTTLE_ENABLED")
    assert s.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 2 and s.getfloat("DOWNLOAD_DELAY") >= 1
    assert not s.getbool("TELNETCONSOLE_ENABLED") and not s.getbool("REMOTE_CONTROL_ENABLED")
    assert s.getbool("HTTPERROR_ALLOW_ALL") and s.getint("RETRY_TIMES") == 2
    assert s.getint("REDIRECT_MAX_TIMES") == 5 and s.getint("DOWNLOAD_MAXSIZE") == 10 * 1024 * 1024
    ClinicsSpider.update_settings(s)
    assert s["USER_AGENT"].startswith("stemwatch/") and "me@lab.org" in s["USER_AGENT"]


def test_text_response_of_pdf_is_read():
    from tests.servers import tiny_pdf

    spider = make_spider()
    req = Request("https://www.clinic.com/prices.pdf", meta={"site": "clinic.com", "depth": 1})
    resp = TextResponse(req.url, body=tiny_pdf("Price list 4000 USD"), headers={"Content-Type": "application/pdf"},
                        request=req)
    requests, [item] = run_parse(spider, resp)
    assert item["text"] == "Price list 4000 USD" and item["title"] == "Price list" and requests == []
