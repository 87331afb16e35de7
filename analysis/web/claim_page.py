"""One claim in context: /<db>/-/claim/<id>.

The claim's words marked in their paragraph with a few sentences either side (from the
page's stored text), its category and the warning it answers, why its stance is what
it is, first and last seen, every verdict so far, and the verdict form: confirmed,
false alarm or unsure, for the claim and, ticked by default, the other claims of its
statement (a list's other conditions), through reviews.add_review. Anyone may read it;
only a signed-in reviewer records a verdict, under their own name, by the plugin's
write_refusal rules (CSRF token, read-only, sign-in: analysis.web.signin).
"""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import parse_qsl

import sqlite_utils
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from analysis.display import visible
from analysis.store import queue as q
from analysis.store.database import StoreError, write_transaction
from analysis.store.reviews import MAX_NOTE, VERDICTS, add_review, review_history
from analysis.web.plugin import write_refusal
from analysis.web.signin import read_only, signed_in_reviewer, signin_url
from analysis.web.queue import claim_path, live_href, queue_filter, stemwatch_database, taxonomy, with_filter

ROUTE = r"^/(?P<database>[^/]+)/-/claim/(?P<claim_id>[0-9]{1,18})$"
AROUND = 2  # sentences shown before and after the claim's
REACH = 1500  # characters either side read for them, however long the page's lines
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
VERDICT_LABELS = {"confirmed": "Confirmed", "false-alarm": "False alarm", "unsure": "Unsure"}


