"""Reviewers sign in; only a signed-in reviewer records a verdict, under their own name.
A real `datasette` process (plain, as a newsroom would run it) over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from http.cookiejar import Cookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeSerializer

from analysis.cli import cli
from analysis.store.reviewers import add_reviewer
from analysis.web.signin import FAILED_SIGNIN_DELAY, GENERIC_FAILURE
from conftest import REPO, STEMWATCH, free_port, wait_for_http
from signin_helpers import PASSWORD, Browser, reviews
from test_serve import _seed_db

SECRET = "a secret for these tests only"  # so a test can forge the cookies an attacker could


@pytest.fixture
def site(fresh_db, db_path):
    """Plain `datasette` on a database with reviewers ana and ben (--crossdb: the other way in to a table)."""
    _seed_db(fresh_db)  # adds ana
    add_reviewer(fresh_db.db, "ben", PASSWORD)
    fresh_db.close()
    port = free_port()
    datasette = str(Path(sys.executable).with_name("datasette"))
    proc = subprocess.Popen([datasette, str(db_path), "--port", str(port), "--crossdb", "--secret", SECRET],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        yield base, db_path.stem
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _verdict(token: str, **extra) -> dict:
    return {"claim_id": "1", "verdict": "confirmed", "note": "seen", "csrftoken": token, **extra}


def _forged_actor(actor: dict) -> str:
    return URLSafeSerializer(SECRET, "actor").dumps({"a": actor})


def test_anonymous_reads_the_claim_but_records_nothing(site, db_path):
    base, name = site
    anonymous = Browser(base)
    status, page, _ = anonymous.open(f"/{name}/mark_claim?claim_id=1")
    assert status == 200 and "<mark>reverse autism</mark>" in page
    link = f'href="/-/stemwatch-login?next=%2F{name}%2Fmark_claim%3Fclaim_id%3D1">Sign in to record a verdict'
    assert link in page
    assert 'name="verdict"' not in page
    token = anonymous.token()  # a valid CSRF cookie and token, from the sign-in form
    status, body, _ = anonymous.open(f"/{name}/mark_claim", _verdict(token))
    assert status == 403 and "sign in as a reviewer" in body
    # An actor Datasette signed but stemwatch's sign-in did not make (root, another
    # plugin's) is not a reviewer, even named like one.
    forged = Browser(base)
    token = forged.token()
    forged.jar.set_cookie(_cookie("ds_actor", _forged_actor({"id": "ana"})))
    status, body, _ = forged.open(f"/{name}/mark_claim", _verdict(token))
    assert status == 403 and "sign in as a reviewer" in body
    assert reviews(db_path) == []
    # After signing in, back to a page of this Datasette only, never another site.
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        status, _, url = Browser(base).sign_in("ben", next_path=elsewhere)
        assert status == 200 and url == base + "/"
    # datasette-auth-passwords' "Log in" link (/-/login) leads to the reviewers' sign-in.
    status, page, url = Browser(base).open("/-/login")
    assert url == base + "/-/stemwatch-login" and 'name="password"' in page


def test_a_reviewer_signs_in_and_the_verdict_is_theirs(site, db_path):
    base, name = site
    review = f"/{name}/mark_claim?claim_id=1"
    browser = Browser(base)
    started = time.monotonic()
    wrong = browser.sign_in("ana", "not the password", next_path=review)
    unknown = browser.sign_in("nobody", PASSWORD, next_path=review)
    assert time.monotonic() - started >= 2 * FAILED_SIGNIN_DELAY  # each failure is slowed
    for status, body, _ in (wrong, unknown):  # one message, whichever part was wrong
        assert status == 403 and GENERIC_FAILURE in body and "nobody" not in body
    assert browser.cookie("ds_actor") is None

    status, page, url = browser.sign_in("ana", next_path=review)
    assert url == base + review and "Signed in as <strong>ana</strong>" in page and "Sign out" in page
    assert 'name="reviewer"' not in page
    # Signed in, but no CSRF token in the form: Datasette refuses it before stemwatch sees it.
    status, body, _ = browser.open(f"/{name}/mark_claim", {"claim_id": "1", "verdict": "confirmed"})
    assert status == 403 and reviews(db_path) == []
    # With the token: recorded under the signed-in name, whatever name the form sends.
    token = browser.token(review)
    status, body, _ = browser.open(f"/{name}/mark_claim", _verdict(token, reviewer="mallory"))
    assert status == 200 and "Verdict recorded." in body
    assert [(r["verdict"], r["reviewer"]) for r in reviews(db_path)] == [("confirmed", "ana")]
    # Signed out (Datasette's /-/logout), the same form records nothing.
    status, _, url = browser.open("/-/logout", {"csrftoken": token})
    assert status == 200 and browser.cookie("ds_actor") is None
    status, body, _ = browser.open(f"/{name}/mark_claim", _verdict(token))
    assert status == 403 and len(reviews(db_path)) == 1


def test_a_removed_or_disabled_reviewer_is_signed_out_at_once(site, db_path):
    base, name = site
    ana, ben = Browser(base), Browser(base)
    for browser, reviewer in ((ana, "ana"), (ben, "ben")):
        assert "Signed in as" in browser.sign_in(reviewer, next_path=f"/{name}/mark_claim?claim_id=1")[1]
    runner = CliRunner()
    assert runner.invoke(cli, ["users", "remove", "ana", "--db", str(db_path)]).exit_code == 0
    assert runner.invoke(cli, ["users", "disable", "ben", "--db", str(db_path)]).exit_code == 0
    for browser in (ana, ben):
        status, body, _ = browser.open(f"/{name}/mark_claim", _verdict(browser.cookie("ds_csrftoken")))
        assert status == 403 and "sign in as a reviewer" in body
    # ana added again is a new account: the old cookie stays dead. ben enabled is the same one.
    added = runner.invoke(cli, ["users", "add", "ana", "--db", str(db_path), "--password-stdin"],
                          input="another pw 2\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(cli, ["users", "disable", "ben", "--enable", "--db", str(db_path)]).exit_code == 0
    assert ana.open(f"/{name}/mark_claim", _verdict(ana.cookie("ds_csrftoken")))[0] == 403
    assert ben.open(f"/{name}/mark_claim", _verdict(ben.cookie("ds_csrftoken")))[0] == 200
    assert [r["reviewer"] for r in reviews(db_path)] == ["ben"]


def test_the_reviewers_table_is_never_served(site):
    """Hidden in the metadata it is only off the index: an SQLite authorizer on every
    connection Datasette opens refuses any statement that reads it, in any attached
    database, and its pages are forbidden."""
    base, name = site
    anyone = Browser(base)
    queries = ["select * from {t}", "select password_hash from {t} where name = 'ana'", "select count(*) from {t}",
               "select * from (select name, password_hash from {t})", "with r as (select * from {t}) select * from r"]
    where = [(f"/{name}.json", "reviewers"), (f"/{name}.json", "REVIEWERS"), (f"/{name}.csv", "main.reviewers"),
             ("/_memory.json", f"[{name}].reviewers")]  # --crossdb: every database attached to one
    for sql in queries:
        for path, table in where:
            status, body, _ = anyone.open(path + "?" + urlencode({"sql": sql.format(t=table)}))
            assert "pbkdf2_sha256$" not in body, (path, sql)
            if path.endswith(".csv"):  # Datasette's CSV of a failed query: empty, not an error
                assert body.strip() == "", (path, sql, body)
            else:
                assert status == 400 and '"rows": []' in body, (path, sql, body)
                assert "prohibited" in body or "not authorized" in body, (path, sql, body)
    for path in (f"/{name}/reviewers", f"/{name}/reviewers.json", f"/{name}/reviewers/ana.json",
                 f"/{name}/REVIEWERS.json", f"/{name}.db"):
        status, body, _ = anyone.open(path)
        assert status in (403, 404) and "pbkdf2" not in body, path
    status, body, _ = anyone.open(f"/{name}")
    assert status == 200 and f"/{name}/reviewers" not in body  # hidden from the database's index


def test_a_database_file_holding_password_hashes_is_not_downloadable(fresh_db, db_path):
    """Datasette offers the file of an immutable database (-i) for download: not once
    it holds a reviewer's hash."""
    from datasette.app import Datasette

    _seed_db(fresh_db)  # adds ana
    path = db_path.with_name("without.db")
    fresh_db.backup(path)
    fresh_db.close()
    CliRunner().invoke(cli, ["users", "remove", "ana", "--db", str(path)])
    ds = Datasette(immutables=[str(db_path), str(path)])
    with_hash = asyncio.run(ds.client.get(f"/{db_path.stem}.db"))
    without = asyncio.run(ds.client.get("/without.db"))
    assert with_hash.status_code == 403 and b"pbkdf2" not in with_hash.content
    assert without.status_code == 200 and without.content[:16] == b"SQLite format 3\x00"


