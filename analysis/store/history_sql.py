"""SQL of the history layer (migration m002_history): reviews, and the views
that turn stored crawls into a claim's life story.

Frozen once released: a migration's SQL never changes. A later change to a
view is a new migration that drops and recreates it.

The identity and lifecycle rules, in one place:

* A claim's identity is `claims.claim_key`: sha256 of (site, page URL,
  category, normalised sentence), see `storage.normalise_sentence`. Case,
  spacing and punctuation do not change it; any reworded sentence, a moved
  page (new URL) or a re-categorised match is a *new* claim, and the old one
  shows as removed. The sentence is the one the detector reports, which
  for a list item or a paragraph under a heading starts with that heading
  ("Conditions we treat … Autism"): a renamed heading also makes new claims
  (the change then shows `page_changed` = 1 on both sides, same words). The stance is not part of the identity: a claim whose
  wording stays but whose stance is re-read by a better detector keeps its
  key, its history and its reviews.
* A page is *observed* in a crawl when that crawl fetched it successfully
  (no error, HTTP status below 400) and the detector has read it, or when
  the site answered 404/410 (the page is gone). A fetch that failed (5xx,
  timeout, DNS) is no observation, and neither is a page the crawl did not
  fetch at all (page cap, robots.txt, a crawl of another site): neither
  makes a claim look removed.
* A claim is *present* when it was on the page in the latest observation of
  that page; otherwise it was *removed in* the first observing crawl after
  the last one that saw it: "present on D1, absent on D2", never a deletion
  date.
* A page's observations are ordered by capture time (`pages.fetched_at`),
  then crawl id (m014; before it, by crawl id alone, the order crawls were
  started in). An archive imported today of a page captured in 2019 is the
  2019 observation, before any later crawl, whatever its crawl id.
"""

REVIEWS_TABLE = """
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    claim_key TEXT NOT NULL,
    claim_id INTEGER,
    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'false-alarm', 'unsure')),
    note TEXT,
    reviewer TEXT,
    reviewed_at TEXT NOT NULL
);
CREATE INDEX idx_reviews_claim_key ON reviews (claim_key, id);
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only: record a new review instead'); END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only: record a new review instead'); END;
"""

REANALYSIS_TABLE = """
CREATE TABLE reanalysis_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    detector_version TEXT NOT NULL,
    crawl_id INTEGER,
    workers INTEGER,
    pages INTEGER,
    claims INTEGER,
    seconds REAL,
    status TEXT
);
"""

INDEXES = """
CREATE INDEX IF NOT EXISTS idx_pages_url_crawl ON pages (url, crawl_id);
CREATE INDEX IF NOT EXISTS idx_claims_page_key ON claims (page_id, claim_key);
"""

