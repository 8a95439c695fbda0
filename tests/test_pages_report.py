"""The report page in a real browser (Debian's Chromium), with JavaScript off, against the real
service (gunicorn and the worker as processes) on SQLite and PostgreSQL: a real Pol.is
conversation, its permalink surviving the pruning of old results, print, axe, a phone."""

from __future__ import annotations

import re
import time

import pytest
from conftest import FIXTURES, SCREENSHOTS, shoot
from conftest import create_conversation as create
from playwright.sync_api import expect
from test_pages_participant import AXE, HOSTILE

from polis_like.storage import jobs, votes
from polis_like.storage.jobs import KEEP_RESULTS
from polis_like.storage.results import read_document
from polis_like.storage.transfer import import_export


def wait_for_tick(sessions, cid: int, past: int = 0, timeout: float = 120.0) -> int:
    """The conversation's tick once the service's worker has published one past ``past``."""
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            tick = jobs.current_tick(session, cid)
        if tick > past:
            return tick
        if time.monotonic() > deadline:
            pytest.fail(f"the worker published no result past tick {past} in {timeout} s")
        time.sleep(0.1)


def wait_for_votes(sessions, cid: int, votes_in: int, timeout: float = 120.0) -> int:
    """The tick of the first result that counts ``votes_in`` vote events (the worker may have
    published one for the new conversation before its votes were stored)."""
    from polis_like.storage.results import read_document

    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            tick = jobs.current_tick(session, cid)
            document = read_document(session, cid, tick) if tick else None
        if document is not None and document.participation.votes >= votes_in:
            return tick
        if time.monotonic() > deadline:
            pytest.fail(f"no result with {votes_in} votes in {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def uberx(service, sessions):
    """vTaiwan's UberX conversation imported into the service's database, with its first result."""
    cid = import_export(sessions, FIXTURES / "vtaiwan.uberx")
    wait_for_tick(sessions, cid)
    return cid


@pytest.fixture
def reader(chromium):
    """A browser with JavaScript disabled, recording every request it makes."""
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 1200, "height": 900}
    )
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    context.close()


def _document(sessions, cid: int, tick: int):
    with sessions() as session:
        return read_document(session, cid, tick)


def _texts(sessions, cid: int) -> dict[int, str]:
    from polis_like.storage.conversations import visible_statements

    with sessions() as session:
        return {sid: text for sid, text, _ in visible_statements(session, cid, "open")}


def test_the_report_reads_without_scripts_with_groups_their_statements_and_consensus(
    reader, service, sessions, uberx
):
    tick = wait_for_tick(sessions, uberx)
    document = _document(sessions, uberx, tick)
    texts = _texts(sessions, uberx)
    reader.goto(f"{service['base']}/c/{uberx}/report")
    expect(reader.locator("#permalink")).to_have_attribute("href", f"/c/{uberx}/report/{tick}")
    facts = reader.locator("#facts")
    expect(facts).to_contain_text(str(document.participation.participants))
    expect(facts).to_contain_text(str(document.participation.votes))
    assert document.k >= 2
    groups = reader.locator("section.group")
    expect(groups).to_have_count(document.k)
    for group in document.groups:
        section = groups.nth(group.id)
        expect(section.locator("h3")).to_contain_text(f"Group {group.name}")
        expect(section.locator("h3")).to_contain_text(f"{group.size} participants")
        rep = next(r for r in group.representative if r.statement in texts)
        sid = rep.statement
        body = section.locator("tbody", has_text=f"#{sid} ")
        expect(body.locator("th[scope=rowgroup]")).to_contain_text(texts[sid])
        agree, seen = group.votes.agree[sid], group.votes.seen[sid]
        row = body.locator("tr").nth(1)
        expect(row.locator("th")).to_contain_text(f"{seen} voted")
        expect(row.locator("td").first).to_have_text(f"{agree} ({round(100 * agree / seen)}%)")
    consensus = reader.locator("#consensus-agree-table tbody tr")
    shown = [m for m in document.consensus["agree"] if m.statement in texts]
    expect(consensus).to_have_count(len(shown))
    first = shown[0]
    expect(consensus.first).to_contain_text(texts[first.statement])
    expect(consensus.first).to_contain_text(f"{first.n_success} of {first.n_trials}")
    informed = sorted(
        (s.group_informed_consensus or 0.0, -int(sid))
        for sid, s in document.statements.items()
        if int(sid) in texts and not s.moderated_out
    )[-1]
    assert informed[0] >= 0.5**document.k  # uberx has statements every group agrees with
    top = reader.locator("#informed-table tbody tr").first
    expect(top.locator("th")).to_contain_text(texts[-informed[1]])
    expect(top.locator("td").first).to_have_text(f"{round(100 * informed[0])}%")
    expect(reader.locator("#map-table tbody tr")).to_have_count(document.k)
    assert reader.locator("figure.map svg circle").count() > document.k
    assert reader.locator("script").count() == 0
    assert all(url.startswith(service["base"] + "/") for url in reader.requests)
    shoot(reader, "report-uberx")