def test_login_is_datasette_auth_passwords_own_where_it_has_accounts(db_path, fresh_db):
    """Where datasette-auth-passwords is configured with accounts of its own, its /-/login
    page is left to it."""
    from datasette.app import Datasette
    from datasette_auth_passwords.utils import hash_password

    fresh_db.close()
    config = {"plugins": {"datasette-auth-passwords": {"root_password_hash": hash_password(PASSWORD)}}}
    page = asyncio.run(Datasette([str(db_path)], metadata=config).client.get("/-/login"))
    assert page.status_code == 200 and 'name="username"' in page.text


def test_serve_on_a_public_address_needs_a_reviewer(db_path, fresh_db):
    """A non-loopback --host is refused while no reviewer can sign in (a disabled one
    cannot); with one, serve starts and answers to that address."""
    _seed_db(fresh_db)
    fresh_db.close()
    runner = CliRunner()
    runner.invoke(cli, ["users", "disable", "ana", "--db", str(db_path)])
    refused = runner.invoke(cli, ["serve", "--db", str(db_path), "--host", "127.0.0.2"])
    assert refused.exit_code == 1 and "no reviewer" in refused.output and "--public-read-only" in refused.output
    runner.invoke(cli, ["users", "disable", "ana", "--enable", "--db", str(db_path)])
    port = free_port()
    proc = subprocess.Popen([*STEMWATCH, "serve", "--db", str(db_path), "--host", "127.0.0.2", "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.2:{port}"
        wait_for_http(f"{base}/-/versions.json", proc=proc)
        status, page, _ = Browser(base).open(f"/{db_path.stem}/mark_claim?claim_id=1")
        assert status == 200 and "Sign in to record a verdict" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _cookie(name: str, value: str) -> Cookie:
    return Cookie(0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {})
