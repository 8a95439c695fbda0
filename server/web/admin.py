"""The admin page, ``/admin``, and a conversation's settings page, ``/admin/c/<id>``.

Both read before any script runs (the lists and the forms are in the HTML); ``admin.js`` makes
the forms call the JSON API and refreshes the lists by fetching this page again, so that the
markup of a conversation or an account is written once, here in the templates.
"""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from polis_like.storage import accounts as account_store
from polis_like.storage import conversations as store
from polis_like.storage import moderators
from polis_like.storage.conversations import STATEMENT_MAX

from ..api.common import db, query_int
from ..api.transfer import NAMES as EXPORT_NAMES
from . import blueprint
from .staff import render_staff, staff_page

#: Where signing out leads: back here, which asks to sign in again (and returns here after).
SIGNED_OUT = "/admin"
#: Conversations per page of the list.
PER_PAGE = 20


def _script_texts() -> dict[str, str]:
    """The strings admin.js shows, in the page's language."""
    return {
        "network": _("That did not work; check your connection and try again."),
        "empty_line": _("Line {n} is empty."),
        "too_long": _("Line {n} is {length} characters long; the limit is {limit}."),
        "duplicate": _("Line {n} repeats line {first}."),
        "seeds_bad": _("Fix the seed statements first (problems: {count})."),
        "csv_read": _("Read {file} (statements: {count}); check them below."),
        "csv_header": _("The first row was a header and was left out."),
        "topic_empty": _("Give the conversation a topic."),
        "name_empty": _("Give the account a name."),
        "created": _("Created “{topic}” (seed statements: {count})."),
        "saved": _("Saved."),
        "choose_file": _("Choose the export's .zip file first."),
        "uploading": _("Uploading: {percent}%"),
        "importing": _(
            "Uploaded. Importing the statements and votes: a large export takes a minute or "
            "two. You can keep using this page; this line will say when it is done."
        ),
        "imported": _("Imported “{topic}”."),
        "account_made": _("Account {name} created. Copy its password now: it is shown only once."),
        "password_reset": _("New password for {name}. Copy it now: it is shown only once."),
        "token_made": _("New token for {name}. Copy it now: it is shown only once."),
        "revoked": _("Revoked the tokens of {name} ({count})."),
        "confirm_disable": _(
            "Disable the account {name}? It can no longer sign in, and its sessions and tokens "
            "stop working until it is enabled again."
        ),
        "disabled": _("Disabled the account {name}: it can no longer sign in."),
        "enabled": _("Enabled the account {name}: it can sign in again."),
        "confirm_delete": _("Delete the account {name}? This cannot be undone."),
        "deleted": _("Deleted the account {name}."),
        "confirm_reset": _("Set a new password for {name}? Its old password stops working."),
        "copied": _("Copied."),
        "copy_failed": _("Copy failed: select the text and copy it yourself."),
        "password": _("Password"),
        "token": _("Token"),
    }


def _settings_choices() -> dict:
    return {
        "moderation": [
            ("strict", _("Strict: new statements wait for a moderator")),
            ("open", _("Open: new statements show at once; moderators can reject them later")),
        ],
        "xid_mode": [
            ("off", _("Off: anyone with the link takes part")),
            ("optional", _("Optional: links may carry an XID naming the participant")),
            ("required", _("Required: only links with an XID work")),
        ],
    }


@blueprint.get("/admin")
@staff_page("admin")
def admin():
    session = db()
    page = query_int("page", 1, low=1, high=10**6)
    rows = store.list_conversations(session, offset=(page - 1) * PER_PAGE, limit=PER_PAGE + 1)
    return render_staff(
        "admin.html",
        sign_out_to=SIGNED_OUT,
        conversations=rows[:PER_PAGE],
        sizes=store.sizes(session, [c.id for c in rows[:PER_PAGE]]),
        page=page,
        more=len(rows) > PER_PAGE,
        created=request.args.get("created", type=int),
        accounts=account_store.list_accounts(session),
        choices=_settings_choices(),
        statement_max=STATEMENT_MAX,
        js_texts=_script_texts(),
    )


@blueprint.get("/admin/c/<id:conversation_id>")
@staff_page("admin")
def admin_conversation(conversation_id: int):
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    return render_staff(
        "admin_conversation.html",
        sign_out_to=SIGNED_OUT,
        conversation=conversation,
        moderator_accounts=[
            a for a in account_store.list_accounts(session) if a.role == "moderator"
        ],
        given={a.id for a in moderators.moderators_of(session, conversation_id)},
        choices=_settings_choices(),
        exports=EXPORT_NAMES,
        js_texts=_script_texts(),
    )
