"""Abuse: rate limits (429 with Retry-After, in memory or shared in Redis), invite codes, bans
that a cleared cookie or a re-cased XID does not evade, and the statement rules."""

from __future__ import annotations

import logging
import threading

import pytest
import redis
from conftest import give_conversation
from sqlalchemy import func, select

from polis_like.settings import RateLimit
from polis_like.storage.models import LatestVoteRow, ParticipantRow

API = "/api/v1"


def conversation(client, staff, **settings) -> int:
    body = {"topic": "Buses", "seed_statements": [f"statement {i}" for i in range(8)]}
    response = client.post(f"{API}/conversations", json=body | settings, headers=staff["admin"])
    assert response.status_code == 201, response.json
    return response.json["id"]


def browser(app, address: str = "192.0.2.1"):
    """A new browser (its own cookies) at ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def vote(client, cid: int, sid: int, **extra):
    return client.post(
        f"{API}/conversations/{cid}/votes", json={"statement_id": sid, "vote": 1, **extra}
    )


def refusal(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json["error"]["message"]


def stored_votes(sessions, cid: int) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).where(LatestVoteRow.conversation_id == cid))


@pytest.fixture
def limited(app):
    """Set ``app``'s limits of one action for a test: ``limited("votes", "participant", 3)``."""
    from server.ratelimit import Limiter

    def set_limits(action: str, *rules: tuple[str, int]):
        limits = tuple(RateLimit(scope, count, 60) for scope, count in rules)
        app.extensions["polis_like.limiter"] = Limiter({action: limits}, None)

    return set_limits


# -- rate limits ----------------------------------------------------------------------------


def test_a_participant_over_the_vote_limit_gets_429_and_the_vote_is_not_stored(
    app, client, staff, sessions, limited
):
    cid = conversation(client, staff)
    limited("votes", ("participant", 3))
    fast = browser(app)
    for sid in range(3):
        assert vote(fast, cid, sid).status_code == 200
    response = vote(fast, cid, 3)
    message = refusal(response, 429)
    assert "too many votes from this participant" in message and "at most 3 in a minute" in message
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert stored_votes(sessions, cid) == 3
    assert vote(browser(app), cid, 3).status_code == 200  # someone else still votes


def test_the_address_and_conversation_limits_count_everyone_there(app, client, staff, limited):
    cid = conversation(client, staff)
    limited("votes", ("ip", 4), ("conversation", 6))
    for _ in range(4):
        assert vote(browser(app, "192.0.2.7"), cid, 0).status_code == 200
    assert "from this network address" in refusal(vote(browser(app, "192.0.2.7"), cid, 0), 429)
    # Another address is counted apart, until the conversation's own limit.
    assert vote(browser(app, "198.51.100.1"), cid, 0).status_code == 200
    assert vote(browser(app, "198.51.100.2"), cid, 0).status_code == 200
    assert "in this conversation" in refusal(vote(browser(app, "198.51.100.3"), cid, 0), 429)


def test_an_ipv6_household_is_counted_by_its_64(app, client, staff, limited):
    cid = conversation(client, staff)
    limited("votes", ("ip", 2))
    assert vote(browser(app, "2001:db8:1:2::10"), cid, 0).status_code == 200
    assert vote(browser(app, "2001:db8:1:2:ffff::1"), cid, 0).status_code == 200
    assert refusal(vote(browser(app, "2001:db8:1:2::99"), cid, 0), 429)
    assert vote(browser(app, "2001:db8:1:3::1"), cid, 0).status_code == 200


def test_by_default_one_address_cannot_mint_participants_without_end(app, client, staff, sessions):
    """The attack of the issue: one client made 2,000 participants in 13 s."""
    cid = conversation(client, staff)
    made = 0
    for _ in range(200):
        response = vote(browser(app, "203.0.113.5"), cid, 0)
        if response.status_code == 429:
            assert (
                "too many new participants from this network address"
                in response.json["error"]["message"]
            )
            break
        made += 1
    assert made == 60  # the default: 60 new participants a minute from one address
    with sessions() as session:
        count = session.scalar(select(func.count()).where(ParticipantRow.conversation_id == cid))
    assert count == 60
    assert vote(browser(app, "203.0.113.6"), cid, 0).status_code == 200


