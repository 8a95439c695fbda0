"""The API the pages read beside the results: positions (binary), participation over time, and
statement texts with the results; their ETags and who may read them, on both databases."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import give_conversation

API = "/api/v1"


def make_conversation(client, headers, **settings):
    body = {"topic": "Buses", "seed_statements": ["one", "two", "three"], **settings}
    response = client.post(f"{API}/conversations", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def vote(app, cid, sid, value=1):
    """A vote from a new browser (a new participant)."""
    response = app.test_client().post(
        f"{API}/conversations/{cid}/votes", json={"statement_id": sid, "vote": value}
    )
    assert response.status_code == 200, response.json


@pytest.fixture
def worker(engine):
    from worker.runner import Worker

    return Worker(engine)


def columns(body: bytes):
    n = len(body) // 10
    return (
        np.frombuffer(body, "<f4", n, 0),
        np.frombuffer(body, "<f4", n, 4 * n),
        np.frombuffer(body, "<i2", n, 8 * n),
    )


def test_positions_are_ten_bytes_per_participant_with_the_results_etag(app, client, staff, worker):
    cid = make_conversation(client, staff["admin"])
    assert client.get(f"{API}/conversations/{cid}/positions").status_code == 404
    for i in range(7):
        vote(app, cid, i % 3, 1 if i % 2 else -1)
    worker.step()
    response = client.get(f"{API}/conversations/{cid}/positions")
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert len(response.data) == 7 * 10
    assert response.headers["X-Participants"] == "7"
    assert (
        response.headers["ETag"] == client.get(f"{API}/conversations/{cid}/results").headers["ETag"]
    )
    x, _, group = columns(response.data)
    assert x.dtype == np.float32 and group.dtype == np.int16
    assert (group >= -1).all()
    etag = response.headers["ETag"]
    again = client.get(f"{API}/conversations/{cid}/positions", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    vote(app, cid, 0)
    worker.step()
    newer = client.get(f"{API}/conversations/{cid}/positions", headers={"If-None-Match": etag})
    assert newer.status_code == 200 and len(newer.data) == 8 * 10
    assert newer.headers["ETag"] != etag


def test_positions_of_100k_participants_weigh_about_a_megabyte():
    from polis_like.storage.results import Positions, positions_blob

    n = 100_000
    rng = np.random.default_rng(1)
    stored = Positions(
        x=rng.normal(size=n).astype(np.float32),
        y=rng.normal(size=n).astype(np.float32),
        group=rng.integers(-1, 4, n).astype(np.int16),
    )
    body = positions_blob(stored)
    assert len(body) == 1_000_000
    x, y, group = columns(body)
    assert (x == stored.x).all() and (y == stored.y).all() and (group == stored.group).all()


def test_participation_grows_by_one_point_per_tick(app, client, staff, worker):
    cid = make_conversation(client, staff["admin"])
    for tick in range(1, 4):
        vote(app, cid, 0)
        vote(app, cid, 1, -1)
        worker.step()
        response = client.get(f"{API}/conversations/{cid}/participation")
        assert response.status_code == 200
        series = response.json["series"]
        assert [p["tick"] for p in series] == list(range(1, tick + 1))
        assert [p["participants"] for p in series] == [2 * t for t in range(1, tick + 1)]
        assert series[-1]["votes"] == 2 * tick
        assert series[-1]["statements"] == 3 and series[-1]["accepted"] == 3
        assert series[-1]["computed_ms"] >= series[0]["computed_ms"]
        etag = response.headers["ETag"]
        assert etag == f'"{cid}-{tick}"'
        assert (
            client.get(
                f"{API}/conversations/{cid}/participation", headers={"If-None-Match": etag}
            ).status_code
            == 304
        )


def test_the_series_keeps_every_tick_though_old_results_are_deleted(
    app, client, staff, worker, sessions
):
    from polis_like.storage import jobs
    from polis_like.storage.models import ResultRow

    cid = make_conversation(client, staff["admin"])
    for _ in range(jobs.KEEP_RESULTS + 2):
        vote(app, cid, 0)
        worker.step()
    series = client.get(f"{API}/conversations/{cid}/participation").json["series"]
    assert len(series) == jobs.KEEP_RESULTS + 2
    with sessions() as session:
        assert session.query(ResultRow).filter_by(conversation_id=cid).count() == (
            jobs.KEEP_RESULTS
        )


@pytest.mark.parametrize("route", ["positions", "participation", "results?include=texts"])
def test_a_hidden_map_keeps_positions_series_and_texts_to_staff(app, client, staff, worker, route):
    cid = make_conversation(client, staff["admin"], map_enabled=False)
    give_conversation(client, staff, cid)
    vote(app, cid, 0)
    worker.step()
    refused = app.test_client().get(f"{API}/conversations/{cid}/{route}")
    assert refused.status_code == 403 and "moderators only" in refused.json["error"]["message"]
    allowed = client.get(f"{API}/conversations/{cid}/{route}", headers=staff["moderator"])
    assert allowed.status_code == 200


def test_results_with_texts_name_every_statement_in_one_response(app, client, staff, worker):
    cid = make_conversation(client, staff["admin"])
    vote(app, cid, 0)
    worker.step()
    plain = client.get(f"{API}/conversations/{cid}/results")
    assert "texts" not in plain.json
    response = client.get(f"{API}/conversations/{cid}/results?include=texts")
    assert response.status_code == 200
    assert response.json["texts"] == {"0": "one", "1": "two", "2": "three"}
    assert response.json["tick"] == plain.json["tick"]
    assert response.headers["ETag"] != plain.headers["ETag"]
    etag = response.headers["ETag"]
    assert (
        client.get(
            f"{API}/conversations/{cid}/results?include=texts", headers={"If-None-Match": etag}
        ).status_code
        == 304
    )
    assert client.get(f"{API}/conversations/{cid}/results?include=votes").status_code == 400


def test_texts_of_moderated_out_statements_reach_staff_only(app, client, staff, worker):
    cid = make_conversation(client, staff["admin"], moderation="strict")
    give_conversation(client, staff, cid)
    writer = app.test_client()
    written = writer.post(
        f"{API}/conversations/{cid}/statements", json={"text": "<b>a secret pending</b>"}
    )
    assert written.status_code == 201, written.json
    pending = written.json["id"]
    rejected_sid = 1
    moderated = client.patch(
        f"{API}/conversations/{cid}/statements/{rejected_sid}",
        json={"status": "rejected"},
        headers=staff["moderator"],
    )
    assert moderated.status_code == 200, moderated.json
    vote(app, cid, 0)
    worker.step()
    public = app.test_client().get(f"{API}/conversations/{cid}/results?include=texts")
    assert public.json["texts"] == {"0": "one", "2": "three"}
    assert b"secret" not in public.data
    everything = client.get(
        f"{API}/conversations/{cid}/results?include=texts", headers=staff["moderator"]
    )
    assert everything.json["texts"][str(pending)] == "<b>a secret pending</b>"
    assert everything.json["texts"][str(rejected_sid)] == "two"
    assert everything.headers["ETag"] != public.headers["ETag"]
    # a moderation changes the texts, and so the ETag, before any new tick
    etag = public.headers["ETag"]
    client.patch(
        f"{API}/conversations/{cid}/statements/{pending}",
        json={"status": "accepted"},
        headers=staff["moderator"],
    )
    fresh = app.test_client().get(
        f"{API}/conversations/{cid}/results?include=texts", headers={"If-None-Match": etag}
    )
    assert fresh.status_code == 200
    assert fresh.json["texts"][str(pending)] == "<b>a secret pending</b>"
