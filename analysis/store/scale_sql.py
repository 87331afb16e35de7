"""SQL of migration m013: the history views and the pages Datasette serves, planned
for a million claims. Same columns and same rows as before (tests/test_whatsnew.py
compares them on a fixture database); frozen once released, like history_sql.py.

* page_observation_steps finds a page's previous observation by index lookup
  (pages by url and crawl) instead of a window over every observation, so a
  filter on a crawl, a site or a URL reaches the pages table: claim_changes,
  which reads it, answers "what changed in crawl N" without reading every crawl.
* claim_status groups by (claim_key, site, url): the key determines the other two
  (it hashes them), so the groups are the same, and a filter on site or url now
  reaches the claims table instead of waiting for every group; the removing
  observation is looked up in pages (a LEFT JOIN of the page_observations view was
  built whole for every query).
* claim_counts: promoted and other claim rows per crawl, site, category and stance,
  kept by triggers on claims (whatever writes them: a crawl, reanalyze, a resume),
  so charts and counts over crawls read thousands of rows, not a million.
"""

from analysis.store.history_sql import M003_CLAIM_CHANGES

# An observation, as page_observations defines it, written for a row of pages `q`.
_OBSERVED = "(q.status IN (404, 410) OR (q.error IS NULL AND coalesce(q.status, 200) < 400 " \
            "AND q.detector_version IS NOT NULL))"

PAGE_OBSERVATION_STEPS = f"""
DROP VIEW page_observation_steps;
CREATE VIEW page_observation_steps AS
SELECT o.*,
       pp.id AS prev_page_id,
       pp.crawl_id AS prev_crawl_id,
       coalesce(pp.fetched_at, pc.started_at) AS prev_fetched_at,
       CASE WHEN pp.id IS NULL THEN NULL WHEN pp.status IN (404, 410) THEN 'gone' ELSE 'ok' END AS prev_outcome,
       pp.sha256 AS prev_sha256,
       pp.detector_version AS prev_detector_version
FROM page_observations o
LEFT JOIN pages pp ON pp.id = (
    SELECT q.id FROM pages q
    WHERE q.url = o.url AND q.crawl_id < o.crawl_id AND {_OBSERVED}
    ORDER BY q.crawl_id DESC LIMIT 1)
LEFT JOIN crawls pc ON pc.id = pp.crawl_id;
"""

# claim_changes as m003 wrote it, reading page_observation_steps in each half
# instead of through one CTE: a CTE read twice is materialised whole, so a filter on
# the crawl or the site never reached the pages table.
CLAIM_CHANGES = "DROP VIEW claim_changes;\n" + (
    M003_CLAIM_CHANGES.split("CREATE VIEW claim_changes AS", 1)[1]
    .replace("WITH steps AS (SELECT * FROM page_observation_steps)\n", "", 1)
    .replace("FROM steps s", "FROM page_observation_steps s"))
CLAIM_CHANGES = CLAIM_CHANGES.replace("\nSELECT", "\nCREATE VIEW claim_changes AS\nSELECT", 1)

CLAIM_STATUS = """
DROP VIEW claim_status;
CREATE VIEW claim_status AS
WITH seen AS (
    SELECT c.claim_key, c.site, c.url, min(o.crawl_id) AS first_seen_crawl,
           max(o.crawl_id) AS last_seen_crawl, count(DISTINCT o.crawl_id) AS crawls_seen
    FROM claims c JOIN page_observations o ON o.page_id = c.page_id AND o.outcome = 'ok'
    GROUP BY c.claim_key, c.site, c.url
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
       l.removed_in_crawl, coalesce(rp.fetched_at, rc.started_at) AS removed_observed_at,
       CASE WHEN rp.status IN (404, 410) THEN 'page gone (HTTP ' || rp.status || ')'
            WHEN rp.id IS NOT NULL THEN 'no longer on the page' END AS removed_reason,
       l.last_checked_crawl,
       c.id AS claim_id, c.detector_version,
       v.verdict, v.note AS verdict_note, v.reviewer, v.reviewed_at
FROM life l
JOIN page_observations o ON o.url = l.url AND o.crawl_id = l.last_seen_crawl
JOIN page_observations f ON f.url = l.url AND f.crawl_id = l.first_seen_crawl
JOIN claims c ON c.id = (SELECT min(id) FROM claims q WHERE q.page_id = o.page_id AND q.claim_key = l.claim_key)
LEFT JOIN pages rp ON rp.url = l.url AND rp.crawl_id = l.removed_in_crawl AND {observed}
LEFT JOIN crawls rc ON rc.id = rp.crawl_id
LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE claim_key = l.claim_key);
""".replace("{observed}", _OBSERVED.replace("q.", "rp."))

