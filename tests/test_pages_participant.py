"""The participant page in a real browser (Debian's Chromium), against the real service
(gunicorn and the worker as processes) on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import create_conversation as create
from conftest import shoot
from playwright.sync_api import expect

from polis_like.storage import votes

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
HOSTILE = '<img src=x onerror="window.hacked=1"><script>window.hacked=2</script> & "quotes"'


def test_a_participant_votes_by_mouse_and_by_keyboard(page, service, sessions):
    cid = create(service, "Ride sharing", ["one", "two", "three", "four"])
    page.goto(f"{service['base']}/c/{cid}")
    progress = page.locator("#progress")
    assert progress.text_content() == "Statement 1 of 4"
    first = page.locator("#statement").text_content()
    page.get_by_role("button", name="Agree", exact=True).click()
    expect(page.locator("#progress")).to_contain_text("2 of 4")
    expect(page.locator("#statement")).to_be_focused()  # focus moved to the new statement
    assert page.locator("#statement").text_content() != first
    page.keyboard.press("d")
    expect(page.locator("#progress")).to_contain_text("3 of 4")
    page.keyboard.press("p")
    expect(page.locator("#progress")).to_contain_text("4 of 4")
    page.keyboard.press("a")
    page.wait_for_selector("#done:not([hidden])")
    expect(page.locator("#done")).to_be_focused()
    assert "every statement" in page.locator("#done").text_content()
    shoot(page, f"participant-done-{cid}")
    with sessions() as session:
        found = votes.find_participant(session, cid, votes.Who(visitor=_visitor(page)))
        ballots = dict(votes.participant_votes(session, cid, found[0]))
    assert sorted(ballots.values()) == [-1, 0, 1, 1]
    assert page.errors == []


def _visitor(page) -> str:
    """The participant's visitor id, read from their signed cookie as the server reads it."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    app = Flask(__name__)
    app.secret_key = "http-test"  # the service fixture's SECRET_KEY
    cookie = next(c for c in page.context.cookies() if c["name"] == "polis_like")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    return serializer.loads(cookie["value"])["visitor"]


def test_shortcuts_can_be_switched_off_and_stay_off(page, service):
    cid = create(service, "Shortcuts", ["one", "two"])
    page.goto(f"{service['base']}/c/{cid}")
    page.get_by_label("Keyboard shortcuts").uncheck()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    assert page.locator("#progress").text_content() == "Statement 1 of 2"
    page.reload()
    assert not page.get_by_label("Keyboard shortcuts").is_checked()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    assert page.locator("#progress").text_content() == "Statement 1 of 2"


def test_a_participant_changes_a_vote_from_their_list(page, service, sessions):
    cid = create(service, "Changing", ["only one"])
    page.goto(f"{service['base']}/c/{cid}")
    page.get_by_role("button", name="Agree", exact=True).click()
    page.wait_for_selector("#done:not([hidden])")
    page.locator("#my-votes summary").click()
    item = page.locator("#my-votes li", has_text="only one")
    assert item.locator(".mine-vote").text_content() == "Agree"
    item.get_by_role("button", name="Disagree").click()
    expect(item.locator(".mine-vote")).to_have_text("Disagree")
    assert "Disagree" in page.locator("#progress").text_content()
    page.reload()  # the page as the server renders it
    page.locator("#my-votes summary").click()
    assert page.locator("#my-votes li .mine-vote").text_content() == "Disagree"
    assert page.locator("#my-votes li button[aria-pressed=true]").text_content() == "Disagree"
    shoot(page, f"participant-votes-{cid}")
    with sessions() as session:
        found = votes.find_participant(session, cid, votes.Who(visitor=_visitor(page)))
        assert votes.latest_vote(session, cid, found[0], 0) == -1


def test_a_participant_writes_a_statement_and_a_duplicate_is_refused_inline(page, service):
    cid = create(service, "Writing", ["Buses should run all night"], moderation="strict")
    page.goto(f"{service['base']}/c/{cid}")
    area = page.get_by_label("Your statement")
    area.fill("Trams are quieter than buses")
    assert page.locator("#write-count").text_content() == f"{1000 - 28} characters left"
    page.get_by_role("button", name="Submit statement").click()
    expect(page.locator("#write-message")).to_contain_text("moderator accepts it")
    assert area.input_value() == ""
    area.fill("  buses SHOULD run all   night ")
    page.get_by_role("button", name="Submit statement").click()
    expect(page.locator("#write-message")).to_contain_text("made already")
    expect(page.locator("#write-message")).to_have_class("error")
    assert area.get_attribute("aria-invalid") == "true"
    expect(area).to_be_focused()
    shoot(page, f"participant-write-{cid}")


def test_hostile_html_in_a_statement_stays_inert_text(page, service):
    cid = create(service, HOSTILE, [HOSTILE], description=HOSTILE)
    page.goto(f"{service['base']}/c/{cid}")
    assert page.locator("#statement").text_content() == HOSTILE
    assert page.locator("h1").text_content() == HOSTILE
    assert page.locator("main img, header img, main script:not([type])").count() == 0
    page.get_by_role("button", name="Agree", exact=True).click()
    page.wait_for_selector("#done:not([hidden])")
    page.locator("#my-votes summary").click()
    assert page.locator("#my-votes .mine-text").text_content() == HOSTILE
    assert page.evaluate("window.hacked") is None
    assert page.errors == []


