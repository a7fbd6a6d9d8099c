"""Who may see the dashboard, and proof that a form was posted from it (CSRF).

The app decides who gets in: an ``AuthHook`` runs before every dashboard page and action and returns
None to let the request through or a response (401, 403, a redirect to a login) to stop it.
``basic_auth`` is the default hook, HTTP basic auth against one user and password.

Actions are POSTed forms. Each form carries a token, an HMAC of a random value that the dashboard
also keeps in a cookie (``SameSite=Strict``, ``HttpOnly``). A page on another site can make the
browser send that cookie (without SameSite) but can read neither it nor the token, so it cannot post a
form that passes; the HMAC's key is the app's, so a cookie planted from a sibling domain fails too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, request

#: Runs before each dashboard request: None lets it through, a response answers instead.
AuthHook = Callable[[], Response | None]

CSRF_COOKIE = "durable_dashboard_csrf"
CSRF_FIELD = "csrf_token"


def basic_auth(user: str, password: str, realm: str = "durable dashboard") -> AuthHook:
    """An AuthHook that requires HTTP basic auth with ``user`` and ``password``."""
    if not user or not password:
        raise ValueError("basic_auth needs a user name and a non-empty password")
    expected = hashlib.sha256(f"{user}:{password}".encode()).digest()

    def check() -> Response | None:
        given = request.authorization
        if given is not None and given.type == "basic":
            offered = hashlib.sha256(f"{given.username or ''}:{given.password or ''}".encode()).digest()
            if hmac.compare_digest(offered, expected):  # constant time: the comparison leaks nothing
                return None
        return Response("authentication required\n", 401, {
            "WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"', "Content-Type": "text/plain"})

    return check


def deny_all() -> Response | None:
    """The hook of a dashboard configured with none: it answers nobody."""
    return Response("the dashboard has no auth hook configured\n", 403, {"Content-Type": "text/plain"})


class Csrf:
    """Issue and check form tokens bound to a cookie, under the app's secret key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the dashboard's CSRF secret needs at least 16 bytes")
        self.secret = secret

    def token_for(self, nonce: str) -> str:
        digest = hmac.new(self.secret, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def nonce(self) -> tuple[str, bool]:
        """This browser's nonce, and whether it is new (then the response must set the cookie)."""
        found = request.cookies.get(CSRF_COOKIE, "")
        if 20 <= len(found) <= 100:
            return found, False
        return secrets.token_urlsafe(32), True

    def problem(self) -> str | None:
        """Why this POST is not from the dashboard's own form, or None when it is."""
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            return "the form was posted from another site"
        nonce = request.cookies.get(CSRF_COOKIE, "")
        token = request.form.get(CSRF_FIELD, "")
        if not nonce or not token or not hmac.compare_digest(token, self.token_for(nonce)):
            return "the form's CSRF token is missing or does not match; reload the page and try again"
        return None
