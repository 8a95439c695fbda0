"""The facilitator dashboard in a real browser (Debian's Chromium), against the real service
(gunicorn and the worker as processes) on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from conftest import FIXTURES, shoot
from conftest import create_conversation as create
from playwright.sync_api import expect
from sqlalchemy import func, select

from polis_like.storage.models import VoteEventRow

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
HOSTILE = '<img src=x onerror="window.hacked=1"><script>window.hacked=2</script> & "quotes"'


def api(service, method, path, body=None, token=True):
    """A JSON API call from outside the browser (another participant or the admin)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {service['token']}"
    request = Request(
        f"{service['base']}/api/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    with urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for_result(service, cid, tick=1, timeout=90, votes=0):
    """The conversation's results once the worker has published ``tick`` or later, counting
    at least ``votes`` votes (the worker coalesces votes into about one result a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            document = api(service, "GET", f"/conversations/{cid}/results")
            if document["tick"] >= tick and document["participation"]["votes"] >= votes:
                return document
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"no result {tick} for conversation {cid}")


@pytest.fixture
def uberx(service, sessions):
    """The real vTaiwan uberX conversation imported, with the worker's first result."""
    from polis_like.storage.transfer import import_export

    cid = import_export(sessions, FIXTURES / "vtaiwan.uberx")
    with sessions() as session:
        votes = session.scalar(
            select(func.count())
            .select_from(VoteEventRow)
            .where(VoteEventRow.conversation_id == cid)
        )
    # Every vote: on PostgreSQL a transaction elsewhere on the server can hold some back from
    # the worker's first read (it reads up to the oldest running transaction).
    return cid, wait_for_result(service, cid, votes=votes)


def votes_text(n: int) -> str:
    return f"{n} votes"


def test_the_dashboard_shows_groups_statements_and_counts_of_a_real_conversation(
    page, service, uberx
):
    cid, document = uberx
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    participation = document["participation"]
    expect(page.locator("#n-participants")).to_have_text(
        f"{participation['participants']} participants"
    )
    expect(page.locator("#n-votes")).to_have_text(votes_text(participation["votes"]))
    groups = page.locator("#groups article.group")
    expect(groups).to_have_count(document["k"])
    for group in document["groups"]:
        heading = page.locator(f'#groups article[data-group="{group["id"]}"] h3')
        expect(heading).to_contain_text(f"Group {group['name']}: {group['size']} participants")
    assert page.locator("#groups .statement-text").count() >= document["k"]
    expect(page.locator("#groups .bar-text").first).to_contain_text(re.compile(r"Agree \d+%"))
    expect(page.locator("#groups-table tbody tr")).to_have_count(document["k"])
    expect(page.locator("#series-table tbody tr")).to_have_count(1)
    expect(page.locator("#freshness")).to_contain_text(re.compile(r"updated \d+ s ago"))
    expect(page.locator("#map-overlay .hull")).to_have_count(document["k"])
    expect(page.locator("#map-overlay .group-label")).to_have_count(document["k"])
    expect(page.locator("#chart .uplot")).to_have_count(1)
    # The map names the participants it places, not the rows of the vote matrix (an import
    # keeps the export's sparse participant ids).
    label = page.locator("#map").get_attribute("aria-label")
    placed = int(re.match(r"Opinion map of (\d+) participants", label).group(1))
    assert 0 < placed <= participation["participants"]
    page.get_by_role("button", name="Zoom in").click()
    expect(page.locator("#zoom-level")).to_have_text("Zoom: 1.5 times")
    page.locator("#map").focus()
    page.keyboard.press("0")
    expect(page.locator("#zoom-level")).to_have_text("Zoom: 1.0 times")
    shoot(page, f"dashboard-uberx-{cid}")
    assert page.errors == []


def test_the_dashboard_updates_without_a_reload_after_new_votes(chromium, page, service):
    cid = create(service, "Live", ["one", "two", "three"])
    for sid in range(3):
        voter = chromium.new_context()
        voter.request.post(
            f"{service['base']}/api/v1/conversations/{cid}/votes",
            data={"statement_id": sid, "vote": 1},
        )
        voter.close()
    wait_for_result(service, cid, votes=3)
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    expect(page.locator("#n-votes")).to_have_text("3 votes")
    page.evaluate("window.sameDocument = true")
    others = chromium.new_context()  # another browser casts votes through the API
    for sid in range(3):
        answer = others.request.post(
            f"{service['base']}/api/v1/conversations/{cid}/votes",
            data={"statement_id": sid, "vote": -1},
        )
        assert answer.ok, answer.text()
    others.close()
    expect(page.locator("#n-votes")).to_have_text("6 votes", timeout=30_000)
    expect(page.locator("#n-participants")).to_have_text("4 participants")
    expect(page.locator("#series-table tbody tr").first.locator("td").nth(2)).to_have_text("6")
    expect(page.locator("#live-status")).to_contain_text("New results")
    assert page.evaluate("window.sameDocument") is True  # no reload
    assert page.errors == []


def test_the_dashboard_comes_back_by_itself_after_its_stream_is_refused(chromium, page, service):
    """The service here has room for one stream: while another client holds it, the page's
    stream gets 503, on which a browser's EventSource gives up for good; the page's script
    tries again, later each time, and is live once there is room."""
    cid = create(service, "Full", ["one", "two", "three"])
    voter = chromium.new_context()
    for sid in (0, 1):
        answer = voter.request.post(
            f"{service['base']}/api/v1/conversations/{cid}/votes",
            data={"statement_id": sid, "vote": 1},
        )
        assert answer.ok, answer.text()
    wait_for_result(service, cid, votes=2)
    holder = http.client.HTTPConnection("127.0.0.1", service["port"], timeout=10)
    holder.request("GET", f"/api/v1/conversations/{cid}/events")
    assert holder.getresponse().status == 200
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    expect(page.locator("#n-votes")).to_have_text("2 votes")
    expect(page.locator("#live-status")).to_contain_text("Reconnecting")
    time.sleep(2)  # refused again meanwhile: the page keeps trying
    holder.close()  # room again: the next try gets the stream
    answer = voter.request.post(
        f"{service['base']}/api/v1/conversations/{cid}/votes", data={"statement_id": 2, "vote": 1}
    )
    assert answer.ok, answer.text()
    voter.close()
    expect(page.locator("#n-votes")).to_have_text("3 votes", timeout=30_000)
    tries = [url for url in page.requests if url.endswith(f"/conversations/{cid}/events")]
    assert len(tries) >= 3  # refused at least twice, then live
    assert page.errors == []


def test_the_dashboard_reads_without_scripts(chromium, service, uberx):
    cid, document = uberx
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    participants = document["participation"]["participants"]
    assert page.locator("#n-participants").text_content() == f"{participants} participants"
    assert page.locator("#groups article.group").count() == document["k"]
    assert page.locator("#consensus-agree li").count() >= 1
    assert page.locator("#groups-table tbody tr").count() == document["k"]
    assert "updated" in page.locator("#freshness").text_content()
    shoot(page, "dashboard-no-script")
    context.close()


def test_on_a_phone_nothing_scrolls_sideways_and_no_request_leaves_the_origin(
    chromium, service, uberx
):
    cid, document = uberx
    context = chromium.new_context(viewport={"width": 320, "height": 640}, is_mobile=True)
    page = context.new_page()
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    expect(page.locator("#map-overlay .hull")).to_have_count(document["k"])
    expect(page.locator("#chart .uplot")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(page, "dashboard-phone")
    assert seen and all(url.startswith(service["base"] + "/") for url in seen)
    context.close()


def test_hostile_html_in_statements_stays_inert_on_the_dashboard(chromium, page, service):
    cid = create(service, HOSTILE, [HOSTILE, "plain"], description=HOSTILE)
    for value in (1, -1, 1):
        voter = chromium.new_context()
        voter.request.post(
            f"{service['base']}/api/v1/conversations/{cid}/votes",
            data={"statement_id": 0, "vote": value},
        )
        voter.close()
    wait_for_result(service, cid, votes=3)
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    assert page.locator("h1").text_content() == HOSTILE
    hostile = page.locator("#dashboard .statement-text").filter(has_text=HOSTILE)
    expect(hostile.first).to_be_visible()
    assert {hostile.nth(i).text_content() for i in range(hostile.count())} == {HOSTILE}
    assert page.locator("main img, header img, main script:not([type])").count() == 0
    assert page.evaluate("window.hacked") is None
    assert page.errors == []


def test_a_hidden_map_keeps_the_dashboard_to_staff(chromium, service):
    cid = create(service, "Hidden", ["one"], map_enabled=False)
    context = chromium.new_context()
    page = context.new_page()
    response = page.goto(f"{service['base']}/c/{cid}/dashboard")
    assert response.status == 403
    signed = page.request.post(
        f"{service['base']}/api/v1/session", data={"name": "admin", "password": "password-1"}
    )
    assert signed.ok, signed.text()
    assert page.goto(f"{service['base']}/c/{cid}/dashboard").status == 200
    context.close()


def test_a_participant_sees_themselves_on_the_map(page, service, chromium):
    cid = create(service, "You", ["one", "two", "three"])
    for value in (1, -1, 1):
        voter = chromium.new_context()
        for sid in range(3):
            voter.request.post(
                f"{service['base']}/api/v1/conversations/{cid}/votes",
                data={"statement_id": sid, "vote": value if sid else -value},
            )
        voter.close()
    for sid in range(3):
        page.request.post(
            f"{service['base']}/api/v1/conversations/{cid}/votes",
            data={"statement_id": sid, "vote": 1},
        )
    document = wait_for_result(service, cid, timeout=90, votes=12)
    assert document["n_in_conversation"] == 4  # 3 votes each, on all 3 statements
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    expect(page.locator("#map-overlay .you text")).to_have_text("you")


def test_axe_finds_no_accessibility_violation_on_the_dashboard(chromium, service, uberx):
    cid, _ = uberx
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    expect(page.locator("#chart .uplot")).to_have_count(1)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']})"
    )
    assert [v["id"] for v in result["violations"]] == [], result["violations"]
    context.close()


def test_the_freshness_ticks_and_warns_when_the_worker_is_behind_or_down(page, service, uberx):
    cid, _ = uberx
    health = {"body": '{"database": "ok", "worker": {"lag_s": 42.0, "ok": false}}', "status": 200}
    # /healthz answers as it does when the worker falls behind, then when the service is down.
    page.route(
        "**/healthz",
        lambda route: route.fulfill(
            status=health["status"], body=health["body"], content_type="application/json"
        ),
    )
    page.goto(f"{service['base']}/c/{cid}/dashboard")
    warning = page.locator("#worker-warning")
    expect(warning).to_be_visible()
    expect(warning).to_have_text(
        "The results are running behind: the worker is 42 s behind the votes."
    )
    first = page.locator("#freshness").text_content()
    expect(page.locator("#freshness")).not_to_have_text(first, timeout=5000)  # it ticks
    assert re.fullmatch(r"updated \d+ s ago", page.locator("#freshness").text_content())
    health.update(status=503, body='{"database": "unavailable", "worker": null}')
    expect(warning).to_contain_text("cannot be reached", timeout=15_000)
    health.update(status=200, body='{"database": "ok", "worker": {"lag_s": 0.0, "ok": true}}')
    expect(warning).to_be_hidden(timeout=15_000)
