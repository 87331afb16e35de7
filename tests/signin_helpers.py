"""A reviewer's browser over plain HTTP: a cookie jar, the forms' CSRF token, signing in."""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

PASSWORD = "correct horse battery"


class Browser:
    """urllib with cookies, answering (status, body, final URL) for 4xx and 5xx too."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, path: str, form: dict | None = None, cookies: bool = True) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data)
        opener = self.opener if cookies else urllib.request.build_opener()
        try:
            with opener.open(request, timeout=15) as r:
                return r.status, r.read().decode("utf-8"), r.geturl()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8"), e.geturl()

    def token(self, path: str = "/-/stemwatch-login") -> str:
        """The CSRF token of the form on `path` (its cookie lands in the jar)."""
        status, body, _ = self.open(path)
        return re.search(r'name="csrftoken" value="([^"]+)"', body).group(1)

    def sign_in(self, name: str, password: str = PASSWORD, next_path: str = "/") -> tuple[int, str, str]:
        form = {"csrftoken": self.token(), "name": name, "password": password, "next": next_path}
        return self.open("/-/stemwatch-login", form)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def reviews(db_path) -> list[dict]:
    conn = sqlite3.connect(str(db_path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from reviews order by id")]
    finally:
        conn.close()
