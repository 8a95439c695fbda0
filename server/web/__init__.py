"""The pages people open in a browser: server-rendered Jinja templates with small ES modules.

Every page reads before any script runs; scripts come from ``static/`` on this origin only,
which the Content-Security-Policy below enforces. Pages call the JSON API like any client.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request, url_for

#: The top-level static/ folder: plain CSS and ES modules, and vendored files under vendor/.
STATIC = Path(__file__).resolve().parents[2] / "static"

blueprint = Blueprint("web", __name__, static_folder=str(STATIC), static_url_path="/static")

#: Nothing from another origin: scripts, styles, images, fonts and API calls are all ours.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors {ancestors}"
)


@blueprint.app_context_processor
def page_context() -> dict:
    """What every page's template may use: the API's base URL, for its scripts."""
    return {"api_base": url_for("api.openapi").rsplit("/", 1)[0]}


@blueprint.after_request
def page_headers(response: Response) -> Response:
    """The security headers of every page (the participant page may be embedded anywhere)."""
    embeddable = request.endpoint == "web.participant"
    response.headers["Content-Security-Policy"] = _POLICY.format(
        ancestors="*" if embeddable else "'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    if not embeddable:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


# Each page module registers its routes on the blueprint.
from . import admin, dashboard, moderate, participant, report, staff  # noqa: E402, F401
