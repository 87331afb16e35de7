"""Datasette at real size: a million claims over 5,000 sites and 50 crawls.

Builds a synthetic but schema-true database (the project's Store and migrations,
rows bulk-inserted with sqlite-utils), then serves it with a real `datasette`
process twice in the same run and times the pages a journalist opens, over HTTP:

  (a) before: the code of --baseline (by default the commit before the m013
      migration: its plugin, its views, its schema), on the database at that schema;
  (b) after: this code, on the same database upgraded with m013 (timed too).

The crawls come in a rolling schedule: crawl k visits every fifth site, so each
site is crawled 10 times; a site keeps most of its claims from one crawl to the
next (3% go, about as many come), promoted claims carry the learned stage's score,
a few pages fail or are gone, and 2,000 claims have a verdict.

    .venv/bin/python benchmarks/datasette.py [--claims 1000000] [--requests 30]

Writes the figures to benchmarks/results/datasette.json and prints a table:
p50 and p95 in ms per page, before and after, and whether Datasette's time limit
(sql_time_limit_ms, 1000 ms by default) or a facet's (facet_time_limit_ms) was hit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# this file's folder off the path: its name would shadow the datasette package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from analysis.models import CATEGORIES  # noqa: E402
from analysis.store.database import MIGRATIONS, Store, claim_key  # noqa: E402

OUR_MIGRATION = "m013_datasette_at_scale"
SEVERITY = {"disease-cure": "high", "live-cells-in-processed-product": "high", "tissue-replacement-myth": "high",
            "regulatory-misrepresentation": "high", "cartilage-regrowth": "medium", "miracle-guarantee": "medium",
            "unsupported-efficacy": "medium", "rejection-free": "low"}
CATEGORY_WEIGHTS = [30, 14, 6, 8, 10, 16, 12, 4]  # disease cures dominate, as on real clinic sites
WORDS = {
    "disease-cure": ("reverse", ["autism", "Parkinson's disease", "multiple sclerosis", "COPD", "ALS", "dementia",
                                 "heart failure", "kidney disease", "cerebral palsy", "Alzheimer's"]),
    "cartilage-regrowth": ("regrow", ["knee cartilage", "hip cartilage", "worn joints", "the meniscus"]),
    "live-cells-in-processed-product": ("live stem cells in", ["amniotic fluid", "umbilical cord tissue",
                                                               "placental allograft", "Wharton's jelly"]),
    "tissue-replacement-myth": ("turn into new", ["heart muscle", "nerve cells", "kidney tissue", "brain cells"]),
    "regulatory-misrepresentation": ("FDA approved", ["treatment", "protocol", "procedure", "lab"]),
    "miracle-guarantee": ("guaranteed results for", ["pain", "aging", "mobility", "energy"]),
    "unsupported-efficacy": ("success rate for", ["arthritis", "back pain", "neuropathy", "lupus"]),
    "rejection-free": ("no risk of rejection with", ["donor cells", "cord blood cells", "our cells"]),
}
OPENERS = ["Our", "Our patented", "At our clinic, our", "Clinically proven:", "New this year:", "Patients love how our"]
FILLER = ("Our regenerative medicine clinic offers consultations, imaging and follow-up care. Patients travel "
          "from many countries; our coordinators arrange transport and lodging. ")


def day(crawl: int) -> str:
    """Crawl k starts on a Monday, a week after crawl k-1."""
    t = time.gmtime(time.mktime((2025, 12, 1, 8, 0, 0, 0, 0, 0)) + (crawl - 1) * 7 * 86400)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)


def sentence_for(rng: random.Random, category: str) -> tuple[str, str, int]:
    verb, objects = WORDS[category]
    words = f"{verb} {rng.choice(objects)}"
    opener = rng.choice(OPENERS)
    tail = rng.choice(["in weeks", "without surgery", "for good", "in one visit", "at any age", ""])
    n = rng.randrange(1, 400)
    sentence = f"{opener} stem cell program {n} can {words} {tail}".strip() + "."
    return sentence, words, sentence.index(words)


class SiteState:
    """A site's pages and claims, carried from one of its crawls to the next."""

    def __init__(self, rng: random.Random, index: int, mean_claims: float):
        self.domain = f"clinic{index:04d}.example"
        self.kind = "clinic" if rng.random() < 0.8 else rng.choice(["news", "advocacy", "other"])
        self.pages = [f"https://www.{self.domain}/" + ("" if p == 0 else f"page-{p}/") for p in range(rng.randrange(3, 10))]
        weight = rng.lognormvariate(0, 1.0)  # a few sites make most of the claims
        # 15% make none; the rest average mean_claims (1.65: the lognormal's mean; churn loses some)
        self.target = 0 if rng.random() < 0.15 else max(1, round(mean_claims * weight / 1.65 * 1.23))
        self.claims = [self.new_claim(rng) for _ in range(self.target)]

    def new_claim(self, rng: random.Random) -> dict:
        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        sentence, words, start = sentence_for(rng, category)
        promoted = self.kind == "clinic" and rng.random() < 0.85
        stance = "promoted" if promoted else rng.choice(["negated", "cautionary", "reported"])
        return {"page": rng.randrange(len(self.pages)), "category": category, "stance": stance, "text": words,
                "sentence": sentence, "start": start, "end": start + len(words),
                "score": round(rng.betavariate(5, 2), 3) if promoted else None}

    def step(self, rng: random.Random):
        """3% of the claims go, about as many come."""
        self.claims = [c for c in self.claims if rng.random() > 0.03]
        while len(self.claims) < self.target and rng.random() < 0.9:
            self.claims.append(self.new_claim(rng))


