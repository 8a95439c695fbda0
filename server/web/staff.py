"""What the staff pages share: the sign-in requirement and the sign-in page, ``/signin``.

A staff page sends a visitor who is not signed in to ``/signin?next=<the page>``; a signed-in
account without the page's role gets 403. ``next`` is only ever a path on this site, so the
sign-in page cannot be used to send someone elsewhere after they sign in.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from polis_like.errors import Forbidden
from polis_like.storage import conversations, moderators

from ..api.common import current_account, db, moderates, query_int, signed_in
from . import blueprint


def safe_next(value: str | None) -> str:
    """``value`` when it is a relative path on this site, else the site's root.

    Refuses absolute and scheme-relative URLs (``//evil``, ``/\\evil``, which browsers read as
    another host), anything with a scheme, and control characters.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def staff_page(role: str = "moderator"):
    """Page decorator: sign-in first (a redirect back here afterwards), then the role."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            account = current_account()
            if account is None:
                target = request.full_path.rstrip("?")
                return redirect(url_for("web.signin", next=target))
            if role == "admin" and account.role != "admin":
                raise Forbidden(
                    _(
                        "This page is for admins: it needs an admin account. "
                        "Ask an admin to do what you need."
                    )
                )
            conversation_id = kwargs.get("conversation_id")
            if conversation_id is not None and not moderates(conversation_id):
                raise Forbidden(
                    _(
                        "This account does not moderate this conversation. "
                        "Ask an admin to give it to you."
                    )
                )
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # for the tests' walk
        return wrapped

    return decorator


def render_staff(template: str, **context) -> str:
    """A staff page's template with the signed-in account, for the header's sign-out."""
    return render_template(template, staff_account=current_account(), **context)


def _signin_texts() -> dict[str, str]:
    """The strings the sign-in script shows, in the page's language."""
    return {
        "missing": _("Enter your account name and password."),
        "wrong": _("Wrong account name or password."),
        "disabled": _("This account is disabled. Ask an admin to enable it."),
        "network": _("That did not work; check your connection and try again."),
        "signing": _("Signing in…"),
    }


@blueprint.get("/signin")
def signin():
    """The staff sign-in form (name and password; password managers and paste work); it
    leads to ``next``, else to the account's own conversations."""
    target = request.args.get("next")
    return render_staff(
        "signin.html",
        next=safe_next(target) if target else url_for("web.mine"),
        js_texts=_signin_texts(),
    )


#: Conversations per page of ``/mine``.
PER_PAGE = 50


@blueprint.get("/mine")
@staff_page("moderator")
def mine():
    """The conversations this account moderates (an admin: every one), newest first."""
    page = query_int("page", 1, low=1, high=10**6)
    rows = conversations.list_conversations(
        db(),
        offset=(page - 1) * PER_PAGE,
        limit=PER_PAGE + 1,
        where=moderators.moderated_by(signed_in()),
    )
    return render_staff(
        "mine.html", conversations=rows[:PER_PAGE], page=page, more=len(rows) > PER_PAGE
    )