def test_the_page_reads_without_scripts(chromium, service):
    cid = create(service, "No scripts", ["Readable without JavaScript"])
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{service['base']}/c/{cid}")
    assert page.locator("#statement").text_content() == "Readable without JavaScript"
    assert page.locator("#progress").text_content() == "Statement 1 of 1"
    shoot(page, "participant-no-script")
    context.close()


def test_on_a_phone_nothing_scrolls_sideways_and_no_request_leaves_the_origin(chromium, service):
    long_word = "Transport" * 30
    cid = create(service, "Phone", [f"A very long word: {long_word}", "短い文 and عربي"])
    context = chromium.new_context(viewport={"width": 320, "height": 640}, is_mobile=True)
    page = context.new_page()
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(f"{service['base']}/c/{cid}")
    page.get_by_role("button", name="Pass").click()
    expect(page.locator("#progress")).to_contain_text("2 of 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    # Each vote button's label on one line ("Disagree" once broke in the middle of the word).
    heights = page.locator(".vote").evaluate_all("bs => bs.map(b => b.offsetHeight)")
    assert len(heights) == 3 and len(set(heights)) == 1 and heights[0] <= 48
    shoot(page, "participant-phone")
    assert seen and all(url.startswith(service["base"] + "/") for url in seen)
    context.close()


def test_closed_and_xid_only_conversations_say_so(page, service):
    closed = create(service, "Closed", ["one"], is_open=False)
    page.goto(f"{service['base']}/c/{closed}")
    assert "closed" in page.locator(".notice").text_content()
    assert page.get_by_role("button", name="Agree", exact=True).count() == 0
    invited = create(service, "Invited", ["one"], xid_mode="required")
    page.goto(f"{service['base']}/c/{invited}")
    assert "invited participants" in page.locator(".notice").text_content()
    page.goto(f"{service['base']}/c/{invited}?xid=guest-17")
    page.get_by_role("button", name="Agree", exact=True).click()
    page.wait_for_selector("#done:not([hidden])")


def test_an_embedded_page_tells_its_parent_on_another_site_its_height(page, service, tmp_path):
    cid = create(service, "Embedded", ["one"])
    (tmp_path / "index.html").write_text(
        f'<iframe src="{service["base"]}/c/{cid}?embed=1" width="400" height="300"></iframe>'
        "<script>window.heights = [];"
        "addEventListener('message', e => window.heights.push(e.data));</script>"
    )
    # Another site: the host page on its own origin (localhost, another port).
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        page.goto(f"http://localhost:{site.server_address[1]}/index.html")
        page.wait_for_function("window.heights.length > 0")  # that site's page: no CSP of ours
        message = page.evaluate("window.heights[0]")
        site.shutdown()
    assert message["type"] == "polis-like:height" and message["height"] > 200
    assert message["conversation"] == str(cid)


def test_axe_finds_no_accessibility_violation(chromium, service):
    cid = create(service, "Accessible", ["one", "two"])
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    page.goto(f"{service['base']}/c/{cid}")
    page.get_by_role("button", name="Agree", exact=True).click()
    expect(page.locator("#progress")).to_contain_text("2 of 2")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']})"
    )
    assert [v["id"] for v in result["violations"]] == [], result["violations"]
    context.close()


def test_over_https_the_cookie_goes_with_an_embedded_page_on_another_site(app, client, staff):
    cid = client.post(
        "/api/v1/conversations",
        json={"topic": "t", "seed_statements": ["one"]},
        headers=staff["admin"],
    ).json["id"]
    secure = app.test_client().get(f"/c/{cid}?embed=1", base_url="https://polis.example")
    cookie = secure.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    plain = app.test_client().get(f"/c/{cid}", base_url="http://localhost")
    assert "SameSite=Lax" in plain.headers["Set-Cookie"]


def test_where_one_stands_appears_without_a_reload_once_the_math_has_placed_them(
    page, service, sessions
):
    from polis_like.storage import jobs
    from polis_like.storage.results import read_document

    seeds = [f"Statement number {n}" for n in range(8)]
    cid = create(service, "Two camps", seeds)
    with sessions() as session:  # two camps of twelve, voting opposite ways
        for n in range(24):
            pid, _ = votes.join(session, cid, votes.Who(visitor=f"camp-{n}"))
            for sid in range(8):
                votes.cast_vote(session, cid, pid, sid, 1 if (n % 2) == (sid % 2) else -1)
        session.commit()
    page.clock.install()  # Date.now moves only when the test says
    page.goto(f"{service['base']}/c/{cid}")
    for voted in range(1, 9):
        sid = int(page.locator("#statement").get_attribute("data-id"))
        page.keyboard.press("a" if sid % 2 == 0 else "d")  # with the first camp
        if voted < 8:
            expect(page.locator("#progress")).to_contain_text(f"{voted + 1} of 8")
    expect(page.locator("#done")).to_be_visible()
    assert page.locator("#standing").count() == 0  # no result with this participant yet
    deadline = time.monotonic() + 120
    while True:  # the service's worker takes the new votes in
        with sessions() as session:
            tick = jobs.current_tick(session, cid)
            document = read_document(session, cid, tick) if tick else None
        if document is not None and document.participation.votes >= 24 * 8 + 8:
            break
        assert time.monotonic() < deadline, "the worker did not take the votes in"
        time.sleep(0.2)
    page.clock.fast_forward("00:31")  # past the page's pause between refreshes
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#standing")).to_contain_text("You are in group", timeout=10_000)
    expect(page.locator("#standing")).to_contain_text("Statement number 0")
    shoot(page, f"participant-standing-{cid}")