VIEWS = """
CREATE VIEW page_history AS
SELECT p.site, p.url, p.crawl_id, p.id AS page_id,
       coalesce(p.fetched_at, c.started_at) AS fetched_at, p.status, p.error,
       p.sha256, p.size, s.size AS snapshot_size, s.sha256 IS NOT NULL AS snapshot_stored,
       CASE WHEN lag(p.id) OVER w IS NULL THEN NULL
            ELSE p.sha256 IS NOT lag(p.sha256) OVER w END AS body_changed
FROM pages p
JOIN crawls c ON c.id = p.crawl_id
LEFT JOIN snapshots s ON s.sha256 = p.sha256
WINDOW w AS (PARTITION BY p.url ORDER BY p.crawl_id);

CREATE VIEW page_observations AS
SELECT p.id AS page_id, p.crawl_id, p.site, p.url,
       coalesce(p.fetched_at, c.started_at) AS fetched_at, p.status, p.sha256,
       p.detector_version,
       CASE WHEN p.status IN (404, 410) THEN 'gone' ELSE 'ok' END AS outcome
FROM pages p
JOIN crawls c ON c.id = p.crawl_id
WHERE p.status IN (404, 410)
   OR (p.error IS NULL AND coalesce(p.status, 200) < 400 AND p.detector_version IS NOT NULL);

CREATE VIEW page_observation_steps AS
SELECT o.*,
       lag(o.page_id) OVER w AS prev_page_id,
       lag(o.crawl_id) OVER w AS prev_crawl_id,
       lag(o.fetched_at) OVER w AS prev_fetched_at,
       lag(o.outcome) OVER w AS prev_outcome,
       lag(o.sha256) OVER w AS prev_sha256,
       lag(o.detector_version) OVER w AS prev_detector_version
FROM page_observations o
WINDOW w AS (PARTITION BY o.url ORDER BY o.crawl_id);

CREATE VIEW claim_verdicts AS
SELECT r.claim_key, r.verdict, r.note, r.reviewer, r.reviewed_at, r.id AS review_id,
       n.reviews
FROM reviews r
JOIN (SELECT claim_key, max(id) AS id, count(*) AS reviews FROM reviews GROUP BY claim_key) n
  ON n.id = r.id;

CREATE VIEW claim_changes AS
WITH steps AS (SELECT * FROM page_observation_steps),
page_claims AS (SELECT page_id, claim_key, min(id) AS claim_id FROM claims GROUP BY page_id, claim_key)
SELECT CASE WHEN EXISTS (SELECT 1 FROM claims e WHERE e.claim_key = pc.claim_key AND e.crawl_id < s.crawl_id)
            THEN 'returned' ELSE 'new' END AS change,
       s.site, s.url, pc.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.prev_page_id IS NULL THEN 'first observation of the page'
            WHEN s.prev_outcome = 'gone' THEN 'page is back'
            ELSE 'added to the page' END AS reason,
       pc.claim_id,
       CASE WHEN s.prev_page_id IS NULL THEN NULL ELSE s.sha256 IS NOT s.prev_sha256 END AS page_changed,
       CASE WHEN s.prev_page_id IS NULL THEN NULL
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       v.verdict
FROM steps s
JOIN page_claims pc ON pc.page_id = s.page_id
JOIN claims c ON c.id = pc.claim_id
LEFT JOIN claim_verdicts v ON v.claim_key = pc.claim_key
WHERE s.outcome = 'ok'
  AND NOT (s.prev_outcome IS 'ok' AND EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.prev_page_id AND q.claim_key = pc.claim_key))
UNION ALL
SELECT 'removed' AS change,
       s.site, s.url, pc.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.outcome = 'gone' THEN 'page gone (HTTP ' || s.status || ')'
            ELSE 'no longer on the page' END AS reason,
       pc.claim_id,
       s.sha256 IS NOT s.prev_sha256 AS page_changed,
       CASE WHEN s.outcome = 'gone' THEN 0
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       v.verdict
FROM steps s
JOIN page_claims pc ON pc.page_id = s.prev_page_id
JOIN claims c ON c.id = pc.claim_id
LEFT JOIN claim_verdicts v ON v.claim_key = pc.claim_key
WHERE s.prev_outcome = 'ok'
  AND (s.outcome = 'gone' OR NOT EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.page_id AND q.claim_key = pc.claim_key));

CREATE VIEW claim_status AS
WITH seen AS (
    SELECT c.claim_key, c.site, c.url, min(o.crawl_id) AS first_seen_crawl,
           max(o.crawl_id) AS last_seen_crawl, count(DISTINCT o.crawl_id) AS crawls_seen
    FROM claims c JOIN page_observations o ON o.page_id = c.page_id AND o.outcome = 'ok'
    GROUP BY c.claim_key
),
life AS (
    SELECT seen.*,
           (SELECT min(r.crawl_id) FROM page_observations r
             WHERE r.url = seen.url AND r.crawl_id > seen.last_seen_crawl) AS removed_in_crawl,
           (SELECT max(r.crawl_id) FROM page_observations r WHERE r.url = seen.url) AS last_checked_crawl
    FROM seen
)
SELECT l.claim_key, l.site, l.url, c.category, c.stance, c.sentence, c.text,
       l.first_seen_crawl, f.fetched_at AS first_seen_at,
       l.last_seen_crawl, o.fetched_at AS last_seen_at,
       l.crawls_seen,
       l.removed_in_crawl IS NULL AS present,
       l.removed_in_crawl, r.fetched_at AS removed_observed_at,
       CASE WHEN r.outcome = 'gone' THEN 'page gone (HTTP ' || r.status || ')'
            WHEN r.page_id IS NOT NULL THEN 'no longer on the page' END AS removed_reason,
       l.last_checked_crawl,
       c.id AS claim_id, c.detector_version,
       v.verdict, v.note AS verdict_note, v.reviewer, v.reviewed_at
FROM life l
JOIN page_observations o ON o.url = l.url AND o.crawl_id = l.last_seen_crawl
JOIN page_observations f ON f.url = l.url AND f.crawl_id = l.first_seen_crawl
JOIN claims c ON c.id = (SELECT min(id) FROM claims q WHERE q.page_id = o.page_id AND q.claim_key = l.claim_key)
LEFT JOIN page_observations r ON r.url = l.url AND r.crawl_id = l.removed_in_crawl
LEFT JOIN claim_verdicts v ON v.claim_key = l.claim_key;
"""

