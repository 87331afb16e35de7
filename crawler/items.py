"""What the spider hands to the pipeline: one item per fetched or failed page."""

from __future__ import annotations

import scrapy


class PageItem(scrapy.Item):
    """One page row (see analysis/storage.py `pages`), plus what the detector reads.

    A failed fetch is a PageItem too, with `error` set and no text.
    """

    site = scrapy.Field()  # site key of the seed whose scope the page is in
    url = scrapy.Field()  # canonical URL requested
    final_url = scrapy.Field()  # after redirects
    status = scrapy.Field()  # HTTP status, None when no response came
    content_type = scrapy.Field()
    fetched_at = scrapy.Field()
    size = scrapy.Field()
    title = scrapy.Field()
    text = scrapy.Field()
    detector_input = scrapy.Field()  # analysis.detect.inputs.PageInput; not stored
    error = scrapy.Field()
    depth = scrapy.Field()
    referer = scrapy.Field()
    headers = scrapy.Field()  # dict of response headers
    body = scrapy.Field()  # raw bytes, stored as a content-addressed snapshot
    links = scrapy.Field()  # absolute URLs found on the page
    # Where the fetch was captured (crawler/capture.py): the crawl's WARC file,
    # the byte range of its response and request records, the response's record id.
    warc_file = scrapy.Field()
    warc_offset = scrapy.Field()
    warc_length = scrapy.Field()
    warc_record_id = scrapy.Field()
    resources = scrapy.Field()  # URLs of its stylesheets and images (with STEMWATCH_PAGE_RESOURCES)
    # Rendering in Chromium (crawler/render.py): `body` and `text` are then the DOM after
    # the scripts ran, `raw_body` what the server sent (stored as pages.raw_sha256).
    rendered = scrapy.Field()  # 1: text and body are the rendered DOM's
    render_reason = scrapy.Field()  # why rendering was asked: crawl (--render js), seed, auto
    render_error = scrapy.Field()  # rendering was asked and failed: stored as the server sent it
    raw_body = scrapy.Field()
    rendered_record_id = scrapy.Field()  # WARC conversion record of the DOM


class ResourceItem(scrapy.Item):
    """A stylesheet or image of a page, fetched (STEMWATCH_PAGE_RESOURCES) only so
    the page's capture replays as it was seen: a WARC record, not a page."""

    crawl_id = scrapy.Field()
    site = scrapy.Field()
    url = scrapy.Field()
    status = scrapy.Field()
    content_type = scrapy.Field()
    fetched_at = scrapy.Field()
    warc_file = scrapy.Field()
    warc_offset = scrapy.Field()
    warc_length = scrapy.Field()
    warc_record_id = scrapy.Field()