def test_by_default_a_participant_writes_at_most_five_statements_a_minute(app, client, staff):
    cid = conversation(client, staff)
    writer = browser(app)
    for i in range(5):
        response = writer.post(f"{API}/conversations/{cid}/statements", json={"text": f"idea {i}"})
        assert response.status_code == 201, response.json
    response = writer.post(f"{API}/conversations/{cid}/statements", json={"text": "idea 5"})
    assert "too many new statements from this participant" in refusal(response, 429)
    assert "Retry-After" in response.headers


def test_sign_in_attempts_are_limited_per_account_name_even_with_the_right_password(app, staff):
    attacker = browser(app, "192.0.2.50")
    for _ in range(10):
        wrong = {"name": "admin-1", "password": "guess"}
        assert attacker.post(f"{API}/session", json=wrong).status_code == 401
    # The account's limit holds from another address too, and for the right password.
    owner = browser(app, "192.0.2.51")
    right = {"name": "ADMIN-1", "password": "password-1"}
    assert "for this account" in refusal(owner.post(f"{API}/session", json=right), 429)


@pytest.fixture
def redis_url():
    url = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def test_two_web_processes_share_the_counts_in_redis(database_url, app, client, staff, redis_url):
    from polis_like.settings import read_settings
    from server.app import create_app

    cid = conversation(client, staff)
    settings = read_settings({"REDIS_URL": redis_url, "POLIS_LIKE_LIMIT_VOTES": "ip 3/minute"})
    config = {"DATABASE_URL": database_url, "SECRET_KEY": "test-secret", "TESTING": True}
    first, second = create_app(config, settings), create_app(config, settings)
    try:
        assert vote(browser(first), cid, 0).status_code == 200
        assert vote(browser(second), cid, 1).status_code == 200
        assert vote(browser(first), cid, 2).status_code == 200
        assert refusal(vote(browser(second), cid, 3), 429)
    finally:
        for each in (first, second):
            each.extensions["polis_like.engine"].dispose()


def test_with_redis_down_votes_go_through_and_the_log_says_so_once(
    database_url, app, client, staff, caplog
):
    from polis_like.settings import read_settings
    from server.app import create_app

    cid = conversation(client, staff)
    settings = read_settings({"REDIS_URL": "redis://127.0.0.1:1/0"})
    config = {"DATABASE_URL": database_url, "SECRET_KEY": "test-secret", "TESTING": True}
    down = create_app(config, settings)
    try:
        with caplog.at_level(logging.WARNING, logger="server.ratelimit"):
            for sid in range(3):
                assert vote(browser(down), cid, sid).status_code == 200
        lines = [r for r in caplog.records if "rate limits not counted" in r.getMessage()]
        assert len(lines) == 1
    finally:
        down.extensions["polis_like.engine"].dispose()


def test_counts_in_memory_slide_from_one_window_to_the_next_without_threads():
    """A window's hits weigh on the next window by how much of it still overlaps the last
    minute (the sliding-window counter of ``limits``), and counting starts no thread."""
    from limits import RateLimitItemPerMinute

    from server.ratelimit import LocalCounts

    now = [600.0]  # the start of a minute
    counts = LocalCounts(clock=lambda: now[0])
    three = RateLimitItemPerMinute(3)
    threads = threading.active_count()
    assert [counts.hit(three, "p") for _ in range(4)] == [True, True, True, False]
    assert counts.hit(three, "q")  # another key counts apart
    now[0] = 630.0  # half-way: the refusal says when a hit counts again, the window's end
    assert not counts.hit(three, "p")
    assert counts.get_window_stats(three, "p") == (660.0, 0)
    now[0] = 690.0  # half-way through the next minute: 3 hits weigh 1.5, so two more count
    assert [counts.hit(three, "p") for _ in range(3)] == [True, True, False]
    now[0] = 800.0  # two windows on, nothing is left, and stale keys are dropped
    assert counts.get_window_stats(three, "q") == (800.0, 3)
    for i in range(100):
        counts.hit(three, f"visitor {i}")
    now[0] = 1000.0
    counts.hit(three, "p")
    assert len(counts._windows) == 1
    assert threading.active_count() == threads


