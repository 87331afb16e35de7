"""Scrapy settings of the stemwatch crawler.

Every value can be overridden on the command line (`scrapy crawl clinics
-s NAME=VALUE`, or `run_crawl(settings={...})`). Defaults are polite: a
research crawler visits clinic sites that never asked to be crawled.
"""

from crawler.seeds import MAX_URL_LENGTH

BOT_NAME = "stemwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# --- stemwatch's own settings --------------------------------------------
# SQLite database the pipeline writes to; without it the pipeline is off
# (the spider still runs, e.g. for `scrapy parse`).
STEMWATCH_DB = None
# Crawl to continue (set by `stemwatch crawl --resume`); None starts a new one.
STEMWATCH_CRAWL_ID = None
# Hosts that may be internal addresses (127.0.0.1 for the tests and the
# demo). Every other loopback/private/link-local/multicast/reserved address
# is refused, after DNS resolution and after every redirect.
STEMWATCH_ALLOW_HOSTS = []
# Pages fetched per site (one site = one seed's registrable domain).
STEMWATCH_MAX_PAGES_PER_SITE = 200
# Who runs the crawl: an e-mail or URL, put in the User-Agent so a site
# owner can reach a person. Override with --contact or -s STEMWATCH_CONTACT=.
STEMWATCH_CONTACT = "https://github.com/stemwatch/stemwatch"
# Pages written to SQLite per transaction, and the longest a fetched page
# waits before it is written.
STEMWATCH_BATCH_SIZE = 50
STEMWATCH_BATCH_SECONDS = 2.0
# Run the claim detector (in a separate process) on fetched pages.
STEMWATCH_DETECT = True
# Use robots.txt Sitemap: lines and /sitemap.xml to discover pages.
STEMWATCH_SITEMAPS = True
# Seconds between progress lines on the terminal (0: none).
STEMWATCH_PROGRESS_INTERVAL = 10.0
# Longest Retry-After (seconds) honoured; a longer one gives up on the page.
STEMWATCH_RETRY_AFTER_MAX = 120
# Content types read; anything else is recorded from its headers only and
# its body never downloaded.
STEMWATCH_TEXT_TYPES = [
    "text/html", "application/xhtml+xml", "text/plain", "application/pdf",
    "text/xml", "application/xml",
]

# Evidence capture (crawler/capture.py): every request and response written
# to a WARC as it happens, one set per crawl under STEMWATCH_WARC_DIR
# (`stemwatch crawl` puts it next to the database, DB.warc/), files rotated
# at STEMWATCH_WARC_MAX_BYTES.
STEMWATCH_WARC = True
STEMWATCH_WARC_DIR = None
STEMWATCH_WARC_MAX_BYTES = 1_000_000_000
# Also fetch each page's own stylesheets and images (same site, same
# politeness and address rules, at most STEMWATCH_PAGE_RESOURCES_MAX a page)
# into the capture, so it replays and renders as seen (--page-resources).
STEMWATCH_PAGE_RESOURCES = False
STEMWATCH_PAGE_RESOURCES_MAX = 30

# Rendering in headless Chromium (crawler/render.py), through scrapy-playwright,
# only where needed. STEMWATCH_RENDER: "off" (never), "auto" (the seeds whose
# render column says js, and pages the auto rule judges), "js" (every page).
STEMWATCH_RENDER = "auto"
# The auto rule: an HTML page with fewer visible words than this that runs a
# script is fetched again, rendered (0: no page is judged so).
STEMWATCH_RENDER_AUTO_WORDS = 25
# The browser: STEMWATCH_CHROMIUM (or that environment variable), else
# /usr/bin/chromium. Without it, or without scrapy-playwright, rendering is off
# (one warning) and the crawl is the plain one.
STEMWATCH_CHROMIUM = None
# Pages rendered at once (one browser, one context), the longest one page may
# take (seconds, then it is stored as the server sent it), and how long to wait
# after the load event for the network to go quiet (a script's data).
STEMWATCH_RENDER_PAGES = 2
STEMWATCH_RENDER_TIMEOUT = 30
STEMWATCH_RENDER_SETTLE = 2.0

# Distributed crawls (`stemwatch crawl --redis URL --workers N`, `stemwatch worker`;
# crawler/distributed/): seconds without a heartbeat before a worker counts as gone
# and its unfinished requests go back to the frontier; how often an idle worker or
# the writer looks at Redis; how many items may wait in Redis for the writer before
# workers slow down. The Redis server itself is named on the command line only.
STEMWATCH_REDIS_LEASE_TIMEOUT = 60.0
STEMWATCH_REDIS_POLL = 0.5
STEMWATCH_REDIS_MAX_ITEMS = 10_000

# --- identity ---------------------------------------------------------------
# %(contact)s is filled in from STEMWATCH_CONTACT by the spider at start.
USER_AGENT = "stemwatch/0.1 (+research crawler of stem-cell clinic marketing; contact: %(contact)s)"
ROBOTSTXT_OBEY = True

# --- politeness ---------------------------------------------------------------
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0  # seconds between requests to one site (jittered)
AUTOTHROTTLE_ENABLED = True  # slows down further when a site answers slowly
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# --- limits ---------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30  # seconds for one response, slow servers included
DNS_TIMEOUT = 20
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024  # larger bodies (or decompressed bodies:
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024  # gzip bombs) are refused, recorded as errors
RETRY_ENABLED = True
RETRY_TIMES = 2  # at most 3 tries of a page
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 5  # redirect loops end here, recorded as errors
METAREFRESH_MAXDELAY = 10
DEPTH_LIMIT = 5  # links from a seed page are depth 1
URLLENGTH_LIMIT = MAX_URL_LENGTH  # longer URLs are traps (session/calendar spaces); seeds are refused above it
# Breadth-first, so a page cap keeps the pages closest to the home page.
DEPTH_PRIORITY = 1
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

# Items handled in parallel per response. The pipeline is synchronous, so
# parallelism buys nothing, and Scrapy starts one asyncio task per slot for
# every response (the default of 100 costs ~1 ms a page).
CONCURRENT_ITEMS = 8

# 4xx/5xx pages reach the spider and are recorded with their status.
HTTPERROR_ALLOW_ALL = True

# --- components ---------------------------------------------------------------
# After name resolution: refuse internal addresses (crawler/resolver.py).
TWISTED_DNS_RESOLVER = "crawler.dns.GuardedResolver"
DOWNLOADER_MIDDLEWARES = {
    # Before anything else and again for every redirected request.
    "crawler.middlewares.PrivateAddressGuard": 50,
    # Scrapy's robots.txt middleware with its wait for a robots.txt being fetched
    # fixed (every waiting request gets the rules, not only the first).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxt": 100,
    # Sees responses just before RetryMiddleware (550; responses go through
    # middlewares in decreasing order): honours Retry-After on 429/503.
    "crawler.middlewares.RetryAfterMiddleware": 551,
    # Next to the downloader (above HttpCompressionMiddleware's 590 and the
    # stats at 850): sees each response as received and each request as sent.
    "crawler.capture.WarcCapture": 950,
}
ITEM_PIPELINES = {"crawler.pipelines.StoragePipeline": 300}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "crawler.extensions.Progress": 500,
    "crawler.extensions.ContentGate": 0,
}
# No listening ports during a crawl: no telnet console, and not Scrapy
# 2.19's remote-control HTTP server (on by default; it runs Python code
# sent to a local port).
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

LOG_LEVEL = "INFO"
LOGSTATS_INTERVAL = 0  # the Progress extension reports instead
FEED_EXPORT_ENCODING = "utf-8"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
