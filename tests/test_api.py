"""The HTTP API contract on SQLite and PostgreSQL: what participants, moderators and admins get,
and a clear JSON error for every kind of bad request."""

from __future__ import annotations

import json

import pytest
from conftest import give_conversation

API = "/api/v1"


def make_conversation(client, headers, **settings):
    body = {"topic": "Ride sharing", "seed_statements": ["one", "two", "three"], **settings}
    response = client.post(f"{API}/conversations", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def participant(app):
    """A new browser: its own cookie jar."""
    return app.test_client()


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["error"]["status"] == status
    message = response.json["error"]["message"]
    assert isinstance(message, str) and message
    return message


# -- conversations ---------------------------------------------------------------------------


def test_admin_creates_a_conversation_and_anyone_reads_it(client, staff):
    response = client.post(
        f"{API}/conversations",
        headers=staff["admin"],
        json={
            "topic": "  Uber in Taiwan ",
            "description": "How should it be regulated?",
            "moderation": "strict",
            "write_enabled": False,
            "map_enabled": True,
            "xid_mode": "optional",
            "seed_statements": ["Drivers need licences"],
        },
    )
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location == f"{API}/conversations/{response.json['id']}"
    got = client.get(location)
    assert got.status_code == 200
    assert got.json["topic"] == "Uber in Taiwan"
    assert got.json["moderation"] == "strict"
    assert got.json["write_enabled"] is False
    assert got.json["xid_mode"] == "optional"


def test_admin_closes_a_conversation_and_votes_are_refused(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    changed = client.patch(
        f"{API}/conversations/{cid}", json={"is_open": False}, headers=staff["admin"]
    )
    assert changed.status_code == 200 and changed.json["is_open"] is False
    browser = participant(app)
    assert "closed" in error_of(
        browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1}), 403
    )
    assert "closed" in error_of(
        browser.post(f"{API}/conversations/{cid}/statements", json={"text": "new idea"}), 403
    )


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({}, "topic is required"),
        ({"topic": ""}, "topic is empty"),
        ({"topic": 5}, "topic must be a string"),
        ({"topic": "x" * 501}, "limit is 500"),
        ({"topic": "t", "moderation": "lax"}, "moderation"),
        ({"topic": "t", "is_open": "yes"}, "is_open must be true or false"),
        ({"topic": "t", "colour": "red"}, "unknown field: colour"),
        ({"topic": "t", "seed_statements": "one"}, "seed_statements"),
        ({"topic": "t", "seed_statements": ["a", "A "]}, "already says this"),
    ],
)
def test_bad_conversation_settings_are_refused(client, staff, body, fragment):
    response = client.post(f"{API}/conversations", json=body, headers=staff["admin"])
    assert fragment in error_of(response, 409 if "already" in fragment else 400)
    assert client.get(f"{API}/conversations", headers=staff["admin"]).json["conversations"] == []


def test_only_admins_create_conversations(app, client, staff):
    body = {"topic": "t"}
    assert "sign in" in error_of(client.post(f"{API}/conversations", json=body), 401)
    assert "admin" in error_of(
        client.post(f"{API}/conversations", json=body, headers=staff["moderator"]), 403
    )
    assert "unknown or revoked token" in error_of(
        client.post(f"{API}/conversations", json=body, headers={"Authorization": "Bearer nope"}),
        401,
    )
    assert "Bearer <token>" in error_of(
        client.post(f"{API}/conversations", json=body, headers={"Authorization": "Basic abc"}), 401
    )


def test_unknown_conversation_is_404_everywhere(client, staff):
    for method, path, body in [
        ("get", "/conversations/99", None),
        ("get", "/conversations/99/next", None),
        ("post", "/conversations/99/votes", {"statement_id": 0, "vote": 1}),
        ("post", "/conversations/99/statements", {"text": "hi"}),
        ("get", "/conversations/99/results", None),
        ("get", "/conversations/99/events", None),
        ("get", "/conversations/99/me", None),
        ("get", "/conversations/99/statements", None),
    ]:
        response = getattr(client, method)(API + path, json=body, headers=staff["admin"])
        assert "no conversation 99" in error_of(response, 404)


# -- participating -----------------------------------------------------------------------------


