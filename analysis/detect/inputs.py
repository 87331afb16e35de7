"""What the detector reads about one page, built in one place.

A page reaches the detector from four paths: a crawl as it fetches, a crawl
that analyses pages it stored earlier (deferred, or fetched before a
resume), `reanalyze` over stored pages, and `scan` of saved files. Every
path builds its `PageInput` here, from the same extraction of the same
bytes, so a page gives the same claims whichever way it came.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.models import ExtractedPage, StoredPage


@dataclass(frozen=True)
class PageInput:
    """The detector's input: the page text and what the page says about itself."""

    text: str
    url: str = ""
    title: str = ""
    lang: str = ""  # as the page declares it (<html lang>), not as guessed
    cues: dict = field(default_factory=dict)  # ExtractedPage.cues: headings, prices, bylines...


def page_input(page: ExtractedPage, url: str, *, text: str | None = None,
               title: str | None = None) -> PageInput:
    """The detector's input for an extracted page. `text` and `title` override the
    extraction's where the stored ones must be kept (claim offsets refer to them)."""
    return PageInput(text=page.text if text is None else text, url=url or "",
                     title=(page.title if title is None else title) or "",
                     lang=page.lang or "", cues=page.cues or {})


def stored_page_input(stored: StoredPage) -> PageInput:
    """The detector's input for a stored page: its stored text and title, with the
    declared language and cues extracted again from the stored body exactly as the
    crawler extracted them when it fetched the page."""
    from analysis.extract.content import ContentError, read_body

    page = ExtractedPage(text=stored.text)
    if stored.body is not None:
        try:
            page, _ = read_body(stored.body, stored.content_type or "", stored.final_url or stored.url)
        except ContentError:
            pass  # a body the crawler could not read either: the text alone
    return page_input(page, stored.url, text=stored.text, title=stored.title or "")


def as_input(page) -> PageInput:
    """A PageInput from a PageInput, a StoredPage or a dict with the same keys."""
    if isinstance(page, PageInput):
        return page
    if isinstance(page, StoredPage):
        return stored_page_input(page)
    return PageInput(text=page.get("text") or "", url=page.get("url") or "",
                     title=page.get("title") or "", lang=page.get("lang") or "",
                     cues=page.get("cues") or {})
