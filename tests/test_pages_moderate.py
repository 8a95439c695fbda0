"""The staff pages in a real browser (Debian's Chromium) against the real service on SQLite and
PostgreSQL: the sign-in page, then the moderation page ``/c/<id>/moderate``."""

from __future__ import annotations

from pathlib import Path

from conftest import create_conversation as create
from conftest import shoot
from playwright.sync_api import expect
from test_service_http import Browser

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


# -- the moderation page -------------------------------------------------------------------

HOSTILE = '<img src=x onerror="window.hacked=1"><script>window.hacked=2</script> & "quotes"'


def submit(service, cid: int, text: str) -> int:
    """A new participant (their own cookies) writes ``text``; the statement's id."""
    status, body = Browser(service["base"]).call(
        "POST", f"/api/v1/conversations/{cid}/statements", {"text": text}
    )
    assert status == 201, body
    return body["id"]


def api(service, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    admin = Browser(service["base"], {"Authorization": f"Bearer {service['token']}"})
    return admin.call(method, f"/api/v1/conversations{path}", body)


def open_moderation(page, service, cid: int) -> None:
    """Open the moderation page, be sent to sign in, and come back to it signed in."""
    page.goto(f"{service['base']}/c/{cid}/moderate")
    page.wait_for_url(f"**/signin?next=/c/{cid}/moderate")
    page.get_by_label("Account name").fill("admin")
    page.get_by_label("Password").fill("password-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/c/{cid}/moderate")
    expect(page.locator("#live")).to_have_text("Live: new statements appear here.")


def test_a_moderator_finds_a_statement_by_search_and_accepts_it_with_the_keyboard(
    chromium, page, service
):
    cid = create(service, "Night buses", [], moderation="strict")
    writer = chromium.new_context()
    writing = writer.new_page()
    writing.goto(f"{service['base']}/c/{cid}")
    writing.get_by_label("Your statement").fill("Buses should run all night")
    writing.get_by_role("button", name="Submit statement").click()
    expect(writing.locator("#write-message")).to_contain_text("once a moderator accepts it")
    writer.close()
    for i in range(3):
        submit(service, cid, f"Something else entirely, number {i}")
    open_moderation(page, service, cid)
    expect(page.locator("#count-pending")).to_have_text("4")
    page.get_by_label("Search statements").fill("ALL NIGHT")
    page.get_by_label("Search statements").press("Enter")
    page.wait_for_url("**q=ALL+NIGHT**")
    expect(page.locator("#queue > .item")).to_have_count(1)
    expect(page.locator("#count-pending")).to_have_text("1")
    page.keyboard.press("j")
    item = page.locator("#queue > .item").first
    expect(item).to_be_focused()
    page.keyboard.press("a")
    expect(page.locator("#status")).to_have_text("Statement #0 accepted.")
    expect(item.locator(".status-badge")).to_have_text("Accepted")
    expect(item).to_be_focused()  # the last one: focus stays on it
    expect(page.locator("#count-accepted")).to_have_text("1")
    expect(page.locator("#log")).to_contain_text("admin")
    expect(page.locator("#log tr").first).to_contain_text("accepted #0")
    shoot(page, f"moderate-accepted-{cid}")
    reader = chromium.new_context()
    reading = reader.new_page()
    reading.goto(f"{service['base']}/c/{cid}")
    expect(reading.locator("#statement")).to_have_text("Buses should run all night")
    reader.close()
    assert page.errors == []
    assert all(url.startswith(service["base"]) for url in page.requests)


def test_bulk_reject_of_several_and_one_undo(page, service):
    cid = create(service, "Bulk", [], moderation="strict")
    sids = [submit(service, cid, f"Statement number {i}") for i in range(6)]
    api(service, "PATCH", f"/{cid}/statements/{sids[0]}", {"is_meta": True})
    open_moderation(page, service, cid)
    page.get_by_label("Select all on this page").check()
    page.get_by_label(f"Select statement #{sids[5]}").uncheck()
    expect(page.locator("#selected-count")).to_have_text("5 selected")
    page.get_by_role("button", name="Reject selected").click()
    expect(page.locator("#status")).to_have_text("5 statements rejected.")
    expect(page.locator("#count-rejected")).to_have_text("5")
    expect(page.locator("#count-pending")).to_have_text("1")
    _, queue = api(service, "GET", f"/{cid}/moderation/queue?status=rejected")
    assert [s["id"] for s in queue["statements"]] == sids[:5]
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#status")).to_have_text("Undone: 5 statements are back as they were.")
    expect(page.locator("#count-pending")).to_have_text("6")
    expect(page.get_by_role("button", name="Undo")).to_be_hidden()
    _, queue = api(service, "GET", f"/{cid}/moderation/queue")
    assert [(s["status"], s["is_meta"]) for s in queue["statements"]] == [
        ("pending", True),
        *[("pending", False)] * 5,
    ]
    # keyboard: X selects, then the bulk button; the switch turns single keys off
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.get_by_label("Single-key shortcuts").uncheck()
    page.locator("#queue > .item").first.focus()
    page.keyboard.press("r")
    page.wait_for_timeout(300)
    expect(page.locator("#count-rejected")).to_have_text("0")
    shoot(page, f"moderate-bulk-{cid}")


def test_a_new_submission_and_its_near_duplicate_appear_without_a_reload(page, service):
    cid = create(service, "Live", [], moderation="strict")
    submit(service, cid, "More buses, please.")
    open_moderation(page, service, cid)
    expect(page.locator("#queue > .item")).to_have_count(1)
    sid = submit(service, cid, "more BUSES please")
    fresh = page.locator(f"#item-{sid}")
    expect(fresh).to_be_visible(timeout=15000)
    expect(fresh.locator(".near")).to_contain_text("More buses, please.")
    expect(page.locator("#count-pending")).to_have_text("2")
    expect(page.locator("#live")).to_have_text("1 new statements waiting.")
    hostile = submit(service, cid, HOSTILE)
    expect(page.locator(f"#item-{hostile} .text")).to_have_text(HOSTILE, timeout=15000)
    page.reload()
    expect(page.locator(f"#item-{sid - 1} .near")).to_contain_text("more BUSES please")
    expect(page.locator(f"#item-{hostile} .text")).to_have_text(HOSTILE)
    assert page.evaluate("window.hacked") is None
    assert page.locator("#queue img, #queue script").count() == 0
    shoot(page, f"moderate-live-{cid}")


def test_a_moderator_bans_and_unbans_an_author(page, service):
    cid = create(service, "Bans", ["a seed"], moderation="strict")
    author = Browser(service["base"])
    status, written = author.call(
        "POST", f"/api/v1/conversations/{cid}/statements", {"text": "spam spam spam"}
    )
    assert status == 201
    open_moderation(page, service, cid)
    item = page.locator(f"#item-{written['id']}")
    item.get_by_role("button", name="Ban author", exact=True).click()
    expect(page.locator("#status")).to_have_text(
        f"The author of statement #{written['id']} is banned."
    )
    vote = {"statement_id": 0, "vote": 1}
    assert author.call("POST", f"/api/v1/conversations/{cid}/votes", vote)[0] == 403
    expect(page.locator("#log tr").first).to_contain_text("banned a participant")
    item.get_by_role("button", name="Unban author").click()
    expect(item.get_by_role("button", name="Ban author", exact=True)).to_be_visible()
    answer = author.call("POST", f"/api/v1/conversations/{cid}/votes", vote)
    assert answer[0] == 200, answer


def test_pages_of_a_long_queue_and_the_export_links(page, service, sessions):
    from polis_like.storage import conversations

    cid = create(service, "Long", [], moderation="strict")
    with sessions() as session:
        conversation = conversations.get_conversation(session, cid)
        for i in range(2000):
            conversations.add_statement(session, conversation, f"idea {i}", author_pid=None)
        session.commit()
    open_moderation(page, service, cid)
    expect(page.locator("#count-pending")).to_have_text("2000")
    expect(page.locator("#queue > .item")).to_have_count(25)
    expect(page.get_by_text("Page 1 of 80")).to_be_visible()
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("#queue > .item").first).to_contain_text("idea 25")
    href = page.get_by_role("link", name="votes.csv", exact=True).get_attribute("href")
    assert href == f"/api/v1/conversations/{cid}/export/votes.csv"
    assert page.request.get(service["base"] + href).ok
    zip_link = page.get_by_role("link", name="Everything, as a Pol.is export (zip)")
    assert page.request.get(service["base"] + zip_link.get_attribute("href")).ok


