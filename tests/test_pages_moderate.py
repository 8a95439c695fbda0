"""The staff pages in a real browser (Debian's Chromium) against the real service on SQLite and
PostgreSQL: the sign-in page, then the moderation page ``/c/<id>/moderate``."""

from __future__ import annotations

from pathlib import Path

from conftest import shoot
from playwright.sync_api import expect

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


def sign_in(page, service, name: str = "admin", password: str = "password-1") -> None:
    """Sign in through the sign-in page, as a person would."""
    page.goto(f"{service['base']}/signin")
    page.get_by_label("Account name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_the_sign_in_page_signs_in_returns_to_next_and_signs_out(page, service):
    page.goto(f"{service['base']}/signin?next=/signin%3Fdone%3D1")
    assert page.get_by_label("Account name").get_attribute("autocomplete") == "username"
    assert page.get_by_label("Password").get_attribute("autocomplete") == "current-password"
    page.get_by_label("Account name").fill("admin")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong account name or password.")
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    shoot(page, "signin-error")
    page.get_by_label("Password").fill("password-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/signin?done=1")
    expect(page.get_by_text("Signed in as admin", exact=True)).to_be_visible()
    assert page.request.get(f"{service['base']}/api/v1/session").ok
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Account name")).to_be_visible()
    assert page.request.get(f"{service['base']}/api/v1/session").status == 401
    assert page.errors == []
    assert all(url.startswith(service["base"]) for url in page.requests)


def test_next_may_only_be_a_path_on_this_site(page, service):
    for hostile in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:1"]:
        page.goto(f"{service['base']}/signin", wait_until="commit")
        page.goto(f"{service['base']}/signin?next={hostile}")
        assert page.locator("#signin-form").get_attribute("data-next") == "/"


def test_axe_finds_no_accessibility_violation_on_the_sign_in_page(chromium, service):
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    page.goto(f"{service['base']}/signin")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']})"
    )
    assert [v["id"] for v in result["violations"]] == [], result["violations"]
    context.close()
