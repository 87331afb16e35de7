"""A distributed crawl's shared state in Redis, and every operation on it.

All keys of one crawl start with ``stemwatch:{KEY}:`` (KEY = "<crawl id>-<random>",
printed by `stemwatch crawl --redis`; the braces keep a crawl's keys in one
Redis Cluster slot). Every operation that must not be torn in two is one Lua
script, so a process killed at any moment leaves the state consistent:

| key | type | holds |
|---|---|---|
| config | string | the crawl: id, seeds, settings, WARC folder, politeness and caps (JSON) |
| state | string | "running", then "done" |
| start | list | seeds (and, resuming from the database, its frontier) not yet turned into requests |
| starting:W | list | start entries worker W is turning into requests |
| requests | zset | the frontier: serialised requests, score = -priority (scrapy-redis's PriorityQueue) |
| leases:W | zset | requests worker W popped and has not finished (member and score as in requests) |
| workers | zset | live workers, score = last heartbeat (Redis server time, ms) |
| dupefilter | set | request fingerprints (scrapy-redis's RFPDupeFilter: page resources) |
| seen, pages, patterns, sitemaps | set, hashes | admitted URLs and the per-site / per-pattern / per-site sitemap counters |
| items, writing, item | lists, hash | item ids waiting for the writer / taken by it, and the items by id |
| writer | string | the writer's lock (with a TTL) |
| site:S, active:S | hash, zset | site S's politeness: next start time and delay; transfers in flight |
| holds:W | set | the transfers worker W has in flight ("site|token") |
| stats | hash | each worker's final Scrapy stats (JSON) |

Work is never only in a process's memory: a request is either in `requests` or
in one worker's `leases:W` (moved in one step); a worker takes a request off
its lease only after everything the request produced (new requests, its item)
is in Redis; a worker whose heartbeat stops has its leases and start entries
put back (`recover`). Items likewise move from `items` to `writing` and leave
only when the database has committed them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

PREFIX = "stemwatch"

# Redis server time in milliseconds: one clock for every machine of the crawl.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS: requests, leases:W, workers   ARGV: worker, how many
POP_REQUESTS = _NOW + """
local r = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[2]))
local out = {}
for i = 1, #r, 2 do
  redis.call('ZADD', KEYS[2], r[i + 1], r[i])
  out[#out + 1] = r[i]
end
if #out > 0 then redis.call('ZADD', KEYS[3], now, ARGV[1]) end
return out
"""

# KEYS: start, starting:W, workers   ARGV: worker
POP_START = _NOW + """
local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if v then redis.call('ZADD', KEYS[3], now, ARGV[1]) end
return v
"""

# KEYS: requests, seen, pages, patterns, sitemaps
# ARGV: kind, member, site, pattern, max_pages, max_per_pattern, max_sitemaps, score, data
ADMIT = """
local kind = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 'seen' end
if kind == 'page' then
  if tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0') >= tonumber(ARGV[5]) then return 'site_cap' end
  local per_pattern = tonumber(ARGV[6])
  if per_pattern > 0 and tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0') >= per_pattern then
    return 'pattern_cap'
  end
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
elseif kind == 'sitemap' then
  if tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '0') >= tonumber(ARGV[7]) then return 'sitemap_cap' end
  redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[8], ARGV[9])
return 'ok'
"""

# KEYS: item, items   ARGV: id, data — the item and its id together; returns how many wait
PUSH_ITEM = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('RPUSH', KEYS[2], ARGV[1])
"""

