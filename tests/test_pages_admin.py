"""The admin page in a real browser (Debian's Chromium), against the real service (gunicorn and
the worker as processes) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

from conftest import FIXTURES, shoot
from conftest import create_conversation as create
from playwright.sync_api import expect

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
HOSTILE = '<img src=x onerror="window.hacked=1"><script>window.hacked=2</script> & "quotes"'


def sign_in(page, service, name: str = "admin", password: str = "password-1") -> int:
    """Sign the page's browser in through the API (it shares the context's cookies)."""
    response = page.request.post(
        f"{service['base']}/api/v1/session", data={"name": name, "password": password}
    )
    return response.status


def admin_page(page, service):
    sign_in(page, service)
    page.goto(f"{service['base']}/admin")
    return page


def test_nobody_signed_in_is_sent_to_sign_in_and_a_moderator_gets_403(page, service, chromium):
    page.goto(f"{service['base']}/admin")
    assert page.url == f"{service['base']}/signin?next=/admin"
    admin_page(page, service)
    page.get_by_label("Name", exact=True).fill("mo")
    page.get_by_role("button", name="Create the account").click()
    password = page.locator("#secret code").first.text_content()
    other = chromium.new_context()
    moderator = other.new_page()
    assert sign_in(moderator, service, "mo", password) == 200
    response = moderator.goto(f"{service['base']}/admin")
    assert response.status == 403
    assert "for admins" in moderator.locator("main").text_content()
    other.close()


def test_the_admin_creates_a_conversation_with_typed_seeds_and_edits_its_settings(page, service):
    admin_page(page, service)
    page.get_by_label("Topic", exact=True).fill("Bus lanes")
    page.get_by_label("Description").fill("Where should they go?")
    page.get_by_label("Strict: new statements wait for a moderator").check()
    page.get_by_label("Seed statements, one per line").fill("Main Street\nHarbour Road\n")
    page.get_by_role("button", name="Create the conversation").click()
    expect(page.locator("#status")).to_have_text("Created “Bus lanes” (seed statements: 2).")
    item = page.locator(".conversation").first
    expect(item.locator("h3")).to_be_focused()
    expect(item.locator(".statements")).to_have_text("Statements: 2")
    assert page.get_by_label("Topic", exact=True).input_value() == ""  # the form is ready again
    shoot(page, "admin-created")
    item.get_by_role("link", name="Settings and exports").click()
    page.get_by_label("Topic", exact=True).fill("Bus lanes, again")
    page.get_by_label("Open: participants may vote and write").uncheck()
    page.get_by_label("XIDs (participant ids from your own site)").select_option("required")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator("#status")).to_have_text("Saved.")
    expect(page.locator("h1")).to_have_text("Bus lanes, again")
    page.reload()
    assert not page.get_by_label("Open: participants may vote and write").is_checked()
    assert (
        page.get_by_label("XIDs (participant ids from your own site)").input_value() == "required"
    )
    links = page.locator(".exports a")
    assert links.count() == 6
    download = page.request.get(service["base"] + links.first.get_attribute("href"))
    assert download.status == 200 and download.headers["content-type"] == "application/zip"
    shoot(page, "admin-settings")
    page.get_by_label("Topic", exact=True).fill("   ")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator("#edit-topic-error")).to_have_text("Give the conversation a topic.")
    expect(page.get_by_label("Topic", exact=True)).to_be_focused()
    assert page.errors == []


def test_seeds_from_a_csv_file_and_bad_lines_are_shown_by_number_before_saving(
    page, service, tmp_path
):
    admin_page(page, service)
    page.get_by_label("Topic", exact=True).fill("From a file")
    seeds = page.get_by_label("Seed statements, one per line")
    seeds.fill("One\n\nTwo\none\n" + "x" * 1001)
    page.get_by_role("button", name="Create the conversation").click()
    errors = page.locator("#create-seeds-error li")
    expect(errors).to_have_text(
        [
            "Line 2 is empty.",
            "Line 4 repeats line 1.",
            "Line 5 is 1001 characters long; the limit is 1000.",
        ]
    )
    expect(seeds).to_be_focused()
    expect(page.locator("#status")).to_have_text("Fix the seed statements first (problems: 3).")
    assert page.locator(".conversation").count() == 0  # nothing was saved
    shoot(page, "admin-seed-errors")
    path = tmp_path / "seeds.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows([["text", "note"], ["Trains, more of them", "a"], ['Say "no"', ""]])
        writer.writerow(["Bikes\neverywhere"])
    page.get_by_label("Or read them from a CSV file").set_input_files(str(path))
    expect(seeds).to_have_value('Trains, more of them\nSay "no"\nBikes everywhere')
    expect(page.locator("#status")).to_contain_text("Read seeds.csv (statements: 3)")
    expect(page.locator("#create-seeds-error")).to_be_hidden()
    page.get_by_role("button", name="Create the conversation").click()
    expect(page.locator("#status")).to_have_text("Created “From a file” (seed statements: 3).")
    expect(page.locator(".conversation .statements").first).to_have_text("Statements: 3")


def test_the_admin_imports_a_polis_export_with_progress_and_sees_it_listed(page, service, tmp_path):
    archive = tmp_path / "vtaiwan.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in (FIXTURES / "vtaiwan.uberx").glob("*.csv"):
            zipped.write(file, file.name)
    with (FIXTURES / "vtaiwan.uberx" / "comments.csv").open(newline="") as comments:
        statements = sum(1 for _ in csv.DictReader(comments))
    admin_page(page, service)
    page.get_by_role("button", name="Import").click()  # no file yet
    expect(page.locator("#import-file-error")).to_have_text("Choose the export's .zip file first.")
    page.get_by_label("The export's .zip file").set_input_files(str(archive))
    page.get_by_label("Topic (optional: else the export's)").fill("uberX, imported")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#status")).to_have_text("Imported “uberX, imported”.", timeout=120_000)
    item = page.locator(".conversation").first
    expect(item.locator("h3")).to_be_focused()
    expect(item.locator("h3 a")).to_have_text("uberX, imported")
    expect(item.locator(".statements")).to_have_text(f"Statements: {statements}")
    shoot(page, "admin-imported")
    # A file that is not an export says so beside the file field.
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    page.get_by_label("The export's .zip file").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-file-error")).not_to_be_empty()
    expect(page.locator("#import-file-error")).to_be_visible()
    assert page.errors == []


def test_the_admin_creates_a_moderator_who_can_moderate_but_not_administer(page, service, chromium):
    cid = create(service, "Moderated", ["one"], moderation="strict")
    admin_page(page, service)
    page.get_by_label("Name", exact=True).fill("Mona")
    page.get_by_role("button", name="Create the account").click()
    secret = page.locator("#secret")
    expect(secret).to_be_focused()
    expect(page.locator("#status")).to_contain_text("Account Mona created")
    password = secret.locator("code").first.text_content()
    assert len(password) >= 16
    expect(secret.get_by_role("button", name="Copy Password")).to_be_visible()
    shoot(page, "admin-account-made")
    page.get_by_role("button", name="Done: hide it").click()
    expect(secret).to_be_hidden()
    expect(page.locator("#account-form-title")).to_be_visible()
    # The duplicate name is refused beside the name field.
    page.get_by_label("Name", exact=True).fill("Mona")
    page.get_by_role("button", name="Create the account").click()
    expect(page.locator("#account-name-error")).to_contain_text("already an account")
    context = chromium.new_context()
    moderator = context.new_page()
    assert sign_in(moderator, service, "Mona", password) == 200
    statement = f"{service['base']}/api/v1/conversations/{cid}/statements/0"
    # A moderator moderates the conversations an admin gives them, and no other.
    refused = moderator.request.patch(statement, data={"status": "accepted"})
    assert refused.status == 403
    page.goto(f"{service['base']}/admin/c/{cid}")
    page.get_by_role("checkbox", name="Mona").check()
    page.get_by_role("button", name="Save the moderators").click()
    expect(page.locator("#status")).to_contain_text("Saved")
    accepted = moderator.request.patch(statement, data={"status": "accepted"})
    assert accepted.status == 200
    moderator.goto(f"{service['base']}/mine")
    expect(moderator.get_by_role("link", name="Moderated")).to_be_visible()
    assert moderator.goto(f"{service['base']}/admin").status == 403
    assert page.errors == []
    context.close()


def test_resetting_a_password_and_revoking_tokens_and_deleting_an_account(page, service, chromium):
    admin_page(page, service)
    page.get_by_label("Name", exact=True).fill("Sam")
    page.locator("#account-password").fill("sams-first-password")
    page.get_by_role("button", name="Create the account").click()
    expect(page.locator("#status")).to_contain_text("Account Sam created")
    row = page.locator(".account", has_text="Sam")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="New password for Sam").click()
    expect(page.locator("#status")).to_contain_text("New password for Sam")
    fresh = page.locator("#secret code").first.text_content()
    other = chromium.new_context().new_page()
    assert sign_in(other, service, "Sam", "sams-first-password") == 401
    assert sign_in(other, service, "Sam", fresh) == 200
    other.context.close()
    row.get_by_role("button", name="Revoke tokens of Sam").click()
    expect(page.locator("#status")).to_have_text("Revoked the tokens of Sam (1).")
    expect(page.locator(".account", has_text="Sam")).to_be_focused()
    expect(page.locator(".account", has_text="Sam")).to_contain_text("Tokens: 0")
    page.locator(".account", has_text="Sam").get_by_role("button", name="New token for Sam").click()
    expect(page.locator("#secret code")).to_have_text(re.compile(r"^pl_"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".account", has_text="Sam").get_by_role(
        "button", name="Delete the account Sam"
    ).click()
    expect(page.locator("#status")).to_have_text("Deleted the account Sam.")
    expect(page.locator("#accounts-title")).to_be_focused()
    expect(page.locator(".account", has_text="Sam")).to_have_count(0)
    # One's own account has no delete button.
    expect(
        page.locator(".account", has_text="(you)").get_by_role("button", name="Delete")
    ).to_have_count(0)
    assert page.errors == []


def test_disabling_and_enabling_an_account_from_the_keyboard(page, service, chromium):
    admin_page(page, service)
    page.get_by_label("Name", exact=True).fill("Dee")
    page.locator("#account-password").fill("dees-password")
    page.get_by_role("button", name="Create the account").click()
    expect(page.locator("#status")).to_contain_text("Account Dee created")
    other = chromium.new_context().new_page()
    assert sign_in(other, service, "Dee", "dees-password") == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable the account Dee").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text(
        "Disabled the account Dee: it can no longer sign in."
    )
    row = page.locator(".account", has_text="Dee")
    expect(row).to_be_focused()
    expect(row).to_contain_text("disabled: cannot sign in")
    # Dee's open session ends at once; the sign-in page says why the password is refused.
    other.goto(f"{service['base']}/admin")
    assert other.url == f"{service['base']}/signin?next=/admin"
    other.get_by_label("Account name").fill("Dee")
    other.get_by_label("Password").fill("dees-password")
    other.get_by_role("button", name="Sign in").click()
    expect(other.locator("#signin-error")).to_have_text(
        "This account is disabled. Ask an admin to enable it."
    )
    page.get_by_role("button", name="Enable the account Dee").focus()
    page.keyboard.press("Space")
    expect(page.locator("#status")).to_have_text("Enabled the account Dee: it can sign in again.")
    expect(row).to_be_focused()
    expect(row).not_to_contain_text("disabled")
    assert sign_in(other, service, "Dee", "dees-password") == 200
    other.context.close()
    # One cannot disable one's own account: no button for it.
    expect(
        page.locator(".account", has_text="(you)").get_by_role("button", name="Disable")
    ).to_have_count(0)
    assert page.errors == []


def test_sign_out_ends_the_session_and_a_copied_cookie_no_longer_works(page, service, chromium):
    admin_page(page, service)
    cookies = page.context.cookies()
    copy = chromium.new_context()
    copy.add_cookies(cookies)
    thief = copy.new_page()
    assert thief.goto(f"{service['base']}/admin").status == 200
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin?next=/admin")
    response = thief.goto(f"{service['base']}/admin")
    assert thief.url == f"{service['base']}/signin?next=/admin"
    assert thief.request.get(f"{service['base']}/api/v1/session").status == 401
    assert response is not None
    copy.close()


def test_hostile_html_in_a_topic_stays_inert(page, service):
    cid = create(service, HOSTILE, ["one"], description=HOSTILE)
    admin_page(page, service)
    assert page.locator(f"#conversation-{cid} h3 a").text_content() == HOSTILE
    page.goto(f"{service['base']}/admin/c/{cid}")
    assert page.locator("h1").text_content() == HOSTILE
    assert page.get_by_label("Topic", exact=True).input_value() == HOSTILE
    assert page.evaluate("window.hacked") is None
    assert page.locator("img[src=x]").count() == 0


def test_on_a_phone_nothing_scrolls_sideways_and_no_request_leaves_the_origin(chromium, service):
    create(service, "A long word: " + "Transport" * 30, ["one"])
    context = chromium.new_context(viewport={"width": 320, "height": 640}, is_mobile=True)
    page = context.new_page()
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    admin_page(page, service)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(page, "admin-phone")
    page.locator(".conversation a", has_text="Settings and exports").click()
    page.wait_for_url("**/admin/c/*")
    page.wait_for_load_state("load")  # the stylesheet applied
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(page, "admin-settings-phone")
    assert seen and all(url.startswith(service["base"] + "/") for url in seen)
    context.close()


def test_axe_finds_no_accessibility_violation(chromium, service):
    cid = create(service, "Accessible", ["one", "two"])
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    admin_page(page, service)
    page.get_by_label("Name", exact=True).fill("Ada")
    page.get_by_role("button", name="Create the account").click()
    expect(page.locator("#secret")).to_be_visible()
    for url in (f"{service['base']}/admin", f"{service['base']}/admin/c/{cid}"):
        if page.url != url:
            page.goto(url)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']})"
        )
        assert [v["id"] for v in result["violations"]] == [], result["violations"]
    context.close()


def test_the_forms_work_from_the_keyboard_and_a_password_is_copied(chromium, service):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service["base"])
    page = context.new_page()
    admin_page(page, service)
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("Kim")
    page.keyboard.press("Enter")
    expect(page.locator("#secret")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Copy Password")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Copied.")
    password = page.locator("#secret code").first.text_content()
    assert page.evaluate("navigator.clipboard.readText()") == password
    page.get_by_label("Topic", exact=True).first.focus()
    page.keyboard.type("Typed only")
    page.keyboard.press("Enter")  # Enter in a text field submits its form
    expect(page.locator("#conversations .conversation h3").first).to_be_focused()
    expect(page.locator("#status")).to_have_text("Created “Typed only” (seed statements: 0).")
    shoot(page, "admin-keyboard-1200")
    context.close()


def test_the_page_reads_right_to_left_in_arabic(chromium, service):
    create(service, "نقل عام", ["one"])
    context = chromium.new_context(viewport={"width": 1200, "height": 900}, locale="ar")
    page = context.new_page()
    admin_page(page, service)
    page.goto(f"{service['base']}/admin?lang=ar")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("#create-title").text_content() == "إنشاء محادثة"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1200
    shoot(page, "admin-arabic")
    context.close()
