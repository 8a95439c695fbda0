"""The session cookie: participants embedded on another site must keep it too.

A participant page in an iframe on another site (``?embed=1``) is a cross-site context, where a
``SameSite=Lax`` cookie is never sent: each vote would make a new participant. Over HTTPS the
cookie is therefore ``SameSite=None; Secure``. That is safe here because nothing a cross-site
request can send writes anything: every writing route takes only ``application/json``, which a
form cannot send and a script on another origin cannot send without a CORS pre-flight that this
service never grants. Over plain HTTP (development) browsers refuse ``SameSite=None`` without
``Secure``, so the cookie stays ``Lax`` and embedding on another site needs HTTPS.

A cookie that holds a staff sign-in stays ``Lax`` over HTTPS too: the import route takes a
multipart upload, which a form on another site can send, so an admin's cookie must not go with
another site's POST. Staff do not take part through embedded pages.

A participant's cookie lasts a year from when it was last sent, and is sent again (its year
renewed) when it is a day old, not with every answer: signing it cost more than choosing the
next statement.

"Over HTTPS" is ``request.is_secure``: behind a reverse proxy that ends TLS, it needs
``POLIS_LIKE_PROXY_HOPS`` (``server/app.py`` then trusts the proxies' ``X-Forwarded-Proto``).
"""

from __future__ import annotations

import functools
import time

from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer

#: A cookie that has not changed is sent again once it is this old.
RENEW_AFTER_S = 24 * 3600


class Session(SecureCookieSession):
    #: When the request's cookie was signed (seconds since the epoch); None: no cookie came.
    signed_at: float | None = None


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, cross-site over HTTPS, renewed daily (see the module's
    docstring)."""

    session_class = Session

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # One per app and key, not one per request.
        key = app.secret_key
        cached = app.extensions.get("polis_like.cookie_signer")
        if cached is None or cached[0] != key:
            cached = (key, super().get_signing_serializer(app))
            app.extensions["polis_like.cookie_signer"] = cached
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> Session | None:
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return Session()
        try:
            data, signed_at = _verified(signer, value)
        except BadSignature:
            return Session()
        if time.time() - signed_at > app.permanent_session_lifetime.total_seconds():
            return Session()  # expired
        opened = Session(data)  # a copy: the cached one stays as it was signed
        opened.signed_at = signed_at
        return opened

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        signed_at = getattr(session, "signed_at", None)
        return session.permanent and (signed_at is None or time.time() - signed_at > RENEW_AFTER_S)

    def get_cookie_samesite(self, app: Flask) -> str | None:
        if request.is_secure and "account" not in session:
            return "None"
        return app.config["SESSION_COOKIE_SAMESITE"]

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or bool(app.config["SESSION_COOKIE_SECURE"])


@functools.lru_cache(maxsize=8192)
def _verified(signer: URLSafeTimedSerializer, value: str) -> tuple[dict, float]:
    """The data of a cookie and when it was signed, its signature checked once while the
    participant keeps sending it (a participant sends the same cookie with each vote for a
    day); :class:`BadSignature` when it is not ours. Its values are strings and numbers, so
    the shallow copy a request gets cannot change the cached data."""
    data, signed = signer.loads(value, return_timestamp=True)
    return data, signed.timestamp()
