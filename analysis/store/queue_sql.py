"""SQL of the journalist's review queue (migration m012_queue_indexes).

The queue walks promoted claims in its own order (severity, then the detector's
confidence) and stops at a page of statements, so each request reads a few hundred
index entries, never every claim. That order is one indexed expression, RANK: the
index serves both the walk and the keyset that starts the next page.

Frozen once released: a migration's SQL never changes, and the queries of
analysis.store.queue must spell RANK exactly as the index does (SQLite matches an
indexed expression by its form).
"""

# Severity first (high 0, medium 1, anything else 2), then the score, highest first; a
# claim the rules found alone has no score and comes after every scored claim of its
# severity. Scores run from 0 to 1, so each severity owns a band of 3. Equal ranks go
# newest claim first (id descending): the latest crawl's rows before the older crawls'
# copies of the same claims, which the queue skips.
RANK = ("((CASE {a}severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END) * 3"
        " + 1 - coalesce({a}score, -1))")

# The statement a claim belongs to: its sentence, or for a list item or a paragraph
# under a heading ("Conditions we treat: … Autism spectrum disorder") the heading, so
# a list's conditions are one statement. Claims group by page and statement.
STATEMENT = ("lower(CASE WHEN instr({a}sentence, ' … ') > 0"
             " THEN substr({a}sentence, 1, instr({a}sentence, ' … ') - 1) ELSE {a}sentence END)")


def rank(alias: str = "") -> str:
    return RANK.format(a=f"{alias}." if alias else "")


def statement(alias: str = "") -> str:
    return STATEMENT.format(a=f"{alias}." if alias else "")


# The queue is walked along one of three orders, whichever its filter makes shortest
# (analysis.store.queue._driver): every promoted claim, one category's, or one site's
# latest crawl. Plus each site's latest crawl and each claim identity's crawls.
M012_QUEUE_INDEXES = f"""
CREATE INDEX IF NOT EXISTS idx_claims_queue ON claims ({rank()}, id DESC) WHERE stance = 'promoted';
CREATE INDEX IF NOT EXISTS idx_claims_queue_category ON claims (category, {rank()}, id DESC) WHERE stance = 'promoted';
CREATE INDEX IF NOT EXISTS idx_claims_queue_site ON claims (site, crawl_id, {rank()}, id DESC) WHERE stance = 'promoted';
CREATE INDEX IF NOT EXISTS idx_pages_site_crawl ON pages (site, crawl_id);
CREATE INDEX IF NOT EXISTS idx_claims_key_crawl ON claims (claim_key, crawl_id)
"""