# The review queue reads a site's latest crawl by (site, crawl, stance), which also covers
# a facet by site of one stance; a claim's earlier crawls by (claim_key, crawl); each
# site's latest crawl by (site, crawl). No index leads with the stance: without ANALYZE
# the planner would take it for "stance = 'promoted' order by id desc" and sort most of
# the table instead of reading it backwards.
INDEXES = """
CREATE INDEX IF NOT EXISTS idx_claims_site_crawl_stance ON claims (site, crawl_id, stance);
CREATE INDEX IF NOT EXISTS idx_claims_key_crawl ON claims (claim_key, crawl_id);
CREATE INDEX IF NOT EXISTS idx_pages_site_crawl ON pages (site, crawl_id);
"""

CLAIM_COUNTS = """
CREATE TABLE claim_counts (
    crawl_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    category TEXT NOT NULL,
    stance TEXT NOT NULL,
    claims INTEGER NOT NULL,
    PRIMARY KEY (crawl_id, site, category, stance)
);
CREATE INDEX idx_claim_counts_stance_crawl ON claim_counts (stance, crawl_id, category);
CREATE INDEX idx_claim_counts_site ON claim_counts (site, stance, crawl_id);
INSERT INTO claim_counts (crawl_id, site, category, stance, claims)
SELECT crawl_id, site, category, stance, count(*) FROM claims
WHERE crawl_id IS NOT NULL AND site IS NOT NULL AND category IS NOT NULL AND stance IS NOT NULL
GROUP BY crawl_id, site, category, stance;
CREATE TRIGGER claim_counts_ai AFTER INSERT ON claims
WHEN new.crawl_id IS NOT NULL AND new.site IS NOT NULL AND new.category IS NOT NULL AND new.stance IS NOT NULL
BEGIN
    INSERT INTO claim_counts (crawl_id, site, category, stance, claims)
    VALUES (new.crawl_id, new.site, new.category, new.stance, 1)
    ON CONFLICT (crawl_id, site, category, stance) DO UPDATE SET claims = claims + 1;
END;
CREATE TRIGGER claim_counts_ad AFTER DELETE ON claims
BEGIN
    UPDATE claim_counts SET claims = claims - 1
    WHERE crawl_id = old.crawl_id AND site = old.site AND category = old.category AND stance = old.stance;
    DELETE FROM claim_counts
    WHERE crawl_id = old.crawl_id AND site = old.site AND category = old.category AND stance = old.stance
      AND claims <= 0;
END;
CREATE TRIGGER claim_counts_au AFTER UPDATE OF crawl_id, site, category, stance ON claims
BEGIN
    UPDATE claim_counts SET claims = claims - 1
    WHERE crawl_id = old.crawl_id AND site = old.site AND category = old.category AND stance = old.stance;
    DELETE FROM claim_counts
    WHERE crawl_id = old.crawl_id AND site = old.site AND category = old.category AND stance = old.stance
      AND claims <= 0;
    INSERT INTO claim_counts (crawl_id, site, category, stance, claims)
    SELECT new.crawl_id, new.site, new.category, new.stance, 1
    WHERE new.crawl_id IS NOT NULL AND new.site IS NOT NULL AND new.category IS NOT NULL AND new.stance IS NOT NULL
    ON CONFLICT (crawl_id, site, category, stance) DO UPDATE SET claims = claims + 1;
END;
"""

M013_SQL = PAGE_OBSERVATION_STEPS + CLAIM_CHANGES + CLAIM_STATUS + INDEXES + CLAIM_COUNTS


def statements(sql: str) -> list[str]:
    """The complete statements of `sql`, a trigger's body kept whole (its inner
    semicolons end no statement); executescript would commit the migration's transaction."""
    import sqlite3

    out, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:80]}")
    return out