def test_a_statement_rejected_after_the_result_leaves_its_report(reader, service, sessions, uberx):
    tick = wait_for_tick(sessions, uberx)
    document = _document(sessions, uberx, tick)
    texts = _texts(sessions, uberx)
    sid = next(m.statement for m in document.consensus["agree"] if m.statement in texts)
    permalink = f"{service['base']}/c/{uberx}/report/{tick}"
    reader.goto(permalink)
    expect(reader.locator("main")).to_contain_text(texts[sid])
    rejected = reader.request.patch(
        f"{service['base']}/api/v1/conversations/{uberx}/statements/{sid}",
        data={"status": "rejected"},
        headers={"Authorization": f"Bearer {service['token']}"},
    )
    assert rejected.ok, rejected.text()
    reader.goto(permalink)  # the same tick, in which the statement was not moderated out
    expect(reader.locator("#facts dd").first).to_have_text(str(tick))
    expect(reader.locator("main")).not_to_contain_text(texts[sid])
    expect(reader.locator("main")).not_to_contain_text(f"#{sid} ")


def _vote_round(sessions, cid: int, round_: int) -> None:
    """A new participant votes on a few statements (the worker then publishes a new tick)."""
    with sessions() as session:
        pid, _ = votes.join(session, cid, votes.Who(visitor=f"report-reader-{round_}"))
        for sid in range(3):
            votes.cast_vote(session, cid, pid, sid, 1 if (round_ + sid) % 2 else -1)
        session.commit()


def test_a_permalink_keeps_its_tick_while_newer_results_prune_the_old_ones(
    reader, service, sessions, uberx
):
    first = wait_for_tick(sessions, uberx)
    reader.goto(f"{service['base']}/c/{uberx}/report")
    permalink = reader.locator("#permalink").get_attribute("href")
    assert permalink == f"/c/{uberx}/report/{first}"
    tick = first
    for round_ in range(KEEP_RESULTS + 2):
        _vote_round(sessions, uberx, round_)
        tick = wait_for_tick(sessions, uberx, past=tick)
    assert tick >= first + KEEP_RESULTS + 2
    # the shown tick stays; the next one, never shown, has been pruned
    assert _document(sessions, uberx, first) is not None
    assert _document(sessions, uberx, first + 1) is None
    reader.goto(service["base"] + permalink)
    expect(reader.locator("#facts dd").first).to_have_text(str(first))
    expect(reader.locator("#permalink")).to_have_attribute("href", permalink)
    response = reader.goto(f"{service['base']}/c/{uberx}/report/{first + 1}")
    assert response.status == 404
    expect(reader.locator("h1")).to_have_text("This report is no longer kept")
    reader.locator("#latest-report").click()
    expect(reader.locator("#facts dd").first).to_have_text(str(tick))
    shoot(reader, "report-gone-then-latest")


def test_printing_hides_the_navigation_and_gives_a_readable_pdf(reader, service, sessions, uberx):
    reader.goto(f"{service['base']}/c/{uberx}/report")
    expect(reader.locator(".report-nav")).to_be_visible()
    reader.emulate_media(media="print")
    expect(reader.locator(".report-nav")).to_be_hidden()
    expect(reader.locator(".page-foot")).to_be_hidden()
    expect(reader.locator("section.group").first).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf = SCREENSHOTS / "report-uberx.pdf"
    reader.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes().startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))
    assert pages >= 3  # a page break before each section


