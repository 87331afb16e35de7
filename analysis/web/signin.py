"""Reviewers' sign-in to Datasette, and the walls around the reviewers table.

A reviewer signs in at /-/stemwatch-login with a name and password kept in the
database (analysis.store.reviewers); the signed-in actor travels in Datasette's
own signed ``ds_actor`` cookie, with the account stamp of each database whose
reviewer it is. Every write looks the reviewer up again, so removing or
disabling one stops their cookie at once. Sign-out is Datasette's /-/logout.

No connection Datasette opens may read or change the reviewers table (an SQLite
authorizer); the code here reads it through a connection of its own.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

import sqlite_utils
from datasette import hookimpl
from datasette.utils import baseconv
from itsdangerous import BadSignature

SIGNIN_PATH = "/-/stemwatch-login"
FAILED_SIGNIN_DELAY = 1.0  # seconds: guessing passwords through the form is slow
SIGNIN_HOURS = 12  # a working day; then the reviewer signs in again
GENERIC_FAILURE = "Wrong name or password."
READ_ONLY_SIGNIN = "This Datasette is served read-only: no verdict can be recorded here, so no one signs in."
REVIEWERS = "reviewers"
_TABLE_ACTIONS = frozenset({sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})


def read_only() -> bool:
    return os.environ.get("STEMWATCH_READ_ONLY") == "1"


# -- the reviewers table, out of Datasette's reach ------------------------------------
def refuse_reviewers(action: int, arg1, arg2, database, source) -> int:
    """SQLite authorizer: no statement may touch a table named reviewers, in any attached
    database (--crossdb) and through any view. Hiding the table in the metadata only keeps
    it off the index; `select * from reviewers` in /db?sql= reaches it otherwise."""
    if action in _TABLE_ACTIONS and (arg1 or "").lower() == REVIEWERS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@hookimpl
def prepare_connection(conn):
    conn.set_authorizer(refuse_reviewers)


@hookimpl
def permission_allowed(datasette, actor, action, resource):
    """The table's pages refused outright (403, not an SQL error), and the download of a
    database file that holds password hashes."""
    if action == "view-table" and isinstance(resource, (tuple, list)) and str(resource[1]).lower() == REVIEWERS:
        return False
    if action == "view-database-download":
        async def download_allowed():
            db = datasette.databases.get(resource)
            if db is None or REVIEWERS not in await db.table_names():
                return None
            hashes = await asyncio.to_thread(_with_reviewers, db, lambda reviewers: reviewers[REVIEWERS].count)
            return None if hashes == 0 else False  # None: unreadable, so refused too
        return download_allowed
    return None


def _reviewers_connection(db) -> sqlite3.Connection | None:
    """A read-only connection of our own to a served database file, without the
    authorizer: the one way the web reads reviewers."""
    if db.is_memory or not db.path:
        return None
    mode = "mode=ro" if db.is_mutable else "immutable=1"
    return sqlite3.connect(f"{Path(db.path).resolve().as_uri()}?{mode}", uri=True)


def _with_reviewers(db, fn, *args):
    """fn(sqlite_utils.Database, *args) on our own connection to `db`; None when it has no
    file or no usable reviewers table."""
    try:
        conn = _reviewers_connection(db)
        if conn is None:
            return None
        with closing(conn):
            return fn(sqlite_utils.Database(conn), *args)
    except sqlite3.Error:  # not a stemwatch reviewers table, or a file gone
        return None


# -- who is signed in ------------------------------------------------------------------
async def signed_in_reviewer(datasette, request, db) -> str | None:
    """The name of the signed-in reviewer of database `db`, looked up in its reviewers
    table now: None for anyone else, a removed or disabled reviewer among them."""
    from analysis.store.reviewers import is_active

    actor = request.actor or {}
    stamps, name = actor.get("stemwatch"), actor.get("id")
    stamp = stamps.get(db.name) if isinstance(stamps, dict) else None
    if not (isinstance(name, str) and isinstance(stamp, str)):
        return None
    active = await asyncio.to_thread(_with_reviewers, db, is_active, name, stamp)
    return name if active else None


def csrf_refusal(datasette, request, form: dict) -> str | None:
    """Why a POST's CSRF token is not good, or None. Datasette checks the token only of a
    request that carries cookies, so a cookie-less POST (curl, or a page on another site
    whose cross-site request the browser sends without cookies) is checked here too: the
    form's token must be this Datasette's signed ``ds_csrftoken`` cookie."""
    cookie = request.cookies.get("ds_csrftoken", "")
    token = form.get("csrftoken") or ""
    if not cookie or not token:
        return "send the form from this Datasette's own page (no CSRF token)"
    try:
        datasette.unsign(cookie, "csrftoken")
    except BadSignature:
        return "send the form from this Datasette's own page (CSRF cookie not signed here)"
    if not secrets.compare_digest(cookie, token):
        return "send the form from this Datasette's own page (CSRF token does not match)"
    return None


def signin_url(datasette, request) -> str:
    """The sign-in page, coming back to the page the request was for."""
    return datasette.urls.path(SIGNIN_PATH) + "?next=" + quote(request.full_path, safe="")


def safe_next(datasette, value: str) -> str:
    """Where to go after signing in: a path on this Datasette, never another site."""
    if value.startswith("/") and not value.startswith(("//", "/\\")) and value.isprintable():
        return value
    return datasette.urls.instance()


# -- signing in ------------------------------------------------------------------------
def _stamps(datasette, name: str, password: str) -> dict[str, str]:
    """Each served database in which `name` is a reviewer with this password: its stamp."""
    from analysis.store.reviewers import authenticate

    stamps = {}
    for db_name, db in list(datasette.databases.items()):
        if db_name.startswith("_"):
            continue
        stamp = _with_reviewers(db, authenticate, name, password)
        if stamp:
            stamps[db_name] = stamp
    return stamps


def actor_cookie(datasette, name: str, stamps: dict[str, str]) -> str:
    """The ``ds_actor`` value Datasette itself reads (its default actor_from_request),
    expiring after SIGNIN_HOURS."""
    expires = baseconv.base62.encode(int(time.time()) + SIGNIN_HOURS * 3600)
    return datasette.sign({"a": {"id": name, "stemwatch": stamps}, "e": expires}, "actor")


async def signin_view(datasette, request):
    from datasette.utils.asgi import Response

    form = dict(await request.post_vars()) if request.method == "POST" else {}
    next_path = safe_next(datasette, form.get("next") or request.args.get("next") or "")
    message, status = None, 200
    if read_only():
        message, status = READ_ONLY_SIGNIN, 403
    elif request.method == "POST":
        refusal = csrf_refusal(datasette, request, form)
        if refusal:
            message, status = f"Not signed in: {refusal}", 403
        else:
            name = (form.get("name") or "").strip().lower()
            stamps = await asyncio.to_thread(_stamps, datasette, name, form.get("password") or "")
            if stamps:
                response = Response.redirect(next_path)
                response.set_cookie("ds_actor", actor_cookie(datasette, name, stamps), max_age=SIGNIN_HOURS * 3600,
                                    httponly=True, secure=request.scheme == "https", samesite="lax")
                return response
            await asyncio.sleep(FAILED_SIGNIN_DELAY)
            message, status = GENERIC_FAILURE, 403
    html = await datasette.render_template(
        "stemwatch_login.html",
        {"next": next_path, "message": message, "form": not read_only(),
         "signin_path": datasette.urls.path(SIGNIN_PATH)},
        request=request)
    return Response.html(html, status=status)


async def login_alias(datasette, request):
    """/-/login, the page datasette-auth-passwords' "Log in" menu link points at. stemwatch
    uses only that plugin's hashing, so unless accounts of its own are configured, its page
    could sign no one in: it sends the reviewer to stemwatch's sign-in instead."""
    from datasette.utils.asgi import Response

    config = datasette.plugin_config("datasette-auth-passwords") or {}
    if any(key.endswith("_password_hash") for key in config):
        from datasette_auth_passwords import password_login

        return await password_login(request, datasette)
    query = f"?{request.query_string}" if request.query_string else ""
    return Response.redirect(datasette.urls.path(SIGNIN_PATH) + query)