# Puts back what workers hold: those given in ARGV[2..] or, with ARGV[1] > 0, every worker
# whose heartbeat is older than ARGV[1] ms. KEYS: workers, requests, start   ARGV: timeout, prefix, worker...
RECOVER = _NOW + """
local gone = {}
if tonumber(ARGV[1]) > 0 then
  gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
else
  for i = 3, #ARGV do gone[#gone + 1] = ARGV[i] end
end
local back = 0
for _, w in ipairs(gone) do
  local leases = ARGV[2] .. 'leases:' .. w
  back = back + redis.call('ZCARD', leases)
  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], leases, 'AGGREGATE', 'MIN')
  redis.call('DEL', leases)
  local starting = ARGV[2] .. 'starting:' .. w
  while redis.call('LMOVE', starting, KEYS[3], 'RIGHT', 'LEFT') do back = back + 1 end
  local holds = ARGV[2] .. 'holds:' .. w
  for _, h in ipairs(redis.call('SMEMBERS', holds)) do
    local cut = string.find(h, '|', 1, true)
    redis.call('ZREM', ARGV[2] .. 'active:' .. string.sub(h, 1, cut - 1), string.sub(h, cut + 1))
  end
  redis.call('DEL', holds)
  redis.call('ZREM', KEYS[1], w)
end
return {#gone, back}
"""

# KEYS: start, requests, items, workers, config   ARGV: prefix
# 1: nothing left anywhere; 0: work left; -1: the crawl's state is gone (a Redis server
# restarted without its data), which must not pass for a finished crawl.
FINISHED = """
if redis.call('EXISTS', KEYS[5]) == 0 then return -1 end
if redis.call('LLEN', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 or redis.call('LLEN', KEYS[3]) > 0 then
  return 0
end
for _, w in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if redis.call('ZCARD', ARGV[1] .. 'leases:' .. w) > 0 or redis.call('LLEN', ARGV[1] .. 'starting:' .. w) > 0 then
    return 0
  end
end
return 1
"""

# KEYS: items, writing, item   ARGV: n
TAKE_ITEMS = """
local ids = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not v then break end
  ids[#ids + 1] = v
end
if #ids == 0 then return {} end
local out = {}
local data = redis.call('HMGET', KEYS[3], unpack(ids))
for i, id in ipairs(ids) do out[#out + 1] = id; out[#out + 1] = data[i] or '' end
return out
"""