def drop_fts_triggers(db):
    for table in ("claims", "pages"):
        for suffix in ("ai", "ad", "au"):
            db.execute(f"drop trigger if exists [{table}_{suffix}]")


def build(path: Path, *, claims: int, sites: int, crawls: int, seed: int) -> dict:
    """The database at the schema before OUR_MIGRATION, filled; returns row counts and seconds."""
    started = time.monotonic()
    rng = random.Random(seed)
    store = Store(path, migrate=False)
    db = store.db
    MIGRATIONS.apply(db, stop_before=OUR_MIGRATION)
    drop_fts_triggers(db)  # the index is built once at the end (enable_fts below)
    rounds = 5  # crawl k visits the sites i with i % rounds == k % rounds
    mean = claims / (crawls * sites / rounds)
    states = [SiteState(rng, i, mean) for i in range(sites)]
    db["sites"].insert_all(
        ({"domain": s.domain, "name": f"{rng.choice(['Renew', 'Vital', 'Apex', 'Harmony', 'Nova'])} "
          f"{rng.choice(['Stem Cell', 'Regenerative', 'Cell Therapy', 'Wellness'])} {i}",
          "url": s.pages[0], "country": rng.choice(["US", "US", "US", "MX", "PA", "CO", "DE"]),
          "first_crawled": day(1 + i % rounds), "last_crawled": day(crawls - rounds + 1 + i % rounds)}
         for i, s in enumerate(states)), batch_size=5000)
    page_id = claim_id = 0
    total_claims = total_pages = 0
    with db.conn:
        for crawl in range(1, crawls + 1):
            db["crawls"].insert({"id": crawl, "started_at": day(crawl), "finished_at": day(crawl).replace("T08", "T20"),
                                 "seeds": "[]", "status": "finished", "pages": 0, "errors": 0, "claims": 0,
                                 "settings": "{}", "stats": "{}", "detector_version": "4.0-bench"})
            pages, rows = [], []
            for s in states[(crawl - 1) % rounds::rounds]:
                if crawl > rounds:
                    s.step(rng)
                on_page: dict[int, list[dict]] = {}
                for c in s.claims:
                    on_page.setdefault(c["page"], []).append(c)
                for p, url in enumerate(s.pages):
                    page_id += 1
                    fetched = day(crawl).replace("T08:00", f"T{8 + p % 12:02d}:{p * 7 % 60:02d}")
                    failed = rng.random() < 0.01
                    gone = not failed and p and rng.random() < 0.003
                    if failed or gone:
                        status = 404 if gone else 503
                        pages.append({"id": page_id, "crawl_id": crawl, "site": s.domain, "url": url, "final_url": url,
                                      "status": status, "content_type": "text/html", "fetched_at": fetched,
                                      "error": f"HTTP {status}", "depth": min(p, 1)})
                        continue
                    here = on_page.get(p, [])
                    text = " ".join(c["sentence"] for c in here) + " " + FILLER
                    pages.append({"id": page_id, "crawl_id": crawl, "site": s.domain, "url": url, "final_url": url,
                                  "status": 200, "content_type": "text/html", "fetched_at": fetched,
                                  "sha256": hashlib.sha256(text.encode()).hexdigest(), "size": len(text) + 900,
                                  "title": f"{s.domain} {p}", "text": text, "depth": min(p, 1),
                                  "page_kind": s.kind, "lang": "en", "detector_version": "4.0-bench"})
                    for c in here:
                        claim_id += 1
                        rows.append({"id": claim_id, "page_id": page_id, "crawl_id": crawl, "site": s.domain,
                                     "url": url, "category": c["category"], "stance": c["stance"],
                                     "severity": SEVERITY[c["category"]], "text": c["text"], "sentence": c["sentence"],
                                     "start": c["start"], "end": c["end"], "pattern": f"{c['category']}-1",
                                     "why": c["category"], "cue": None if c["stance"] == "promoted" else "warn",
                                     "page_kind": s.kind, "lang": "en",
                                     "claim_key": claim_key(s.domain, url, c["category"], c["sentence"]),
                                     "detector_version": "4.0-bench", "score": c["score"]})
            db["pages"].insert_all(pages, batch_size=2000)
            db["claims"].insert_all(rows, batch_size=5000)
            db.execute("update crawls set pages = ?, errors = ?, claims = ? where id = ?",
                       [len(pages), sum(1 for p in pages if p.get("error")), len(rows), crawl])
            total_pages += len(pages)
            total_claims += len(rows)
        keys = [r[0] for r in db.execute(
            "select claim_key from claims where stance = 'promoted' and id % 97 = 0 limit 2000")]
        db["reviews"].insert_all(
            ({"claim_key": k, "claim_id": None, "verdict": rng.choice(["confirmed", "false-alarm", "unsure"]),
              "reviewer": "bench", "reviewed_at": day(crawls)} for k in keys), batch_size=2000)
    db["claims"].enable_fts(["text", "sentence"], create_triggers=True, replace=True)
    db["pages"].enable_fts(["title", "text"], create_triggers=True, replace=True)
    store.close()
    return {"claims": total_claims, "pages": total_pages, "sites": sites, "crawls": crawls,
            "reviews": len(keys), "seconds": round(time.monotonic() - started, 1)}


