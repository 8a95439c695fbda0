"""What the API gives the moderation page: the queue (counts per status, near-duplicates,
authors' bans), the log with account names, and the ``statements`` event of staff streams."""

from __future__ import annotations

import http.client
import json
import time

from conftest import give_conversation
from test_api import API, error_of, make_conversation, participant
from test_service_http import Browser

from polis_like.storage.queue import near_key


def test_near_key_folds_case_spacing_punctuation_and_accents():
    assert near_key("Cafés, please!") == near_key("  cafes   PLEASE ") == "cafes please"
    assert near_key(
        "\uff26\uff55\uff4c\uff4c-width"
    )  # full-width letters == near_key("full width")
    assert near_key("公車要準時。") == near_key("公車要準時")
    assert near_key("buses") != near_key("bus")


def test_the_queue_gives_counts_near_duplicates_and_banned_authors(app, client, staff):
    cid = make_conversation(client, staff["admin"], moderation="strict", seed_statements=["Bus!"])
    give_conversation(client, staff, cid)
    texts = ["More buses, please.", "more BUSES please", "Más trenes", "mas trenes!!", "Trams"]

    for text in texts:
        browser = participant(app)
        response = browser.post(f"{API}/conversations/{cid}/statements", json={"text": text})
        assert response.status_code == 201, response.json

    moderator = staff["moderator"]
    client.put(f"{API}/conversations/{cid}/participants/3/ban", headers=moderator)
    client.patch(
        f"{API}/conversations/{cid}/statements/5", json={"status": "rejected"}, headers=moderator
    )
    queue = client.get(f"{API}/conversations/{cid}/moderation/queue", headers=moderator).json
    assert queue["counts"] == {"pending": 4, "accepted": 1, "rejected": 1}
    assert queue["status"] == "pending" and queue["total"] == 4
    by_id = {s["id"]: s for s in queue["statements"]}
    assert [n["id"] for n in by_id[1]["near_duplicates"]] == [2]
    assert by_id[2]["near_duplicates"] == [
        {"id": 1, "text": "More buses, please.", "status": "pending"}
    ]
    assert [n["id"] for n in by_id[3]["near_duplicates"]] == [4]
    assert by_id[4]["author"] == 3
    assert by_id[4]["author_banned"] is True and by_id[3]["author_banned"] is False
    searched = client.get(
        f"{API}/conversations/{cid}/moderation/queue?status=rejected&q=TRAM", headers=moderator
    ).json
    assert searched["counts"] == {"pending": 0, "accepted": 0, "rejected": 1}
    assert [s["text"] for s in searched["statements"]] == ["Trams"]
    paged = client.get(
        f"{API}/conversations/{cid}/moderation/queue?limit=2&offset=2", headers=moderator
    ).json
    assert [s["id"] for s in paged["statements"]] == [3, 4] and paged["total"] == 4
    assert "status must be" in error_of(
        client.get(f"{API}/conversations/{cid}/moderation/queue?status=x", headers=moderator), 400
    )
    assert "sign in" in error_of(
        participant(app).get(f"{API}/conversations/{cid}/moderation/queue"), 401
    )


def test_near_duplicates_stay_quick_with_thousands_of_statements(app, client, staff, sessions):
    from polis_like.storage import conversations, queue

    cid = make_conversation(client, staff["admin"], moderation="strict", seed_statements=[])
    with sessions() as session:
        conversation = conversations.get_conversation(session, cid)
        for i in range(3000):
            conversations.add_statement(session, conversation, f"idea number {i}", author_pid=None)
        conversations.add_statement(session, conversation, "Idea, number 7!", author_pid=None)
        session.commit()
        started = time.monotonic()
        found = queue.near_duplicates(session, cid, range(50))
        assert time.monotonic() - started < 2.0
    assert [n.sid for n in found[7]] == [3000]


def test_the_log_names_the_account(client, staff):
    cid = make_conversation(client, staff["admin"])
    give_conversation(client, staff, cid)
    client.patch(
        f"{API}/conversations/{cid}/statements/0",
        json={"status": "rejected"},
        headers=staff["moderator"],
    )
    log = client.get(f"{API}/conversations/{cid}/moderation/log", headers=staff["admin"]).json
    [entry, given] = log["entries"]  # newest first
    assert entry["action"] == "reject" and entry["account_name"] == "moderator-1"
    assert given["action"] == "moderators" and given["account_name"] == "admin-1"
    assert isinstance(entry["account"], int)


def _events(port: int, path: str, headers: dict):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Accept": "text/event-stream", **headers})
    return connection, connection.getresponse()


def _next_event(response, wanted: str, deadline: float) -> dict:
    name = None
    while time.monotonic() < deadline:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == wanted:
            return json.loads(line[6:])
        elif not line:
            name = None
    raise AssertionError(f"no {wanted} event in time")


def test_a_staff_stream_announces_a_new_statement_within_seconds(service):
    admin = Browser(service["base"], {"Authorization": f"Bearer {service['token']}"})
    _, conversation = admin.call(
        "POST", f"{API}/conversations", {"topic": "Live", "moderation": "strict"}
    )
    cid = conversation["id"]
    path = f"{API}/conversations/{cid}/events"
    connection, stream = _events(service["port"], path, admin.headers)
    try:
        deadline = time.monotonic() + 30
        assert _next_event(stream, "statements", deadline)["pending"] == 0
        status, _ = Browser(service["base"]).call(
            "POST", f"{API}/conversations/{cid}/statements", {"text": "a new idea"}
        )
        assert status == 201
        event = _next_event(stream, "statements", deadline)
        while event["pending"] < 1:
            event = _next_event(stream, "statements", deadline)
        assert event["pending"] == 1
    finally:
        connection.close()


def test_only_staff_streams_carry_statements_events(app, client, staff):
    app.config.update(STREAM_MAX_S=0.05, STREAM_PING_S=0.05)
    cid = make_conversation(client, staff["admin"], moderation="strict")
    give_conversation(client, staff, cid)
    participant(app).post(f"{API}/conversations/{cid}/statements", json={"text": "pending one"})
    path = f"{API}/conversations/{cid}/events"
    staff_stream = client.get(path, headers=staff["moderator"]).get_data(as_text=True)
    assert 'event: statements\ndata: {"pending":1,' in staff_stream
    public_stream = participant(app).get(path).get_data(as_text=True)
    assert "statements" not in public_stream