M002_SQL = REVIEWS_TABLE + REANALYSIS_TABLE + INDEXES + VIEWS

# m003: the same claim_changes, planned to scale (index lookups instead of a
# grouped subquery joined row by row: 11 s -> 0.1 s on 18,000 claims).
M003_CLAIM_CHANGES = """
DROP VIEW claim_changes;
CREATE VIEW claim_changes AS
WITH steps AS (SELECT * FROM page_observation_steps)
SELECT CASE WHEN EXISTS (SELECT 1 FROM claims e WHERE e.claim_key = c.claim_key AND e.crawl_id < s.crawl_id)
            THEN 'returned' ELSE 'new' END AS change,
       s.site, s.url, c.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.prev_page_id IS NULL THEN 'first observation of the page'
            WHEN s.prev_outcome = 'gone' THEN 'page is back'
            ELSE 'added to the page' END AS reason,
       c.id AS claim_id,
       CASE WHEN s.prev_page_id IS NULL THEN NULL ELSE s.sha256 IS NOT s.prev_sha256 END AS page_changed,
       CASE WHEN s.prev_page_id IS NULL THEN NULL
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       (SELECT r.verdict FROM reviews r WHERE r.claim_key = c.claim_key ORDER BY r.id DESC LIMIT 1) AS verdict
FROM steps s
JOIN claims c ON c.page_id = s.page_id
WHERE s.outcome = 'ok'
  AND NOT EXISTS (SELECT 1 FROM claims d WHERE d.page_id = c.page_id AND d.claim_key = c.claim_key AND d.id < c.id)
  AND NOT (s.prev_outcome IS 'ok' AND EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.prev_page_id AND q.claim_key = c.claim_key))
UNION ALL
SELECT 'removed' AS change,
       s.site, s.url, c.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.outcome = 'gone' THEN 'page gone (HTTP ' || s.status || ')'
            ELSE 'no longer on the page' END AS reason,
       c.id AS claim_id,
       s.sha256 IS NOT s.prev_sha256 AS page_changed,
       CASE WHEN s.outcome = 'gone' THEN 0
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       (SELECT r.verdict FROM reviews r WHERE r.claim_key = c.claim_key ORDER BY r.id DESC LIMIT 1) AS verdict
FROM steps s
JOIN claims c ON c.page_id = s.prev_page_id
WHERE s.prev_outcome = 'ok'
  AND NOT EXISTS (SELECT 1 FROM claims d WHERE d.page_id = c.page_id AND d.claim_key = c.claim_key AND d.id < c.id)
  AND (s.outcome = 'gone' OR NOT EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.page_id AND q.claim_key = c.claim_key));
"""

