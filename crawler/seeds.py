"""Seed lists: URLs given on the command line or CSV files of clinic sites.

Pure: no Scrapy, no network. ``load_seeds`` returns the seeds to crawl and
the problems found in the input (bad rows, skipped with their line number);
input that cannot be used at all raises ``SeedError``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import urlsplit

from analysis.store.sites import site_key
from crawler.urls import canonicalize

KNOWN_COLUMNS = ("name", "country", "state", "notes")
MAX_URL_LENGTH = 1000  # the crawl's URLLENGTH_LIMIT (crawler/settings.py): a longer seed would never be fetched
REPEATS_SHOWN = 3  # a repeated warning is shown this many times, then summed up


class SeedError(Exception):
    """Seed input stemwatch cannot use, said in words a user can act on."""


def looks_like_url(arg: str) -> bool:
    return "://" in arg or (arg.startswith("www.") and not Path(arg).exists())


def parse_seed_url(raw: str) -> str:
    """A canonical http(s) seed URL, or ValueError saying what is wrong."""
    url = (raw or "").strip()
    if not url:
        raise ValueError("empty url")
    if any(c.isspace() for c in url):
        raise ValueError(f"{raw.strip()!r} is not a URL (it contains spaces)")
    if "://" not in url:
        url = "http://" + url  # "clinic.example" or "www.clinic.example"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{raw!r} is not an http(s) URL")
    host = parts.hostname or ""
    if not host or " " in host:
        raise ValueError(f"{raw!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{_short(raw)!r} holds a user name or password: stemwatch crawls public pages only")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{raw!r} has an invalid port") from None
    if "." not in host and host != "localhost" and ":" not in host:
        raise ValueError(f"{raw!r} has no domain (no dot in {host!r})")
    url = canonicalize(url)
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"{_short(raw)!r} is {len(url)} characters long; the crawl fetches no URL over "
                         f"{MAX_URL_LENGTH} (URLLENGTH_LIMIT)")
    return url


def _short(text: str, n: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n] + "…"


def _read_csv(path: Path) -> tuple[list[dict], list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SeedError(f"cannot read seed file {path}: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    if not text.strip():
        raise SeedError(f"seed file {path} is empty")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [(f or "").strip().lower() for f in (reader.fieldnames or [])]
    if "url" not in fields:
        raise SeedError(
            f"seed file {path} has no 'url' column (columns: {', '.join(f for f in fields if f) or 'none'}); "
            "the first line must name the columns, e.g. url,name,country,state,notes"
        )
    reader.fieldnames = fields
    seeds, problems = [], []
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than columns
            problems.append(f"{path}:{line}: more cells than columns; row skipped")
            continue
        row = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue  # blank line
        try:
            url = parse_seed_url(row.get("url", ""))
        except ValueError as e:
            problems.append(f"{path}:{line}: {e}; row skipped")
            continue
        seed = {k: v for k, v in row.items() if v and k != "url"}
        seed["url"] = url
        seed["source"] = f"{path.name}:{line}"
        seeds.append(seed)
    return seeds, problems


def load_seeds(args: list[str] | tuple[str, ...]) -> tuple[list[dict], list[str]]:
    """Seeds from URLs and CSV files; duplicates (same site) collapse into one.

    Returns (seeds, problems). Each seed is a dict with ``url`` (canonical),
    ``site`` (its site key) and any other column of its CSV row.
    """
    if not args:
        raise SeedError("no seeds given: pass URLs or CSV files with a 'url' column")
    collected: list[dict] = []
    problems: list[str] = []
    for arg in args:
        arg = (arg or "").strip()
        if not arg:
            raise SeedError("an empty seed was given")
        path = Path(arg)
        if path.is_file():
            seeds, bad = _read_csv(path)
            collected.extend(seeds)
            problems.extend(bad)
            continue
        if looks_like_url(arg):
            try:
                collected.append({"url": parse_seed_url(arg)})
            except ValueError as e:
                raise SeedError(f"bad seed URL: {e}") from None
            continue
        if path.suffix.lower() in (".csv", ".txt") or "/" in arg or "\\" in arg:
            raise SeedError(f"no such seed file: {arg}")
        try:
            collected.append({"url": parse_seed_url(arg)})
        except ValueError as e:
            raise SeedError(f"{arg!r} is neither a seed file nor a URL ({e})") from None
    seeds: list[dict] = []
    by_site: dict[str, dict] = {}
    extra: dict[str, set[str]] = {}  # per site, the URLs already kept: a set, so 100,000 rows stay linear
    duplicates: dict[str, list[str]] = {}
    for seed in collected:
        key = site_key(seed["url"])
        if key in by_site:
            kept = by_site[key]
            for k, v in seed.items():  # the first seed wins; later ones fill gaps
                kept.setdefault(k, v)
            if seed["url"] != kept["url"] and seed["url"] not in extra[key]:
                extra[key].add(seed["url"])
                kept.setdefault("extra_urls", []).append(seed["url"])
            duplicates.setdefault(key, []).append(seed.get("source", seed["url"]))
            continue
        seed["site"] = key
        by_site[key] = seed
        extra[key] = set()
        seeds.append(seed)
    for key, where in duplicates.items():
        problems.extend(f"{w}: duplicate of site {key}; merged" for w in where[:REPEATS_SHOWN])
        if len(where) > REPEATS_SHOWN:
            problems.append(f"... and {len(where) - REPEATS_SHOWN} more rows of site {key} ({len(where)} in all); merged")
    if not seeds:
        raise SeedError("no usable seed: " + ("; ".join(problems[:5]) or "input had no rows"))
    return seeds, problems