def test_a_participant_votes_through_every_statement(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    first = browser.get(f"{API}/conversations/{cid}/next")
    assert first.status_code == 200
    assert first.json["remaining"] == 3 and first.json["total"] == 3
    assert first.json["participant"] is None  # nobody until they act
    assert "polis_like=" in first.headers["Set-Cookie"]
    seen = []
    current = first.json
    for expected_remaining in (2, 1, 0):
        seen.append(current["statement"]["id"])
        current = browser.post(
            f"{API}/conversations/{cid}/votes",
            json={"statement_id": current["statement"]["id"], "vote": -1},
        ).json
        assert current["remaining"] == expected_remaining
    assert current["statement"] is None
    assert sorted(seen) == [0, 1, 2]
    assert browser.get(f"{API}/conversations/{cid}/me").json["votes"] == 3
    # another browser is another participant
    other = participant(app)
    assert other.get(f"{API}/conversations/{cid}/next").json["remaining"] == 3


def test_the_participant_cookie_is_sent_again_only_when_a_day_old(app, client, staff, monkeypatch):
    """Not re-signed with every answer (it cost more than routing a vote), but renewed daily,
    so that a participant who keeps coming back keeps their identity."""
    import time

    from server import cookies

    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    assert "polis_like=" in browser.get(f"{API}/conversations/{cid}/next").headers["Set-Cookie"]
    vote = browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
    assert vote.status_code == 200 and "Set-Cookie" not in vote.headers
    assert "Set-Cookie" not in browser.get(f"{API}/conversations/{cid}/me").headers
    later = time.time() + cookies.RENEW_AFTER_S + 60
    monkeypatch.setattr(cookies.time, "time", lambda: later)
    renewed = browser.get(f"{API}/conversations/{cid}/me")
    assert "polis_like=" in renewed.headers["Set-Cookie"]
    assert renewed.json["votes"] == 1  # the same participant


def test_a_cookie_past_its_lifetime_is_not_honoured_even_once_seen(app, client, staff, monkeypatch):
    """The cookie's signature is checked once while it keeps coming back, but its age at
    every request: after a year without a visit the browser is a new participant."""
    import time

    from server import cookies

    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    browser.get(f"{API}/conversations/{cid}/next")
    browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
    assert browser.get(f"{API}/conversations/{cid}/me").json["votes"] == 1
    later = time.time() + app.permanent_session_lifetime.total_seconds() + 60
    monkeypatch.setattr(cookies.time, "time", lambda: later)
    assert browser.get(f"{API}/conversations/{cid}/me").json["votes"] == 0


def test_a_new_vote_replaces_the_old_one(app, client, staff, sessions):
    from polis_like.storage.models import LatestVoteRow, VoteEventRow

    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    for value in (1, -1, 0):
        response = browser.post(
            f"{API}/conversations/{cid}/votes", json={"statement_id": 1, "vote": value}
        )
        assert response.status_code == 200
        assert response.json["vote"] == {"statement_id": 1, "vote": value}
    assert response.json["remaining"] == 2
    with sessions() as session:
        latest = session.query(LatestVoteRow).all()
        assert [(v.pid, v.sid, v.vote) for v in latest] == [(0, 1, 0)]
        assert [v.vote for v in session.query(VoteEventRow).order_by(VoteEventRow.id)] == [1, -1, 0]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"statement_id": 0, "vote": 2}, 400, "vote must be 1"),
        ({"statement_id": 0, "vote": "1"}, 400, "vote must be an integer"),
        ({"statement_id": 0, "vote": True}, 400, "vote must be an integer"),
        ({"statement_id": 0, "vote": 1.0}, 400, "vote must be an integer"),
        ({"statement_id": "0", "vote": 1}, 400, "statement_id must be an integer"),
        ({"vote": 1}, 400, "statement_id and vote"),
        ({"statement_id": 0, "vote": 1, "weight": 3}, 400, "unknown field: weight"),
        ({"statement_id": 77, "vote": 1}, 404, "no statement 77"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_votes_are_refused_and_nothing_is_stored(
    app, client, staff, sessions, body, status, fragment
):
    from polis_like.storage.models import VoteEventRow

    cid = make_conversation(client, staff["admin"])
    response = participant(app).post(f"{API}/conversations/{cid}/votes", json=body)
    assert fragment in error_of(response, status)
    with sessions() as session:
        assert session.query(VoteEventRow).count() == 0


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("{not json", "not valid JSON"),
        ("", "body is empty"),
        ("null", "JSON object"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_json_is_a_clear_400(app, client, staff, data, fragment):
    cid = make_conversation(client, staff["admin"])
    for path in ("votes", "statements"):
        response = participant(app).post(
            f"{API}/conversations/{cid}/{path}", data=data, content_type="application/json"
        )
        assert fragment in error_of(response, 400)


def test_oversized_body_is_refused(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    response = participant(app).post(
        f"{API}/conversations/{cid}/statements", json={"text": "x" * 70_000}
    )
    assert "limit" in error_of(response, 413)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "text is empty"),
        ("   \n ", "text is empty"),
        (None, "text must be a string"),
        (["a"], "text must be a string"),
        ("x" * 1001, "the limit is 1000"),
        ("bell\x07", "control characters"),
    ],
)
def test_bad_statement_text_is_refused(app, client, staff, text, fragment):
    cid = make_conversation(client, staff["admin"])
    response = participant(app).post(f"{API}/conversations/{cid}/statements", json={"text": text})
    assert fragment in error_of(response, 400)
    listed = client.get(f"{API}/conversations/{cid}/statements", headers=staff["admin"]).json
    assert listed["total"] == 3