def _sentences(text: str, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(start, end, line number) of each sentence of text[lo:hi], a line being a paragraph."""
    out, line_start = [], lo
    for n, line in enumerate(text[lo:hi].split("\n")):
        at = line_start
        for m in _SENTENCE_END.finditer(line):
            out.append((at, line_start + m.end(), n))
            at = line_start + m.end()
        if at < line_start + len(line):
            out.append((at, line_start + len(line), n))
        line_start += len(line) + 1
    return out


def context(text: str, start: int, end: int, around: int = AROUND, reach: int = REACH) -> list[Markup]:
    """The paragraphs around text[start:end], the words marked, `around` sentences
    either side; every piece shown through visible() and escaped. A cut inside a
    paragraph is shown as an ellipsis."""
    if not (0 <= start < end <= len(text)):
        return []
    lo, hi = max(0, start - reach), min(len(text), end + reach)
    spans = _sentences(text, lo, hi)
    first = next(i for i, s in enumerate(spans) if s[1] > start)
    last = next(i for i, s in enumerate(spans) if s[1] >= end)
    shown = spans[max(0, first - around):last + around + 1]
    if lo > 0 and shown[0] is spans[0] and len(shown) > 1 and first > 0:
        shown = shown[1:]  # cut at `reach`, not at a sentence
    paragraphs: list[list[Markup]] = []
    line = None
    for a, b, n in shown:
        if n != line:
            paragraphs.append([])
            line = n
        piece = [escape(visible(text[a:max(a, min(b, start))]))]
        if b > start and a < end:
            piece.append(Markup("<mark>{}</mark>").format(visible(text[max(a, start):min(b, end)])))
        piece.append(escape(visible(text[max(a, min(b, end)):b])))
        paragraphs[-1].append(Markup("").join(piece))
    return [Markup("").join(p) for p in paragraphs]


def stance_reason(claim: dict) -> str:
    """Why the stance is what it is, in words: the pattern that matched and the cue, if any."""
    pattern, cue = claim.get("pattern") or "", claim.get("cue") or ""
    if pattern == "learned":
        why = "found by the learned stage"
        if cue.startswith("learned:") and cue[len("learned:"):].strip():
            why += f", on the words: {cue[len('learned:'):].strip()}"
        return why
    why = f"the detector pattern {pattern} matched" if pattern else "a detector pattern matched"
    if cue and claim.get("stance") != "promoted":
        why += f"; the words around it ({cue}) make it {claim['stance']}"
    elif cue:
        why += f"; cue: {cue}"
    elif claim.get("stance") == "promoted":
        why += "; nothing around it denies, warns about or reports it"
    return why


def read_claim(conn: sqlite3.Connection, claim_id: int, f: q.QueueFilter) -> dict | None:
    db = sqlite_utils.Database(conn)
    claim = q.claim_in_context(db, claim_id)
    if claim is None:
        return None
    return {
        "claim": claim,
        "seen": q.sightings(db, claim["claim_key"]),
        "reviews": review_history(db, claim["claim_key"]),
        "statement": q.statement_claims(db, claim),
        "next_id": q.next_leader(db, f, q.queue_position(db, claim)),
    }


async def claim_view(datasette, request):
    name = request.url_vars["database"]
    claim_id = int(request.url_vars["claim_id"])
    db = await stemwatch_database(datasette, name)
    if db is None:
        return Response.html("No stemwatch database of that name", status=404)
    message, status, form = None, 200, {}
    reviewer = None if read_only() else await signed_in_reviewer(datasette, request, db)
    if request.method == "POST":
        form = parse_form(await request.post_body())
        refusal = write_refusal(datasette, request, form, reviewer)
        if refusal:
            return Response.html(f"<p>Not recorded: {escape(refusal)}</p>", status=403)
        f = queue_filter(form)
        try:
            recorded = await record(db, claim_id, form, reviewer)
        except StoreError as e:
            message, status = f"Not recorded: {e}", 400
        else:
            next_id = await db.execute_fn(lambda conn: next_after(conn, claim_id, f))
            datasette.add_message(request, f"Recorded {form.get('verdict')} for {recorded} claim"
                                           f"{'s' if recorded != 1 else ''}.", datasette.INFO)
            target = (claim_path(datasette, name, next_id) if next_id
                      else datasette.urls.database(name) + "/-/queue")
            return Response.redirect(with_filter(target, f))
    else:
        f = queue_filter(request.args)
    data = await db.execute_fn(lambda conn: read_claim(conn, claim_id, f))
    if data is None:
        return Response.html(f"No claim {claim_id} in {escape(name)}", status=404)
    page = {**claim_context(datasette, name, f, data, message, form),
            "reviewer": reviewer, "read_only": read_only(), "signin_url": signin_url(datasette, request)}
    html = await datasette.render_template("stemwatch_claim.html", page, request=request)
    return Response.html(html, status=status)


def claim_context(datasette, name: str, f: q.QueueFilter, data: dict, message: str | None, form: dict) -> dict:
    claim = data["claim"]
    tax = taxonomy()
    category = tax.categories.get(claim["category"])
    text = claim["page_text"] or ""
    words = text[claim["start"]:claim["end"]] == claim["text"] if claim["start"] is not None else False
    others = [c for c in data["statement"] if c["id"] != claim["id"]]
    queue_path = datasette.urls.database(name) + "/-/queue"
    return {
        "database": name, "claim": claim, "message": message,
        "site": visible(claim["site_name"]), "country": visible(claim["country"] or ""),
        "title": visible(claim["title"] or ""), "url": visible(claim["url"]), "live_url": live_href(claim["url"]),
        "text": visible(claim["text"]), "sentence": visible(claim["sentence"]),
        "paragraphs": context(text, claim["start"], claim["end"]) if words else [],
        "category": category, "stance_meaning": tax.stances.get(claim["stance"], ""),
        "stance_reason": visible(stance_reason(claim)),
        "seen": data["seen"], "reviews": [{**r, "note": visible(r.get("note")), "reviewer": visible(r.get("reviewer"))}
                                          for r in data["reviews"]],
        "others": [{**c, "text": visible(c["text"]), "checked": not c["verdict"]} for c in others],
        "verdicts": [(v, VERDICT_LABELS.get(v, v)) for v in VERDICTS], "max_note": MAX_NOTE,
        "note": form.get("note", ""),
        "filter": f, "filter_args": f.query(),
        "queue_href": with_filter(queue_path, f),
        "next_href": with_filter(claim_path(datasette, name, data["next_id"]), f) if data["next_id"] else None,
        "captured_href": claim_path(datasette, name, claim["id"]) + "/captured",
        "action": claim_path(datasette, name, claim["id"]),
    }


def next_after(conn: sqlite3.Connection, claim_id: int, f: q.QueueFilter) -> int | None:
    """The queue's next statement after this claim's."""
    db = sqlite_utils.Database(conn)
    claim = q.claim_in_context(db, claim_id)
    return q.next_leader(db, f, q.queue_position(db, claim)) if claim else None


def parse_form(body: bytes) -> dict:
    """The form's fields; `also` (the statement's other claims) may repeat."""
    form: dict = {"also": []}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if key == "also":
            form["also"].append(value)
        else:
            form[key] = value
    return form


async def record(db, claim_id: int, form: dict, reviewer: str) -> int:
    """One verdict for the claim and each ticked claim of its statement, all or none,
    under the signed-in reviewer's name."""
    def write(conn):
        store = sqlite_utils.Database(conn)
        claim = q.claim_in_context(store, claim_id)
        if claim is None:
            raise StoreError(f"no claim with id {claim_id}")
        siblings = {str(c["id"]) for c in q.statement_claims(store, claim)}
        ids = [str(claim_id)] + [i for i in dict.fromkeys(form["also"]) if i in siblings and i != str(claim_id)]
        with write_transaction(store):
            for ref in ids:
                add_review(store, ref, form.get("verdict") or "", form.get("note"), reviewer)
        return len(ids)

    return await db.execute_write_fn(write, block=True)
