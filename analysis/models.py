"""Plain data types shared by the detector, the crawler and storage.

They import neither Scrapy, spaCy nor SQLite, so every layer can use them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CATEGORIES = (
    "disease-cure",
    "cartilage-regrowth",
    "live-cells-in-processed-product",
    "tissue-replacement-myth",
    "regulatory-misrepresentation",
    "miracle-guarantee",
    "unsupported-efficacy",
    "rejection-free",
)
STANCES = ("promoted", "negated", "cautionary", "reported")
PAGE_KINDS = ("clinic", "news", "academic", "regulator", "advocacy", "other")
# The response headers a page row keeps (lower-case), whether crawled or imported from an archive.
KEPT_HEADERS = (
    "content-type", "content-length", "content-language", "last-modified", "etag",
    "server", "location", "retry-after", "x-robots-tag", "date",
)


@dataclass
class Claim:
    """One flagged claim: the matched words and where they sit in the page text."""

    category: str
    stance: str
    text: str  # the matched words
    sentence: str  # the sentence (or heading + item) that holds them
    start: int  # character offsets of `text` in the extracted page text
    end: int
    pattern: str  # id of the pattern that matched
    severity: str = "medium"  # high / medium / low
    why: str = ""  # the warning this claim answers
    cue: str = ""  # the stance cue that decided a non-promoted stance, if any
    score: float | None = None  # the learned stage's score for the category on this page (None: rules alone)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PageAnalysis:
    """What the detector says about one page."""

    page_kind: str = "other"
    lang: str = "en"
    claims: list[Claim] = field(default_factory=list)
    detector_version: str = ""
    error: str = ""  # why the page could not be analysed (then it has no claims)


@dataclass
class ExtractedPage:
    """Visible text and structure pulled out of a fetched document."""

    text: str
    title: str = ""
    lang: str = ""  # from <html lang>, if any
    links: list[str] = field(default_factory=list)  # absolute URLs, in page order
    # Cues a person uses to tell a clinic page from a news story or a warning.
    cues: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPage:
    """A page as the store keeps it: its text (claim offsets refer to it) and its body."""

    text: str
    url: str
    title: str = ""
    content_type: str = ""
    body: bytes | None = None  # the snapshot, decompressed and hash-checked; None if absent
    final_url: str = ""  # after redirects: the URL the body was extracted against