def test_statements_show_at_once_under_open_moderation_and_author_agrees(app, client, staff):
    cid = make_conversation(client, staff["admin"], moderation="open")
    author = participant(app)
    hostile = "<script>alert('x')</script> & friends"
    response = author.post(f"{API}/conversations/{cid}/statements", json={"text": hostile})
    assert response.status_code == 201
    assert response.json["status"] == "accepted"
    assert response.json["text"] == hostile  # stored as given; pages escape it
    sid = response.json["id"]
    assert response.headers["Location"] == f"{API}/conversations/{cid}/statements/{sid}"
    assert client.get(response.headers["Location"]).json["text"] == hostile
    # the author has agreed with it already, so they are not asked about it
    assert author.get(f"{API}/conversations/{cid}/next").json["remaining"] == 3
    assert participant(app).get(f"{API}/conversations/{cid}/next").json["remaining"] == 4


def test_duplicates_are_refused_with_409(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    assert (
        browser.post(
            f"{API}/conversations/{cid}/statements", json={"text": "Fares should be capped"}
        ).status_code
        == 201
    )
    message = error_of(
        participant(app).post(
            f"{API}/conversations/{cid}/statements", json={"text": "  fares SHOULD be   capped "}
        ),
        409,
    )
    assert "already says this" in message
    # a participant's statement may not repeat a seed statement either
    assert "already says this" in error_of(
        browser.post(f"{API}/conversations/{cid}/statements", json={"text": "ONE"}), 409
    )


def test_strict_moderation_hides_statements_until_accepted(app, client, staff):
    cid = make_conversation(client, staff["admin"], moderation="strict")
    give_conversation(client, staff, cid)
    author = participant(app)
    response = author.post(f"{API}/conversations/{cid}/statements", json={"text": "new idea"})
    assert response.json["status"] == "pending"
    sid = response.json["id"]
    viewer = participant(app)
    assert viewer.get(f"{API}/conversations/{cid}/next").json["total"] == 3
    assert f"statement {sid} is not open for voting" in error_of(
        viewer.post(f"{API}/conversations/{cid}/votes", json={"statement_id": sid, "vote": 1}), 403
    )
    assert f"no statement {sid}" in error_of(
        viewer.get(f"{API}/conversations/{cid}/statements/{sid}"), 404
    )
    pending = client.get(
        f"{API}/conversations/{cid}/statements?status=pending", headers=staff["moderator"]
    ).json
    assert [s["id"] for s in pending["statements"]] == [sid]
    assert pending["statements"][0]["author"] == 0
    accepted = client.patch(
        f"{API}/conversations/{cid}/statements/{sid}",
        json={"status": "accepted"},
        headers=staff["moderator"],
    )
    assert accepted.status_code == 200 and accepted.json["status"] == "accepted"
    assert viewer.get(f"{API}/conversations/{cid}/next").json["total"] == 4


def test_writing_can_be_turned_off(app, client, staff):
    cid = make_conversation(client, staff["admin"], write_enabled=False)
    assert "does not take statements" in error_of(
        participant(app).post(f"{API}/conversations/{cid}/statements", json={"text": "hi"}), 403
    )


def test_xids_identify_participants_when_enabled(app, client, staff):
    cid = make_conversation(client, staff["admin"], xid_mode="required")
    assert "needs an xid" in error_of(participant(app).get(f"{API}/conversations/{cid}/next"), 403)
    a = participant(app).post(
        f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1, "xid": "user-42"}
    )
    assert a.status_code == 200
    # same xid from another browser: the same participant
    b = participant(app).get(f"{API}/conversations/{cid}/next?xid=user-42")
    assert b.json["participant"] == a.json["participant"] and b.json["remaining"] == 2
    assert "xid must be a non-empty string" in error_of(
        participant(app).get(f"{API}/conversations/{cid}/next?xid="), 400
    )
    off = make_conversation(client, staff["admin"], topic="no xids")
    assert "does not use XIDs" in error_of(
        participant(app).get(f"{API}/conversations/{off}/next?xid=u1"), 400
    )


