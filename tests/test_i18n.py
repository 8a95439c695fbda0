"""Languages: every string of the pages is in each catalogue, compiled, and chosen per request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from server.i18n import LANGUAGES, TRANSLATIONS

ROOT = Path(__file__).parent.parent


def extracted(tmp_path: Path) -> set[str]:
    """The message ids in the code and templates today (as `make translations` extracts them);
    a plural message counts by its singular id."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    with open(pot, "rb") as file:
        return {_key(m.id) for m in read_po(file) if m.id}


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _translated(string: str | tuple[str, ...]) -> bool:
    return all(string) if isinstance(string, tuple) else bool(string)


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_every_string_of_the_pages_is_translated_and_compiled(code, tmp_path):
    folder = TRANSLATIONS / code / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as file:
        catalogue = read_po(file)
    translated = {_key(m.id): m.string for m in catalogue if m.id}
    missing = sorted(i for i in extracted(tmp_path) if not _translated(translated.get(i, "")))
    assert missing == [], f"untranslated in {code}: {missing}"
    with open(folder / "messages.mo", "rb") as file:
        compiled = {_key(m.id): m.string for m in read_mo(file) if m.id}
    assert compiled == translated, f"run `make translations`: {code}'s .mo is stale"


def test_the_language_comes_from_the_switch_then_the_cookie_then_the_browser(client, staff):
    created = client.post(
        "/api/v1/conversations",
        json={"topic": "t", "seed_statements": ["one"]},
        headers=staff["admin"],
    )
    page = f"/c/{created.json['id']}"
    english = client.get(page).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in english and ">Agree<" in english
    browser = client.get(page, headers={"Accept-Language": "zh-TW,zh;q=0.9"})
    assert '<html lang="zh-Hant" dir="ltr">' in browser.get_data(as_text=True)
    assert ">同意<" in browser.get_data(as_text=True)
    switched = client.get(page + "?lang=ar", headers={"Accept-Language": "zh-TW"})
    text = switched.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in text and ">أوافق<" in text
    remembered = client.get(page, headers={"Accept-Language": "zh-TW"})  # the cookie now says ar
    assert '<html lang="ar" dir="rtl">' in remembered.get_data(as_text=True)
