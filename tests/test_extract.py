"""Visible text from HTML: blocks on lines of their own, invisible parts dropped, and
nothing lost to the parser's depth limit on sloppy or hostile pages."""

from __future__ import annotations

import pytest

from analysis.extract import extract_html, flat_text

PAGE = b"""<html lang="es-MX"><head><title> Brightwater | Stem cells </title>
<style>p { color: red }</style><script>var claim = "cures autism";</script></head>
<body><nav><a href="/conditions/">Conditions</a> <a href="tel:+15550100">Call</a></nav>
<h2>Conditions we treat:</h2><ul><li>Autism</li><li>ALS</li></ul>
<p>Our <b>umbilical</b> stem cells &amp; exosomes.<img src="x.png" alt="Happy patient"></p>
<div hidden>Hidden offer</div><div style="display: none">Also hidden</div><span aria-hidden="true">icon</span>
<table><tr><td>Price</td><td>$4,500</td></tr></table><!-- a comment --></body></html>"""


def test_blocks_lines_and_invisible_parts():
    page = extract_html(PAGE, "https://brightwater.example.org/")
    assert page.text.splitlines() == [
        "Conditions Call", "Conditions we treat:", "Autism", "ALS",
        "Our umbilical stem cells & exosomes. Happy patient", "Price", "$4,500"]
    assert page.title == "Brightwater | Stem cells" and page.lang == "es"
    assert page.links == ["https://brightwater.example.org/conditions/"]
    assert page.cues["tel_links"] == 1 and page.cues["prices"] == 1
    assert page.cues["headings"] == ["Conditions we treat:"]


@pytest.mark.parametrize("depth", [300, 1500, 5000])
def test_text_below_deep_unclosed_elements_is_kept(depth):
    """lxml's default parser stops at 256 nested elements and dropped the rest without a
    word (sloppy pages leave <div>s unclosed); huge_tree reaches 2,048, and deeper
    documents fall back to stripping tags. The walk keeps its own stack, so depths beyond
    Python's recursion limit work too."""
    html = (b"<html><head><title>T</title></head><body><p>Top line</p>" + b"<div>" * depth
            + b"<p>Our stem cells cure autism.</p><p>Book now</p></body></html>")
    page = extract_html(html, "https://deep.example.org/")
    assert page.text.splitlines() == ["Top line", "Our stem cells cure autism.", "Book now"]
    assert page.title == "T"


def test_flat_fallback_strips_tags_and_hides_what_browsers_hide():
    html = ("<html><head><title>T</title></head><body><SCRIPT>x()</script ><p>Hi &amp; bye</p>"
            "<!-- note --><li>one</li><li>two</li>a<b</body><script>never closed <p>gone</p>")
    assert flat_text(html).splitlines() == ["Hi & bye", "one", "two", "a<b"]