# -- moderation ----------------------------------------------------------------------------


def test_participants_cannot_call_moderator_routes(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    browser = participant(app)
    browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
    for method, path, body in [
        ("patch", f"/conversations/{cid}/statements/0", {"status": "rejected"}),
        ("post", f"/conversations/{cid}/moderation", {"statement_ids": [0], "status": "rejected"}),
        ("put", f"/conversations/{cid}/participants/0/ban", None),
        ("delete", f"/conversations/{cid}/participants/0/ban", None),
        ("get", f"/conversations/{cid}/moderation/log", None),
        ("patch", f"/conversations/{cid}", {"is_open": False}),
        ("get", "/conversations", None),
    ]:
        assert "sign in" in error_of(getattr(browser, method)(API + path, json=body), 401)
    assert "admin" in error_of(
        client.patch(
            f"{API}/conversations/{cid}", json={"is_open": False}, headers=staff["moderator"]
        ),
        403,
    )
    assert client.get(f"{API}/conversations/{cid}").json["is_open"] is True


def test_bulk_moderation_is_all_or_nothing(client, staff):
    cid = make_conversation(client, staff["admin"])
    give_conversation(client, staff, cid)
    moderator = staff["moderator"]
    missing = client.post(
        f"{API}/conversations/{cid}/moderation",
        headers=moderator,
        json={"statement_ids": [0, 1, 9], "status": "rejected"},
    )
    assert "no statement 9" in error_of(missing, 404)
    statuses = client.get(f"{API}/conversations/{cid}/statements", headers=moderator).json
    assert {s["status"] for s in statuses["statements"]} == {"accepted"}
    done = client.post(
        f"{API}/conversations/{cid}/moderation",
        headers=moderator,
        json={"statement_ids": [0, 1], "status": "rejected"},
    )
    assert [s["status"] for s in done.json["statements"]] == ["rejected", "rejected"]
    log = client.get(f"{API}/conversations/{cid}/moderation/log", headers=moderator).json
    assert sorted((e["action"], e["statement"]) for e in log["entries"]) == [
        ("moderators", None),  # the admin gave the conversation to the moderator
        ("reject", 0),
        ("reject", 1),
    ]
    for body, fragment in [
        ({"statement_ids": [], "status": "rejected"}, "non-empty list"),
        ({"statement_ids": ["0"], "status": "rejected"}, "must be an integer"),
        ({"statement_ids": [0], "status": "maybe"}, "status must be"),
        ({"statement_ids": [0]}, "status and/or is_meta"),
        ({"statement_ids": [0], "status": "accepted", "why": "x"}, "unknown field"),
    ]:
        assert fragment in error_of(
            client.post(f"{API}/conversations/{cid}/moderation", json=body, headers=moderator), 400
        )


def test_moderation_search_and_pages(app, client, staff):
    cid = make_conversation(client, staff["admin"], moderation="strict", seed_statements=[])
    give_conversation(client, staff, cid)
    for i in range(30):
        participant(app).post(
            f"{API}/conversations/{cid}/statements",
            json={"text": f"idea {i} about {'buses' if i % 3 else 'trains'}"},
        )
    page = client.get(
        f"{API}/conversations/{cid}/statements?status=pending&q=TRAINS&limit=4&offset=4",
        headers=staff["moderator"],
    ).json
    assert page["total"] == 10
    assert [s["id"] for s in page["statements"]] == [12, 15, 18, 21]
    literal = client.get(
        f"{API}/conversations/{cid}/statements?q=100%25", headers=staff["moderator"]
    ).json
    assert literal["total"] == 0
    for query, fragment in [
        ("limit=0", "limit must be between"),
        ("limit=x", "limit must be an integer"),
        ("offset=-1", "offset must be between"),
        ("status=unknown", "status must be pending, accepted or rejected"),
    ]:
        assert fragment in error_of(
            client.get(f"{API}/conversations/{cid}/statements?{query}", headers=staff["moderator"]),
            400,
        )


def test_banned_participants_cannot_vote_and_leave_the_math(app, client, staff):
    cid = make_conversation(client, staff["admin"])
    give_conversation(client, staff, cid)
    browser = participant(app)
    pid = browser.post(
        f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1}
    ).json["participant"]
    banned = client.put(
        f"{API}/conversations/{cid}/participants/{pid}/ban", headers=staff["moderator"]
    )
    assert banned.json == {"participant": pid, "banned": True}
    assert "banned" in error_of(
        browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 1, "vote": 1}), 403
    )
    assert "no participant 99" in error_of(
        client.put(f"{API}/conversations/{cid}/participants/99/ban", headers=staff["moderator"]),
        404,
    )
    lifted = client.delete(
        f"{API}/conversations/{cid}/participants/{pid}/ban", headers=staff["moderator"]
    )
    assert lifted.json["banned"] is False
    assert (
        browser.post(
            f"{API}/conversations/{cid}/votes", json={"statement_id": 1, "vote": 1}
        ).status_code
        == 200
    )