def test_axe_finds_no_accessibility_violation_on_the_report(chromium, service, sessions, uberx):
    context = chromium.new_context(bypass_csp=True)  # to inject axe itself, nothing else
    page = context.new_page()
    page.goto(f"{service['base']}/c/{uberx}/report")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {runOnly: "
        "['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa', 'best-practice']})"
    )
    assert [v["id"] for v in result["violations"]] == [], result["violations"]
    context.close()


def test_on_a_phone_the_report_does_not_scroll_sideways(chromium, service, sessions, uberx):
    context = chromium.new_context(
        viewport={"width": 320, "height": 640}, is_mobile=True, java_script_enabled=False
    )
    page = context.new_page()
    page.goto(f"{service['base']}/c/{uberx}/report")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    boxes = page.locator(".table-box")
    assert boxes.count() >= 4
    for n in range(boxes.count()):  # each table's rows stack: not even its own box scrolls
        assert boxes.nth(n).evaluate("box => box.scrollWidth <= box.clientWidth")
    shoot(page, "report-phone")
    context.close()


def test_hostile_html_in_the_topic_and_statements_stays_inert_in_the_report(
    page, service, sessions
):
    seeds = [HOSTILE] + [f"Statement number {n}" for n in range(1, 8)]
    cid = create(service, HOSTILE, seeds, description=HOSTILE)
    with sessions() as session:
        for n in range(24):
            pid, _ = votes.join(session, cid, votes.Who(visitor=f"hostile-{n}"))
            votes.cast_vote(session, cid, pid, 0, 1)
            for sid in range(1, 8):
                votes.cast_vote(session, cid, pid, sid, 1 if (n % 2) == (sid % 2) else -1)
        session.commit()
    wait_for_votes(sessions, cid, 24 * 8)
    page.goto(f"{service['base']}/c/{cid}/report")
    expect(page.locator("h1")).to_have_text(HOSTILE)
    expect(page.locator(".report-head .description")).to_have_text(HOSTILE)
    expect(page.locator("#consensus-agree-table")).to_contain_text(HOSTILE)
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.hacked") is None
    assert page.errors == []
    shoot(page, "report-hostile")


def test_before_the_first_result_the_report_says_so_and_a_tick_is_not_found(client, staff):
    # the app alone, without a worker: the conversation stays without a result
    created = client.post(
        "/api/v1/conversations", json={"topic": "Nothing yet"}, headers=staff["admin"]
    )
    cid = created.get_json()["id"]
    response = client.get(f"/c/{cid}/report")
    assert response.status_code == 200
    assert "There is no result to report yet" in response.get_data(as_text=True)
    response = client.get(f"/c/{cid}/report/1")
    assert response.status_code == 404
    assert f'href="/c/{cid}/report"' in response.get_data(as_text=True)


def test_the_report_of_a_conversation_without_a_map_is_for_staff_only(page, service, sessions):
    cid = create(service, "Private map", ["one", "two"], map_enabled=False)
    response = page.goto(f"{service['base']}/c/{cid}/report")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("moderators only")
    signed = page.request.post(
        f"{service['base']}/api/v1/session", data={"name": "admin", "password": "password-1"}
    )
    assert signed.ok
    response = page.goto(f"{service['base']}/c/{cid}/report")
    assert response.status == 200
    expect(page.locator("h1")).to_have_text("Private map")


def test_the_pinned_results_migration_goes_down_and_up_again(database_url, engine):
    from sqlalchemy import inspect

    from polis_like.storage.migrate import downgrade, upgrade

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in inspect(connection).get_columns("math_results")}

    assert "pinned" in columns()
    try:
        downgrade(database_url, "0002_participation_history")
        assert "pinned" not in columns()
    finally:
        upgrade(database_url)  # the database is shared by the tests that follow
    assert "pinned" in columns()