def test_limits_are_settings_with_clear_errors():
    from polis_like.errors import InputError
    from polis_like.settings import read_settings

    settings = read_settings({"POLIS_LIKE_LIMIT_VOTES": "ip 600/10 minutes, participant 2/second"})
    assert settings.limit_votes == (RateLimit("ip", 600, 600), RateLimit("participant", 2, 1))
    assert read_settings({"POLIS_LIKE_LIMIT_JOINS": "off"}).limit_joins == ()
    with pytest.raises(InputError, match="not a limit like"):
        read_settings({"POLIS_LIKE_LIMIT_VOTES": "lots"})
    with pytest.raises(InputError, match="signin are counted per ip, account, not participant"):
        read_settings({"POLIS_LIKE_LIMIT_SIGNIN": "participant 5/minute"})


# -- invite codes ---------------------------------------------------------------------------


def test_an_invite_code_lets_in_only_those_who_bring_it(app, client, staff):
    cid = conversation(client, staff, invite_code="buses-2026")
    stranger = browser(app)
    assert "invited participants only" in refusal(vote(stranger, cid, 0), 403)
    assert refusal(vote(stranger, cid, 0, invite="buses-2025"), 403)
    invited = browser(app)
    assert vote(invited, cid, 0, invite="buses-2026").status_code == 200
    assert vote(invited, cid, 1).status_code == 200  # a participant now: no code needed
    by_link = browser(app)
    response = by_link.post(
        f"{API}/conversations/{cid}/statements?invite=buses-2026", json={"text": "more buses"}
    )
    assert response.status_code == 201
    # The code shows to the conversation's moderators only.
    assert "invite_code" not in stranger.get(f"{API}/conversations/{cid}").json
    seen = client.get(f"{API}/conversations/{cid}", headers=staff["admin"]).json
    assert seen["invite_code"] == "buses-2026"
    page = stranger.get(f"/c/{cid}").get_data(as_text=True)
    assert 'data-state="invite_required"' in page and "invited participants only" in page
    assert 'data-state="open"' in browser(app).get(f"/c/{cid}?invite=buses-2026").get_data(
        as_text=True
    )


def test_invite_codes_are_checked_when_set(client, staff):
    cid = conversation(client, staff)
    for bad in ("short", "has space!", 7, "x" * 65):
        response = client.patch(
            f"{API}/conversations/{cid}", json={"invite_code": bad}, headers=staff["admin"]
        )
        assert "invite_code must be" in refusal(response, 400)
    cleared = client.patch(
        f"{API}/conversations/{cid}", json={"invite_code": None}, headers=staff["admin"]
    )
    assert cleared.json["invite_code"] is None


# -- bans -----------------------------------------------------------------------------------


def ban(client, staff, cid: int, pid: int):
    response = client.put(
        f"{API}/conversations/{cid}/participants/{pid}/ban", headers=staff["admin"]
    )
    assert response.status_code == 200, response.json


def test_a_cleared_cookie_does_not_lift_a_ban(app, client, staff):
    cid = conversation(client, staff)
    troll = browser(app, "192.0.2.66")
    pid = vote(troll, cid, 0).json["participant"]
    ban(client, staff, cid, pid)
    assert "banned" in refusal(vote(troll, cid, 1), 403)
    fresh = browser(app, "192.0.2.66")  # the same person with their cookies cleared
    assert "banned" in refusal(vote(fresh, cid, 1), 403)
    assert "banned" in refusal(
        fresh.post(f"{API}/conversations/{cid}/statements", json={"text": "again"}), 403
    )
    assert vote(browser(app, "192.0.2.67"), cid, 1).status_code == 200  # a neighbour


