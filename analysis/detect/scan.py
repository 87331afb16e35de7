"""Scan saved files (.html, .htm, .txt, or folders of them) with the detector."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Iterator

from analysis.detect.inputs import PageInput, page_input
from analysis.detect.pool import DetectorPool
from analysis.extract import extract_text
from analysis.extract.charset import decode_body
from analysis.extract.content import ContentError, read_body
from analysis.models import Claim, PageAnalysis

SUFFIXES = (".html", ".htm", ".txt")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    return [path]


def read_page(path: Path, url: str = "") -> PageInput:
    """The detector's input for one file. An HTML file is read exactly as the crawler
    reads a response (charset, extraction), so a saved page gives the claims its crawl
    gave; `url` is the page's address where it is known (the page kind reads it)."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        try:
            page, _ = read_body(path.read_bytes(), "text/html", url)
        except ContentError as e:
            raise ValueError(str(e)) from e
    elif suffix == ".txt":
        # decoded as the crawler decodes a response: a Latin-1 file read as UTF-8 would
        # lose every accented word ("células") and the claims in them
        page = extract_text(decode_body(path.read_bytes(), html=False)[0])
    else:
        raise ValueError(f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUFFIXES)}")
    return page_input(page, url)


def _entries(paths: Iterable[str | Path]) -> Iterator[tuple[str, PageInput | None, str | None]]:
    """(path as shown, detector input, None) per readable file, (path, None, error) otherwise."""
    for given in paths:
        given = str(given)
        path = Path(given)
        if not path.exists():
            yield given, None, "no such file"
            continue
        for f in _files(path):
            shown = given if f == path else str(f)
            try:
                yield shown, read_page(f), None
            except (OSError, ValueError) as e:
                yield shown, None, getattr(e, "strerror", None) or str(e)


def scan_paths(paths: Iterable[str | Path], detector=None, *, workers: int = 1,
               chunk: int = 256) -> Iterator[tuple[str, PageAnalysis | None, str | None]]:
    """(path as given, analysis, None) per readable file, (path, None, error) otherwise,
    in the order given.

    A folder is scanned for .html, .htm and .txt files; each file found is
    reported by its path under the folder. With workers > 1 the files of each
    chunk are analysed by that many detector processes.
    """
    if detector is None:
        from analysis.detect.detector import get_detector

        detector = get_detector()
    entries = _entries(paths)
    pool = None  # processes only pay off past one chunk of files (each builds its detector)
    try:
        while True:
            batch = list(itertools.islice(entries, chunk))
            if not batch:
                return
            if pool is None:
                pool = DetectorPool(workers if workers > 1 and len(batch) == chunk else 0, detector=detector)
            readable = [page for _, page, _ in batch if page is not None]
            results = iter(pool.imap(readable) if readable else ())
            for shown, page, error in batch:
                yield (shown, None, error) if page is None else (shown, next(results), None)
    finally:
        if pool is not None:
            pool.close()


def claim_record(path: str, analysis: PageAnalysis, claim: Claim) -> dict:
    """One scan output row: the claim's fields plus where it was found and the page's kind."""
    row = {"path": path}
    row.update(claim.to_dict())
    row.update(page_kind=analysis.page_kind, lang=analysis.lang,
               detector_version=analysis.detector_version)
    return row


def format_table(records: list[dict]) -> str:
    """A plain fixed-width table of scan records."""
    lines = []
    for r in records:
        text = r["text"].replace("\n", " ")
        if len(text) > 60:
            text = text[:57] + "..."
        lines.append(f"{r['path']}:{r['start']}  {r['category']:<32} {r['stance']:<10} "
                     f"{r['severity']:<6} {text}")
    return "\n".join(lines)
