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

"Over HTTPS" is ``request.is_secure``: behind a reverse proxy that ends TLS, it needs
``POLIS_LIKE_PROXY_HOPS`` (``server/app.py`` then trusts the proxies' ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, cross-site over HTTPS (see the module's docstring)."""

    def get_cookie_samesite(self, app: Flask) -> str | None:
        if request.is_secure and "account" not in session:
            return "None"
        return app.config["SESSION_COOKIE_SAMESITE"]

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or bool(app.config["SESSION_COOKIE_SECURE"])
