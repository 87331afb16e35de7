"""The review queue and the claim page on a large database.

Builds (once, then reuses) an invented database of --claims claims over --sites sites
in two crawls: per page a list of conditions (one claim each), sentences with one or
two categories, mentions that are not promoted, and verdicts on some claims. Then times
what a request of the queue and of a claim page runs, the queue narrowed each way.

    python benchmarks/queue.py --db /tmp/queue-bench.db --claims 1000000 --sites 5000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.store import queue as q  # noqa: E402
from analysis.store.database import Store, claim_key  # noqa: E402

CONDITIONS = ["Autism spectrum disorder", "Parkinson's disease", "Multiple sclerosis", "ALS",
              "Heart failure", "COPD", "Stroke", "Type 2 diabetes"]
CATEGORIES = [("unsupported-efficacy", "medium"), ("regulatory-misrepresentation", "high"),
              ("rejection-free", "medium"), ("miracle-guarantee", "medium"), ("cartilage-regrowth", "medium")]
COUNTRIES = ["US", "MX", "PA", "CO", "DE", "IN", "TH", "UA", "CR", "BS"]


def build(path: Path, claims: int, sites: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    with Store(path) as store:
        db = store.db
        per_page = 10
        pages_per_site = max(1, claims // (2 * sites * per_page))
        db.execute("BEGIN")
        db["sites"].insert_all(({"domain": f"clinic{i:05d}.example.org", "name": f"Clinic {i:05d}",
                                 "url": f"https://clinic{i:05d}.example.org/", "country": COUNTRIES[i % 10]}
                                for i in range(sites)), batch_size=1000)
        for crawl in (1, 2):
            db["crawls"].insert({"id": crawl, "started_at": f"2026-0{crawl}-01T00:00:00Z", "status": "finished"})
        page_rows, claim_rows = [], []
        page_id = claim_id = 0
        for crawl in (1, 2):
            for i in range(sites):
                site = f"clinic{i:05d}.example.org"
                for n in range(pages_per_site):
                    page_id += 1
                    url = f"https://{site}/p{n}/"
                    page_rows.append((page_id, crawl, site, url, 200, f"2026-0{crawl}-01T01:00:00Z",
                                      f"Page {n}", "text", "bench"))
                    score = round(rnd.random(), 3)
                    for k, cond in enumerate(CONDITIONS[:6]):
                        claim_id += 1
                        sentence = f"Conditions we treat: … {cond}"
                        claim_rows.append((claim_id, page_id, crawl, site, url, "disease-cure", "promoted", "high",
                                           cond, sentence, k * 30, k * 30 + len(cond), "dc-disease", score,
                                           claim_key(site, url, "disease-cure", sentence)))
                    for k in range(per_page - 6):
                        claim_id += 1
                        cat, sev = CATEGORIES[rnd.randrange(len(CATEGORIES))]
                        stance = "promoted" if rnd.random() < 0.7 else "cautionary"
                        # crawl 2 brings a new sentence now and then
                        v = n * 10 + k + (1000 if crawl == 2 and rnd.random() < 0.05 else 0)
                        sentence = f"Sentence {v} of the page says something about {cat}."
                        claim_rows.append((claim_id, page_id, crawl, site, url, cat, stance,
                                           sev if stance == "promoted" else "low", cat, sentence, 300 + k * 80,
                                           300 + k * 80 + 10, "x", round(rnd.random(), 3) if k % 3 else None,
                                           claim_key(site, url, cat, sentence)))
            db.conn.executemany(
                "INSERT INTO pages (id, crawl_id, site, url, status, fetched_at, title, text, detector_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", page_rows)
            db.conn.executemany(
                'INSERT INTO claims (id, page_id, crawl_id, site, url, category, stance, severity, text, sentence, '
                'start, "end", pattern, score, claim_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                claim_rows)
            page_rows, claim_rows = [], []
        keys = [r[0] for r in db.execute("SELECT DISTINCT claim_key FROM claims WHERE crawl_id = 2")]
        reviewed = rnd.sample(keys, len(keys) // 20)
        db.conn.executemany("INSERT INTO reviews (claim_key, verdict, reviewer, reviewed_at) "
                            "VALUES (?, 'confirmed', 'bench', '2026-03-01T00:00:00Z')", [(k,) for k in reviewed])
        db.execute("COMMIT")


def timed(label: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:<48} {1000 * (time.perf_counter() - t):8.1f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/queue-bench.db"))
    ap.add_argument("--claims", type=int, default=1_000_000)
    ap.add_argument("--sites", type=int, default=5000)
    args = ap.parse_args()
    if not args.db.exists():
        t = time.perf_counter()
        build(args.db, args.claims, args.sites)
        print(f"built {args.db} in {time.perf_counter() - t:.0f} s")
    with Store(args.db) as store:  # applies m012 to a database built before it
        db = store.db
        print(f"{db['claims'].count:,} claims, {db['sites'].count:,} sites")
        site = db.execute("SELECT name FROM sites ORDER BY domain DESC LIMIT 1").fetchone()[0]
        for label, f in (("queue", q.QueueFilter()), ("queue, one site", q.QueueFilter(site=site)),
                         ("queue, one category", q.QueueFilter(category="rejection-free")),
                         ("queue, one country", q.QueueFilter(country="MX")),
                         ("queue, new since crawl 1", q.QueueFilter(since_crawl=1)),
                         ("queue, country + category + since",
                          q.QueueFilter(country="PA", category="miracle-guarantee", since_crawl=1))):
            leaders = timed(f"{label}: first page", q.queue_leaders, db, f)
            rows = timed(f"{label}: its statements", q.statements, db, leaders)
            timed(f"{label}: how many left", q.queue_left, db, f)
            if rows:
                deep = timed(f"{label}: page 2", q.queue_leaders, db, f, rows[-1]["cursor"])
                assert not {r["id"] for r in deep} & {r["leader"]["id"] for r in rows}
        claim = timed("claim page: the claim", q.claim_in_context, db, leaders[0]["id"])
        timed("claim page: first and last seen", q.sightings, db, claim["claim_key"])
        timed("claim page: its statement", q.statement_claims, db, claim)
        timed("claim page: next in the queue", q.next_leader, db, q.QueueFilter(),
              q.queue_position(db, claim))


if __name__ == "__main__":
    main()