# m004: claim_status takes the current verdict by index lookup instead of
# joining the grouped claim_verdicts view (1 s -> 0.09 s with 3,000 reviews).
M004_CLAIM_STATUS = """
DROP VIEW claim_status;
CREATE VIEW claim_status AS
WITH seen AS (
    SELECT c.claim_key, c.site, c.url, min(o.crawl_id) AS first_seen_crawl,
           max(o.crawl_id) AS last_seen_crawl, count(DISTINCT o.crawl_id) AS crawls_seen
    FROM claims c JOIN page_observations o ON o.page_id = c.page_id AND o.outcome = 'ok'
    GROUP BY c.claim_key
),
life AS (
    SELECT seen.*,
           (SELECT min(r.crawl_id) FROM page_observations r
             WHERE r.url = seen.url AND r.crawl_id > seen.last_seen_crawl) AS removed_in_crawl,
           (SELECT max(r.crawl_id) FROM page_observations r WHERE r.url = seen.url) AS last_checked_crawl
    FROM seen
)
SELECT l.claim_key, l.site, l.url, c.category, c.stance, c.sentence, c.text,
       l.first_seen_crawl, f.fetched_at AS first_seen_at,
       l.last_seen_crawl, o.fetched_at AS last_seen_at,
       l.crawls_seen,
       l.removed_in_crawl IS NULL AS present,
       l.removed_in_crawl, r.fetched_at AS removed_observed_at,
       CASE WHEN r.outcome = 'gone' THEN 'page gone (HTTP ' || r.status || ')'
            WHEN r.page_id IS NOT NULL THEN 'no longer on the page' END AS removed_reason,
       l.last_checked_crawl,
       c.id AS claim_id, c.detector_version,
       v.verdict, v.note AS verdict_note, v.reviewer, v.reviewed_at
FROM life l
JOIN page_observations o ON o.url = l.url AND o.crawl_id = l.last_seen_crawl
JOIN page_observations f ON f.url = l.url AND f.crawl_id = l.first_seen_crawl
JOIN claims c ON c.id = (SELECT min(id) FROM claims q WHERE q.page_id = o.page_id AND q.claim_key = l.claim_key)
LEFT JOIN page_observations r ON r.url = l.url AND r.crawl_id = l.removed_in_crawl
LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE claim_key = l.claim_key);
"""

# m005: claim_verdicts as a plain (flattenable) view, so a lookup by claim_key
# uses the index: a per-claim verdict over 18,000 claims 4.6 s -> 0.04 s.
M005_CLAIM_VERDICTS = """
DROP VIEW claim_verdicts;
CREATE VIEW claim_verdicts AS
SELECT r.claim_key, r.verdict, r.note, r.reviewer, r.reviewed_at, r.id AS review_id,
       (SELECT count(*) FROM reviews n WHERE n.claim_key = r.claim_key) AS reviews
FROM reviews r
WHERE r.id = (SELECT max(m.id) FROM reviews m WHERE m.claim_key = r.claim_key);
"""

# m014: history in the order pages were captured, not the order crawls were
# recorded in. An archive import records a capture of 2019 after a crawl of
# 2026; ordered by crawl id, the 2019 page would read as the newest and every
# claim it lacks as removed. A page row's place in its page's history is
# `observed_order`: its capture time (pages.fetched_at, which stemwatch always
# writes; a row without one sorts first), then its crawl id, which breaks ties
# as before. For crawls run one after another that is the order of their ids,
# so their histories keep the same rows and columns. m013's planning is kept: every lookup of
# a previous, first, last or next observation is an index search of pages by
# (url, observed_order), so a filter on a crawl, a site or a URL still reaches
# the pages and claims tables. A claim "returned" when an earlier fetch of its
# page had it (its key names the page's URL): the earlier fetches are walked by
# that index. On 720,000 claims over 30 crawls (m013 in brackets): one crawl's
# changes 0.11 s (0.12 s), a site's claim_status 7 ms (5 ms), a URL's steps
# 0.4 ms (0.3 ms), the whole claim_status 4.5 s (3.8 s).
def observed_order(pages: str = "p") -> str:
    """A page row's place in its page's history, as text that sorts: capture time, then
    crawl id. Spelled exactly as the index idx_pages_url_order (SQLite matches an
    indexed expression by its form)."""
    p = f"{pages}." if pages else ""  # unqualified in the index itself
    return f"coalesce({p}fetched_at, '') || printf(' %012d', {p}crawl_id)"