def test_on_a_phone_the_moderation_page_does_not_scroll_sideways(chromium, service):
    cid = create(service, "Phone", [], moderation="strict")
    submit(service, cid, "A rather long statement " * 8)
    submit(service, cid, "a rather long statement " * 8 + "!")
    context = chromium.new_context(viewport={"width": 320, "height": 700})
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    open_moderation(page, service, cid)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(page, f"moderate-phone-{cid}")
    page.goto(f"{service['base']}/c/{cid}/moderate?lang=ar")  # right to left
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#count-pending")).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(page, f"moderate-phone-ar-{cid}")
    assert all(url.startswith(service["base"]) for url in requests)
    context.close()


def test_axe_finds_no_accessibility_violation_on_the_moderation_page(chromium, service):
    cid = create(service, "Accessible", ["a seed"], moderation="strict")
    submit(service, cid, "Cafés, please!")
    submit(service, cid, "cafes please")
    api(service, "PATCH", f"/{cid}/statements/0", {"status": "rejected"})
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    open_moderation(page, service, cid)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']})"
    )
    assert [v["id"] for v in result["violations"]] == [], result["violations"]
    shoot(page, f"moderate-{cid}")
    context.close()


def test_staff_pages_refuse_an_account_without_the_role_with_403(app, staff):
    from server.web import staff as staff_module

    view = staff_module.staff_page("admin")(lambda: "admin only")
    app.add_url_rule("/admin-only-test", "admin_only_test", view)
    client = app.test_client()
    client.post("/api/v1/session", json={"name": "moderator-1", "password": "password-1"})
    refused = client.get("/admin-only-test")
    assert refused.status_code == 403 and "needs an admin account" in refused.get_data(as_text=True)
    anonymous = app.test_client().get("/admin-only-test?x=1")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/signin?next=/admin-only-test?x%3D1"
    client.post("/api/v1/session", json={"name": "admin-1", "password": "password-1"})
    assert client.get("/admin-only-test").get_data(as_text=True) == "admin only"
