"""Languages: English, Traditional Chinese and Arabic (right to left), from message catalogues.

The page's language is the one its ``?lang=`` names (remembered in a cookie), else the cookie's,
else the browser's best match, else English.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request, url_for
from flask_babel import Babel

#: The folder of the catalogues: ``<locale>/LC_MESSAGES/messages.po`` (and its compiled .mo).
TRANSLATIONS = Path(__file__).with_name("translations")
COOKIE = "polis_like_lang"


@dataclass(frozen=True)
class Language:
    code: str  # the Babel locale
    tag: str  # the HTML lang attribute (BCP 47)
    name: str  # its own name for itself
    direction: str  # "ltr" or "rtl"


LANGUAGES = {
    "en": Language("en", "en", "English", "ltr"),
    "zh_Hant": Language("zh_Hant", "zh-Hant", "繁體中文", "ltr"),
    "ar": Language("ar", "ar", "العربية", "rtl"),
}
#: What browsers send (lower case) for each of ours, beyond the codes themselves.
_ALIASES = {"zh-hant": "zh_Hant", "zh-tw": "zh_Hant", "zh-hk": "zh_Hant", "zh-mo": "zh_Hant"}


def _known(value: str | None) -> str | None:
    if not value:
        return None
    if value in LANGUAGES:
        return value
    return _ALIASES.get(value.lower())


def select_language() -> str:
    """The code of the request's language (see the module's docstring)."""
    chosen = _known(request.args.get("lang")) or _known(request.cookies.get(COOKIE))
    if chosen is None:
        offered = list(LANGUAGES) + list(_ALIASES)
        best = request.accept_languages.best_match(
            [code.replace("_", "-") for code in offered], default="en"
        )
        chosen = _known(best.replace("-", "_")) or _known(best) or "en"
    g.language = chosen
    return chosen


def current_language() -> Language:
    return LANGUAGES[g.get("language") or select_language()]


def language_url(code: str) -> str:
    """This page's URL in another language (its other query arguments kept)."""
    arguments: dict[str, Any] = {**request.args.to_dict(), **(request.view_args or {})}
    arguments["lang"] = code
    return url_for(request.endpoint or "pages.index", **arguments)


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_language, default_translation_directories=str(TRANSLATIONS))

    @app.context_processor
    def language_context() -> dict:
        language = current_language()
        return {
            "page_lang": language.tag,
            "page_dir": language.direction,
            "language": language,
            "languages": LANGUAGES,
            "language_url": language_url,
        }

    @app.after_request
    def remember_language(response: Response) -> Response:
        chosen = _known(request.args.get("lang"))
        if chosen is not None and chosen != request.cookies.get(COOKIE):
            response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax")
        return response