def latest_crawl(site: str) -> str:
    """The crawl that captured a site last (by capture time, not crawl id), for SQL that
    compares it with a crawl id; pages (site, fetched_at, crawl_id) is indexed for it."""
    return (f"(SELECT lp.crawl_id FROM pages lp WHERE lp.site = {site} "
            "ORDER BY lp.fetched_at DESC, lp.crawl_id DESC LIMIT 1)")


def is_observation(alias: str) -> str:
    """An observation, as page_observations defines it, for a row of pages `alias`."""
    return (f"({alias}.status IN (404, 410) OR ({alias}.error IS NULL AND coalesce({alias}.status, 200) < 400 "
            f"AND {alias}.detector_version IS NOT NULL))")


M014_CAPTURE_ORDER = f"""
DROP VIEW claim_changes;
DROP VIEW claim_status;
DROP VIEW page_observation_steps;
DROP VIEW page_history;
CREATE INDEX IF NOT EXISTS idx_pages_url_order ON pages (url, ({observed_order('')}));
CREATE INDEX IF NOT EXISTS idx_pages_site_fetched ON pages (site, fetched_at, crawl_id);
CREATE VIEW page_history AS
SELECT p.site, p.url, p.crawl_id, p.id AS page_id,
       coalesce(p.fetched_at, c.started_at) AS fetched_at, p.status, p.error,
       p.sha256, p.size, s.size AS snapshot_size, s.sha256 IS NOT NULL AS snapshot_stored,
       CASE WHEN lag(p.id) OVER w IS NULL THEN NULL
            ELSE p.sha256 IS NOT lag(p.sha256) OVER w END AS body_changed
FROM pages p
JOIN crawls c ON c.id = p.crawl_id
LEFT JOIN snapshots s ON s.sha256 = p.sha256
WINDOW w AS (PARTITION BY p.url ORDER BY {observed_order('p')});
CREATE VIEW page_observation_steps AS
SELECT o.*,
       pp.id AS prev_page_id,
       pp.crawl_id AS prev_crawl_id,
       coalesce(pp.fetched_at, pc.started_at) AS prev_fetched_at,
       CASE WHEN pp.id IS NULL THEN NULL WHEN pp.status IN (404, 410) THEN 'gone' ELSE 'ok' END AS prev_outcome,
       pp.sha256 AS prev_sha256,
       pp.detector_version AS prev_detector_version
FROM page_observations o
JOIN pages op ON op.id = o.page_id
LEFT JOIN pages pp ON pp.id = (
    SELECT q.id FROM pages q
    WHERE q.url = o.url AND {observed_order('q')} < {observed_order('op')} AND {is_observation('q')}
    ORDER BY {observed_order('q')} DESC LIMIT 1)
LEFT JOIN crawls pc ON pc.id = pp.crawl_id;
CREATE VIEW claim_changes AS
SELECT CASE WHEN EXISTS (SELECT 1 FROM pages sp
                         JOIN pages ep ON ep.url = sp.url AND {observed_order('ep')} < {observed_order('sp')}
                         JOIN claims e ON e.page_id = ep.id AND e.claim_key = c.claim_key
                         WHERE sp.id = s.page_id)
            THEN 'returned' ELSE 'new' END AS change,
       s.site, s.url, c.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.prev_page_id IS NULL THEN 'first observation of the page'
            WHEN s.prev_outcome = 'gone' THEN 'page is back'
            ELSE 'added to the page' END AS reason,
       c.id AS claim_id,
       CASE WHEN s.prev_page_id IS NULL THEN NULL ELSE s.sha256 IS NOT s.prev_sha256 END AS page_changed,
       CASE WHEN s.prev_page_id IS NULL THEN NULL
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       (SELECT r.verdict FROM reviews r WHERE r.claim_key = c.claim_key ORDER BY r.id DESC LIMIT 1) AS verdict
FROM page_observation_steps s
JOIN claims c ON c.page_id = s.page_id
WHERE s.outcome = 'ok'
  AND NOT EXISTS (SELECT 1 FROM claims d WHERE d.page_id = c.page_id AND d.claim_key = c.claim_key AND d.id < c.id)
  AND NOT (s.prev_outcome IS 'ok' AND EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.prev_page_id AND q.claim_key = c.claim_key))
UNION ALL
SELECT 'removed' AS change,
       s.site, s.url, c.claim_key, c.category, c.stance, c.sentence, c.text,
       s.crawl_id, s.fetched_at AS observed_at,
       s.prev_crawl_id, s.prev_fetched_at AS previous_observed_at,
       CASE WHEN s.outcome = 'gone' THEN 'page gone (HTTP ' || s.status || ')'
            ELSE 'no longer on the page' END AS reason,
       c.id AS claim_id,
       s.sha256 IS NOT s.prev_sha256 AS page_changed,
       CASE WHEN s.outcome = 'gone' THEN 0
            ELSE s.detector_version IS NOT s.prev_detector_version END AS detector_changed,
       (SELECT r.verdict FROM reviews r WHERE r.claim_key = c.claim_key ORDER BY r.id DESC LIMIT 1) AS verdict
FROM page_observation_steps s
JOIN claims c ON c.page_id = s.prev_page_id
WHERE s.prev_outcome = 'ok'
  AND NOT EXISTS (SELECT 1 FROM claims d WHERE d.page_id = c.page_id AND d.claim_key = c.claim_key AND d.id < c.id)
  AND (s.outcome = 'gone' OR NOT EXISTS (
        SELECT 1 FROM claims q WHERE q.page_id = s.page_id AND q.claim_key = c.claim_key));
CREATE VIEW claim_status AS
WITH seen AS (
    SELECT c.claim_key, c.site, c.url, min({observed_order('p')}) AS first_order,
           max({observed_order('p')}) AS last_order, count(DISTINCT o.crawl_id) AS crawls_seen
    FROM claims c JOIN page_observations o ON o.page_id = c.page_id AND o.outcome = 'ok'
    JOIN pages p ON p.id = o.page_id
    GROUP BY c.claim_key, c.site, c.url
),
life AS (
    SELECT seen.*,
           (SELECT r.id FROM pages r WHERE r.url = seen.url AND {observed_order('r')} > seen.last_order
             AND {is_observation('r')} ORDER BY {observed_order('r')} LIMIT 1) AS removed_page_id,
           (SELECT r.id FROM pages r WHERE r.url = seen.url AND {is_observation('r')}
             ORDER BY {observed_order('r')} DESC LIMIT 1) AS checked_page_id
    FROM seen
)
SELECT l.claim_key, l.site, l.url, c.category, c.stance, c.sentence, c.text,
       fp.crawl_id AS first_seen_crawl, coalesce(fp.fetched_at, fc.started_at) AS first_seen_at,
       op.crawl_id AS last_seen_crawl, coalesce(op.fetched_at, oc.started_at) AS last_seen_at,
       l.crawls_seen,
       l.removed_page_id IS NULL AS present,
       rp.crawl_id AS removed_in_crawl, coalesce(rp.fetched_at, rc.started_at) AS removed_observed_at,
       CASE WHEN rp.status IN (404, 410) THEN 'page gone (HTTP ' || rp.status || ')'
            WHEN rp.id IS NOT NULL THEN 'no longer on the page' END AS removed_reason,
       kp.crawl_id AS last_checked_crawl,
       c.id AS claim_id, c.detector_version,
       v.verdict, v.note AS verdict_note, v.reviewer, v.reviewed_at
FROM life l
JOIN pages op ON op.url = l.url AND {observed_order('op')} = l.last_order
JOIN crawls oc ON oc.id = op.crawl_id
JOIN pages fp ON fp.url = l.url AND {observed_order('fp')} = l.first_order
JOIN crawls fc ON fc.id = fp.crawl_id
JOIN pages kp ON kp.id = l.checked_page_id
JOIN claims c ON c.id = (SELECT min(id) FROM claims q WHERE q.page_id = op.id AND q.claim_key = l.claim_key)
LEFT JOIN pages rp ON rp.id = l.removed_page_id
LEFT JOIN crawls rc ON rc.id = rp.crawl_id
LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE claim_key = l.claim_key);
"""