# KEYS: site:S, active:S, holds:W   ARGV: token, concurrency, delay ms (start), lease ms, site
# Returns 0 when granted, else how many ms to wait (-1: the site is at its concurrency).
# holds:W lists W's leases, so that a dead worker's are freed when it is found gone,
# not only when they run out.
ACQUIRE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now < nxt then return nxt - now end
local delay = tonumber(redis.call('HGET', KEYS[1], 'delay') or ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
redis.call('SADD', KEYS[3], ARGV[5] .. '|' .. ARGV[1])
redis.call('HSET', KEYS[1], 'next', now + delay)
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('PEXPIRE', KEYS[2], 86400000)
return 0
"""

# KEYS: site:S, active:S, holds:W   ARGV: token, latency ms (-1: no response), status,
#       autothrottle (0/1), target concurrency, min delay ms, max delay ms, start delay ms, site
# AutoThrottle's rule (scrapy.extensions.throttle), on the one delay all workers share.
RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[9] .. '|' .. ARGV[1])
local latency = tonumber(ARGV[2])
if ARGV[4] ~= '1' or latency < 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], 'delay') or ARGV[8])
local target = latency / tonumber(ARGV[5])
local new = math.max(target, (old + target) / 2)
new = math.min(math.max(tonumber(ARGV[6]), new), tonumber(ARGV[7]))
if ARGV[3] ~= '200' and new <= old then return 0 end
redis.call('HSET', KEYS[1], 'delay', math.floor(new))
return 0
"""

# KEYS: site:S   ARGV: ms — Retry-After: the site's next request waits at least that long.
HOLD = _NOW + """
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now + tonumber(ARGV[1]) > nxt then redis.call('HSET', KEYS[1], 'next', now + tonumber(ARGV[1])) end
return 0
"""


class StateLost(Exception):
    """The crawl's keys are gone from Redis (restarted without persistence, flushed)."""


def new_crawl_key(crawl_id: int) -> str:
    return f"{crawl_id}-{secrets.token_hex(4)}"


def worker_name() -> str:
    """Unique across machines and restarts; used in WARC file names, so [A-Za-z0-9-] only."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")[:24] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Politeness:
    """What every worker enforces together, per site (from the crawl's settings)."""

    concurrency: int  # CONCURRENT_REQUESTS_PER_DOMAIN
    delay: float  # DOWNLOAD_DELAY: the least time between two requests to a site
    autothrottle: bool
    start_delay: float
    max_delay: float
    target_concurrency: float
    lease_seconds: float  # a request's hold on its site, should its worker die mid-download

    @classmethod
    def from_settings(cls, settings) -> "Politeness":
        delay = settings.getfloat("DOWNLOAD_DELAY")
        autothrottle = settings.getbool("AUTOTHROTTLE_ENABLED")
        return cls(
            concurrency=max(1, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")),
            delay=delay, autothrottle=autothrottle,
            start_delay=max(delay, settings.getfloat("AUTOTHROTTLE_START_DELAY")) if autothrottle else delay,
            max_delay=max(delay, settings.getfloat("AUTOTHROTTLE_MAX_DELAY")),
            target_concurrency=max(settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY"), 0.01),
            lease_seconds=settings.getfloat("DOWNLOAD_TIMEOUT") + 10,
        )


@dataclass(frozen=True)
class Caps:
    """Page caps and trap limits, counted in Redis for all workers together."""

    max_pages: int
    max_per_pattern: int
    max_sitemaps: int


@dataclass
class CrawlConfig:
    crawl_id: int
    seeds: list[dict]
    settings: dict  # the crawl's overrides, as recorded
    warc_dir: str | None
    politeness: Politeness
    caps: Caps
    lease_timeout: float  # seconds without a heartbeat before a worker's work is put back
    extra: dict = field(default_factory=dict)

    def dumps(self) -> str:
        d = {k: getattr(self, k) for k in ("crawl_id", "seeds", "settings", "warc_dir", "lease_timeout", "extra")}
        d["politeness"] = self.politeness.__dict__
        d["caps"] = self.caps.__dict__
        return json.dumps(d, default=str)

    @classmethod
    def loads(cls, raw: bytes | str) -> "CrawlConfig":
        d = json.loads(raw)
        return cls(crawl_id=d["crawl_id"], seeds=d["seeds"], settings=d["settings"], warc_dir=d["warc_dir"],
                   politeness=Politeness(**d["politeness"]), caps=Caps(**d["caps"]),
                   lease_timeout=d["lease_timeout"], extra=d.get("extra") or {})


class RedisCrawl:
    """One distributed crawl's state (see the module's docstring)."""

    def __init__(self, server, key: str):
        self.server = server
        self.key = key
        self.prefix = f"{PREFIX}:{{{key}}}:"
        self._scripts: dict[str, Any] = {}
        self._scripts_loaded = False

    def k(self, name: str) -> str:
        return self.prefix + name

    def _script(self, source: str):
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.server.register_script(source)
        return script

    # -- the crawl -------------------------------------------------------------
    def create(self, config: CrawlConfig, starts: list[dict]) -> None:
        pipe = self.server.pipeline(transaction=True)
        pipe.set(self.k("config"), config.dumps())
        pipe.set(self.k("state"), "running")
        for entry in starts:
            pipe.rpush(self.k("start"), json.dumps(entry, default=str))
        pipe.execute()

    def config(self) -> CrawlConfig | None:
        raw = self.server.get(self.k("config"))
        return CrawlConfig.loads(raw) if raw else None

    def state(self) -> str | None:
        raw = self.server.get(self.k("state"))
        return raw.decode() if raw else None

    def set_state(self, state: str, expire: int | None = None) -> None:
        self.server.set(self.k("state"), state, ex=expire)

    def prime(self, stored: list[tuple[str, str]], pattern) -> None:
        """A crawl rebuilt from the database (its Redis state lost): pages stored are seen and counted."""
        pipe = self.server.pipeline(transaction=False)
        for n, (url, site) in enumerate(stored, 1):
            pipe.sadd(self.k("seen"), url)
            pipe.hincrby(self.k("pages"), site, 1)
            pipe.hincrby(self.k("patterns"), pattern(url), 1)
            if n % 1000 == 0:
                pipe.execute()
        pipe.execute()

    def finished(self) -> bool:
        keys = [self.k("start"), self.k("requests"), self.k("items"), self.k("workers"), self.k("config")]
        done = int(self._script(FINISHED)(keys=keys, args=[self.prefix]))
        if done < 0:
            raise StateLost(f"the state of crawl {self.key} is gone from Redis")
        return bool(done)

    def counts(self) -> dict[str, int]:
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(self.k("requests"))
        pipe.llen(self.k("items"))
        pipe.zrange(self.k("workers"), 0, -1)
        queued, items, workers = pipe.execute()
        pipe = self.server.pipeline(transaction=False)
        for w in workers:
            pipe.zcard(self.k("leases:" + w.decode()))
        leased = sum(pipe.execute()) if workers else 0
        return {"queued": queued, "items": items, "workers": len(workers), "in_flight": leased}

    def cleanup(self) -> None:
        """Every key of the crawl, but a short-lived "done" that late workers read."""
        batch = []
        for name in self.server.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self.server.delete(*batch)
                batch = []
        if batch:
            self.server.delete(*batch)
        self.set_state("done", expire=3600)

    # -- workers ---------------------------------------------------------------------
    def heartbeat(self, worker: str) -> None:
        t = self.server.time()
        self.server.zadd(self.k("workers"), {worker: t[0] * 1000 + t[1] // 1000})

    def recover(self, timeout: float) -> tuple[int, int]:
        """Workers silent for `timeout` seconds are gone: their work goes back. (workers, entries)."""
        gone, back = self._script(RECOVER)(
            keys=[self.k("workers"), self.k("requests"), self.k("start")],
            args=[max(1, int(timeout * 1000)), self.prefix])
        return int(gone), int(back)

    def release_worker(self, worker: str) -> int:
        """A worker leaving: what it still holds goes back, and it is no longer counted."""
        _, back = self._script(RECOVER)(
            keys=[self.k("workers"), self.k("requests"), self.k("start")], args=[0, self.prefix, worker])
        return int(back)

    def save_worker_stats(self, worker: str, stats: dict) -> None:
        if self.server.exists(self.k("config")):
            self.server.hset(self.k("stats"), worker, json.dumps(stats, default=str))

    def worker_stats(self) -> dict[str, dict]:
        return {w.decode(): json.loads(v) for w, v in self.server.hgetall(self.k("stats")).items()}

    def live_workers(self) -> int:
        return self.server.zcard(self.k("workers"))

    # -- start entries -----------------------------------------------------------------
    def pop_start(self, worker: str) -> bytes | None:
        return self._script(POP_START)(
            keys=[self.k("start"), self.k("starting:" + worker), self.k("workers")], args=[worker]) or None

    def ack_start(self, worker: str, raw: bytes) -> None:
        self.server.lrem(self.k("starting:" + worker), 1, raw)

    # -- requests -----------------------------------------------------------------------
    def enqueue(self, batch: list[tuple[list | None, float, bytes]], caps: Caps,
                items: list[tuple[str, bytes]] = ()) -> tuple[list[str], int | None]:
        """Queue requests, (admit, score, data) each, and push items, (id, data) each, in
        one round trip. A request with `admit` ([kind, seen-set member, site, URL
        pattern]: a new page, robots.txt or sitemap) is queued unless seen or over a cap,
        checked and counted in the same step; the others are queued as they are. Returns
        "ok" or why not for each request, and how many items wait for the writer (None
        without items)."""
        from redis.exceptions import NoScriptError

        keys = [self.k("requests"), self.k("seen"), self.k("pages"), self.k("patterns"), self.k("sitemaps")]
        admit_sha, push_sha = self._script(ADMIT).sha, self._script(PUSH_ITEM).sha
        if not self._scripts_loaded:
            # loaded once: a pipeline holding a Script object asks SCRIPT EXISTS every time
            self.server.script_load(ADMIT)
            self.server.script_load(PUSH_ITEM)
            self._scripts_loaded = True
        pipe = self.server.pipeline(transaction=False)
        for admit, score, data in batch:
            if admit is None:
                pipe.zadd(self.k("requests"), {data: score})
            else:
                kind, member, site, pattern = admit
                pipe.evalsha(admit_sha, len(keys), *keys, kind, member, site, pattern, caps.max_pages,
                             caps.max_per_pattern, caps.max_sitemaps, score, data)
        for item_id, data in items:
            pipe.evalsha(push_sha, 2, self.k("item"), self.k("items"), item_id, data)
        try:
            replies = pipe.execute()
        except NoScriptError:
            # the server lost its scripts (restarted): none ran; queueing twice is harmless,
            # and an item pushed twice is stored once
            self._scripts_loaded = False
            return self.enqueue(batch, caps, items)
        verdicts = ["ok" if admit is None else (v.decode() if isinstance(v, bytes) else str(v))
                    for (admit, _, _), v in zip(batch, replies)]
        return verdicts, (int(replies[-1]) if items else None)

    def mark_seen(self, member: str) -> None:
        self.server.sadd(self.k("seen"), member)

    def pop_requests(self, worker: str, n: int) -> list[bytes]:
        """Up to n requests, highest priority first, leased to `worker` in the same step."""
        return self._script(POP_REQUESTS)(
            keys=[self.k("requests"), self.k("leases:" + worker), self.k("workers")], args=[worker, n])

    def ack_requests(self, worker: str, members: list[bytes]) -> None:
        if members:
            self.server.zrem(self.k("leases:" + worker), *members)

    # -- items ----------------------------------------------------------------------------
    def waiting_items(self) -> int:
        return self.server.llen(self.k("items"))

    def take_items(self, n: int) -> list[tuple[bytes, bytes]]:
        flat = self._script(TAKE_ITEMS)(keys=[self.k("items"), self.k("writing"), self.k("item")], args=[n])
        return list(zip(flat[::2], flat[1::2]))

    def ack_items(self, ids: list[bytes]) -> None:
        if not ids:
            return
        pipe = self.server.pipeline(transaction=True)
        for item_id in ids:
            pipe.lrem(self.k("writing"), 1, item_id)
        pipe.hdel(self.k("item"), *ids)
        pipe.execute()

    def requeue_writing(self) -> int:
        """Items a killed writer had taken but not committed go back, first in line."""
        n = 0
        while self.server.lmove(self.k("writing"), self.k("items"), "RIGHT", "LEFT") is not None:
            n += 1
        return n

    def lock_writer(self, token: str, seconds: float) -> bool:
        ms = max(1000, int(seconds * 1000))
        key = self.k("writer")
        if self.server.set(key, token, nx=True, px=ms):
            return True
        if self.server.get(key) == token.encode():
            self.server.pexpire(key, ms)
            return True
        return False

    def unlock_writer(self, token: str) -> None:
        if self.server.get(self.k("writer")) == token.encode():
            self.server.delete(self.k("writer"))

    # -- politeness ------------------------------------------------------------------------
    def acquire_site(self, site: str, worker: str, token: str, p: Politeness) -> int:
        keys = [self.k("site:" + site), self.k("active:" + site), self.k("holds:" + worker)]
        start = p.start_delay if p.autothrottle else p.delay
        return int(self._script(ACQUIRE)(keys=keys, args=[token, p.concurrency, int(start * 1000),
                                                          int(p.lease_seconds * 1000), site]))

    def release_site(self, site: str, worker: str, token: str, p: Politeness, latency: float | None,
                     status: int | None):
        keys = [self.k("site:" + site), self.k("active:" + site), self.k("holds:" + worker)]
        self._script(RELEASE)(keys=keys, args=[
            token, -1 if latency is None else int(latency * 1000), status or 0, int(p.autothrottle),
            p.target_concurrency, int(p.delay * 1000), int(p.max_delay * 1000),
            int((p.start_delay if p.autothrottle else p.delay) * 1000), site])

    def hold_site(self, site: str, seconds: float) -> None:
        self._script(HOLD)(keys=[self.k("site:" + site)], args=[int(seconds * 1000)])