def test_a_re_cased_xid_does_not_lift_a_ban(app, client, staff):
    cid = conversation(client, staff, xid_mode="required")
    pid = vote(browser(app, "192.0.2.1"), cid, 0, xid="Alice@example.org").json["participant"]
    ban(client, staff, cid, pid)
    for xid in ("alice@example.org", "ALICE@EXAMPLE.ORG", " Alice@example.org "):
        assert "banned" in refusal(vote(browser(app, "198.51.100.9"), cid, 0, xid=xid), 403)
    assert vote(browser(app, "198.51.100.9"), cid, 0, xid="bob@example.org").status_code == 200


# -- statement rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("abc\u202edcba", "bidirectional override"),
        ("vote \u2066here\u2069", "bidirectional override"),
        ("\u200b\u200b\u00ad", "no visible characters"),
        ("\u3164\u3164", "no visible characters"),
        ("\u0301", "no visible characters"),
        ("bad \x85 control", "control characters"),
        ("   ", "is empty"),
    ],
)
def test_statement_rules_refuse_unreadable_text(app, client, staff, text, fragment):
    cid = conversation(client, staff)
    response = browser(app).post(f"{API}/conversations/{cid}/statements", json={"text": text})
    assert fragment in refusal(response, 400)


@pytest.mark.parametrize(
    "variant",
    ["More bus\u200b lanes", "More bus lan\u00ades", "MORE BUS LANES", "More\u2060 bus lanes"],
)
def test_duplicates_are_found_past_invisible_format_characters(app, client, staff, variant):
    cid = conversation(client, staff)
    first = browser(app).post(
        f"{API}/conversations/{cid}/statements", json={"text": "More bus lanes"}
    )
    assert first.status_code == 201
    again = browser(app).post(f"{API}/conversations/{cid}/statements", json={"text": variant})
    assert f"statement {first.json['id']} already says this" in refusal(again, 409)


def test_joiners_inside_words_and_right_to_left_marks_are_kept(app, client, staff):
    cid = conversation(client, staff)
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a word
    arabic = "\u062e\u0637\u200f\u0627\u0644\u0628\u0627\u0635"  # a right-to-left mark
    for text in (arabic, persian, "👩\u200d👩\u200d👧 families"):
        response = browser(app).post(f"{API}/conversations/{cid}/statements", json={"text": text})
        assert response.status_code == 201 and response.json["text"] == text


# -- moderators -----------------------------------------------------------------------------


def test_an_admin_gives_conversations_to_moderators(app, client, staff):
    cid = conversation(client, staff)
    path = f"{API}/conversations/{cid}/moderators"
    assert client.get(path, headers=staff["moderator"]).status_code == 403
    give_conversation(client, staff, cid)
    listed = client.get(path, headers=staff["moderator"]).json
    assert [m["name"] for m in listed["moderators"]] == ["moderator-1"]
    assert client.put(path, json={"account_ids": []}, headers=staff["moderator"]).status_code == 403
    admin_id = client.get(f"{API}/session", headers=staff["admin"]).json["id"]
    for body, fragment in [
        ({"account_ids": [admin_id]}, "moderates every conversation already"),
        ({"account_ids": [999]}, "no account 999"),
        ({"account_ids": "1"}, "send account_ids"),
        ({"account_ids": ["1"]}, "must be an integer"),
    ]:
        assert fragment in refusal(client.put(path, json=body, headers=staff["admin"]), 400)
    taken = client.put(path, json={"account_ids": []}, headers=staff["admin"])
    assert taken.json["moderators"] == []
    queue = client.get(f"{API}/conversations/{cid}/moderation/queue", headers=staff["moderator"])
    assert "does not moderate conversation" in refusal(queue, 403)