def migrate(path: Path) -> float:
    """Bring the database to this code's schema (OUR_MIGRATION and any after it); seconds."""
    started = time.monotonic()
    store = Store(path, migrate=False)
    MIGRATIONS.apply(store.db)  # Store.migrate would also copy the database aside first
    store.close()
    return round(time.monotonic() - started, 1)


def upgraded(path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("select 1 from _sqlite_migrations where name = ?", [OUR_MIGRATION]).fetchone())
    finally:
        conn.close()


def baseline_tree(rev: str, dest: Path) -> Path:
    """The code of `rev` (analysis/ and crawler/), to serve the 'before' figures with."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "analysis", "crawler", "patterns"],
                             check=True, capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def default_baseline() -> str:
    """The commit before the one that added OUR_MIGRATION (HEAD while it is not committed)."""
    added = subprocess.run(["git", "-C", str(REPO), "log", "--format=%H", "-S", f"def {OUR_MIGRATION}",
                            "--", "analysis/store/database.py"], capture_output=True, text=True).stdout.split()
    return f"{added[-1]}~1" if added else "HEAD"


class Served:
    """A real `datasette FILE` process, the plugin found on `source`'s path."""

    def __init__(self, path: Path, source: Path, port: int):
        env = {**os.environ, "PYTHONPATH": str(source)}
        datasette = str(Path(sys.executable).with_name("datasette"))
        self.proc = subprocess.Popen([datasette, str(path), "--port", str(port)], cwd=source, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/-/versions.json", timeout=5).read()
                return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError("datasette did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def fetch(url: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    return status, (time.perf_counter() - started) * 1000, body.decode("utf-8", "replace")


def timed_out(body: str) -> str:
    """What Datasette gave up on, if anything: the query, a facet or the count."""
    problems = []
    if "SQL query took too long" in body or "Query took too long" in body:
        problems.append("query")
    if "These facets timed out" in body or '"facets_timed_out": ["' in body:
        problems.append("facet")
    return ",".join(problems)


def pages(db: str, sample: dict) -> dict[str, str]:
    """The pages timed, by name: paths under the served database."""
    from urllib.parse import quote

    sample = {**sample, "site": quote(sample["site"])}
    return {
        "claims table": f"/{db}/claims",
        "claim row": f"/{db}/claims/{sample['claim_id']}",
        "facet category": f"/{db}/claims?_facet=category",
        "facet site (promoted)": f"/{db}/claims?stance=promoted&_facet=site",
        "full-text search": f"/{db}/claims?_search=autism",
        "claims_to_review": f"/{db}/claims_to_review?category=&site=",
        "claims_to_review, one site": f"/{db}/claims_to_review?category=&site={sample['site']}",
        "review queue": f"/{db}/-/queue",
        "review queue, one site": f"/{db}/-/queue?site={sample['site']}",
        "claim page": f"/{db}/-/claim/{sample['claim_id']}",
        "claim_changes": f"/{db}/claim_changes",
        "claim_status": f"/{db}/claim_status",
        "what is new": f"/{db}/-/new",
        "what is new, one site": f"/{db}/-/new?site={sample['site']}",
        "atom feed": f"/{db}/-/new.atom",
        "charts": f"/{db}/-/charts",
        "index": "/",
        "database": f"/{db}",
    }


def measure(served: Served, paths: dict[str, str], requests: int) -> dict:
    results = {}
    for name, path in paths.items():
        times, problems = [], set()
        status, ms, body = fetch(served.base + path)  # the first one warms the page cache
        if status >= 400:  # a page the code measured does not have (or refuses)
            results[name] = {"status": status}
            continue
        for _ in range(requests):
            status, ms, body = fetch(served.base + path)
            times.append(ms)
            if timed_out(body):
                problems.add(timed_out(body))
        times.sort()
        results[name] = {"status": status, "p50_ms": round(statistics.median(times)),
                         "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]),
                         "timed_out": ",".join(sorted(problems)), "requests": requests}
        print(f"  {name:<28} {results[name]['p50_ms']:>7} {results[name]['p95_ms']:>7}  {results[name]['timed_out']}",
              flush=True)
    return results


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--crawls", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (after)")
    parser.add_argument("--baseline-requests", type=int, default=5,
                        help="timed requests per page before: some take seconds each")
    parser.add_argument("--baseline", default=None, help="git revision of the 'before' code")
    parser.add_argument("--keep", type=Path, help="keep the built database here (a folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: time the database built there before, if it is not upgraded yet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "datasette.json")
    args = parser.parse_args()
    rev = args.baseline or default_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "bench.db"
        if args.reuse and args.keep and (folder / "built.json").exists() and not upgraded(path):
            built = json.loads((folder / "built.json").read_text())
        else:
            for leftover in folder.glob("bench.db*"):
                leftover.unlink()
            print(f"building {args.claims:,} claims over {args.sites:,} sites and {args.crawls} crawls...",
                  flush=True)
            built = build(path, claims=args.claims, sites=args.sites, crawls=args.crawls, seed=args.seed)
            built["megabytes"] = round(path.stat().st_size / 2**20)
            (folder / "built.json").write_text(json.dumps(built))
        print(f"  {built}", flush=True)
        import sqlite3

        conn = sqlite3.connect(path)
        site = conn.execute("select s.name from sites s join claims c on c.site = s.domain "
                            "where c.stance = 'promoted' order by s.domain limit 1").fetchone()[0]
        sample = {"claim_id": conn.execute("select max(id) / 2 from claims").fetchone()[0], "site": site}
        conn.close()
        paths = pages(path.stem, sample)
        print(f"before ({rev}): p50 and p95 in ms over {args.baseline_requests} requests", flush=True)
        source = baseline_tree(rev, Path(tmp) / "baseline")
        served = Served(path, source, free_port())
        try:
            before = measure(served, paths, args.baseline_requests)
        finally:
            served.close()
        seconds = migrate(path)
        print(f"migration {OUR_MIGRATION}: {seconds} s", flush=True)
        print(f"after: p50 and p95 in ms over {args.requests} requests", flush=True)
        served = Served(path, REPO, free_port())
        try:
            after = measure(served, paths, args.requests)
        finally:
            served.close()
        shutil.rmtree(source, ignore_errors=True)
    report = {"built": built, "baseline": rev, "migration_seconds": seconds, "before": before, "after": after,
              "goal_p95_ms": 300, "python": sys.version.split()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'page':<28} {'before p50/p95':>16} {'after p50/p95':>16}  goal p95 < 300 ms")
    for name in paths:
        b, a = before.get(name, {}), after.get(name, {})
        fmt = lambda r: "-" if "p50_ms" not in r else f"{r['p50_ms']}/{r['p95_ms']}" + (" (timed out)" if r["timed_out"] else "")  # noqa: E731
        ok = "met" if a.get("p95_ms", 10**9) < 300 and not a.get("timed_out") else "MISSED"
        print(f"{name:<28} {fmt(b):>16} {fmt(a):>16}  {ok}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