# -- staff sign-in ------------------------------------------------------------------------------


def test_sign_in_with_password_sets_a_session(app, staff):
    browser = app.test_client()
    assert "not signed in" in error_of(browser.get(f"{API}/session"), 401)
    assert "wrong name or password" in error_of(
        browser.post(f"{API}/session", json={"name": "admin-1", "password": "wrong-pass"}), 401
    )
    assert "name and password" in error_of(
        browser.post(f"{API}/session", json={"name": "admin-1"}), 400
    )
    signed = browser.post(f"{API}/session", json={"name": "admin-1", "password": "password-1"})
    assert signed.json["role"] == "admin"
    assert browser.post(f"{API}/conversations", json={"topic": "t"}).status_code == 201
    assert browser.delete(f"{API}/session").status_code == 204
    assert "sign in" in error_of(browser.post(f"{API}/conversations", json={"topic": "t"}), 401)


# -- results ---------------------------------------------------------------------------------


def test_results_carry_a_tick_etag_and_answer_304(app, client, staff, engine):
    from worker.runner import Worker

    cid = make_conversation(client, staff["admin"])
    assert "no result yet" in error_of(client.get(f"{API}/conversations/{cid}/results"), 404)
    for i in range(3):
        participant(app).post(
            f"{API}/conversations/{cid}/votes", json={"statement_id": i, "vote": 1}
        )
    worker = Worker(engine)
    worker.step()
    first = client.get(f"{API}/conversations/{cid}/results")
    assert first.status_code == 200 and first.json["tick"] == 1
    assert first.json["participation"]["votes"] == 3
    assert first.json["participation"]["participants"] == 3
    etag = first.headers["ETag"]
    assert (
        client.get(
            f"{API}/conversations/{cid}/results", headers={"If-None-Match": etag}
        ).status_code
        == 304
    )
    participant(app).post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": -1})
    worker.step()
    second = client.get(f"{API}/conversations/{cid}/results", headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.json["tick"] == 2
    assert second.headers["ETag"] != etag


def test_hidden_map_shows_results_to_staff_only(app, client, staff, engine):
    from worker.runner import Worker

    cid = make_conversation(client, staff["admin"], map_enabled=False)
    give_conversation(client, staff, cid)
    participant(app).post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
    Worker(engine).step()
    assert "moderators only" in error_of(
        participant(app).get(f"{API}/conversations/{cid}/results"), 403
    )
    assert (
        client.get(f"{API}/conversations/{cid}/results", headers=staff["moderator"]).status_code
        == 200
    )


def test_openapi_document_names_every_route_and_no_other(app, client):
    document = client.get(f"{API}/openapi.json").json
    assert document["openapi"].startswith("3.")
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API):
            continue
        path = rule.rule.replace("<id:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    assert documented == served
    json.dumps(document)  # serialisable
