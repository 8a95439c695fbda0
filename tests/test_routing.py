"""Routing: the next statement is drawn among the unvoted, visible statements, weighted by the
priority of the latest math result (new statements by the priority of a statement with no votes)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import bare_document, give_conversation

from polis_like.storage import jobs
from polis_like.storage.results import (
    StatementResult,
)
from polis_like.storage.votes import NEW_STATEMENT_PRIORITY, Watermark, choose_next

API = "/api/v1"


def publish_priorities(sessions, cid: int, priorities: list[float]) -> None:
    """A published result with these routing priorities, through the workers' protocol."""
    statements = {
        str(sid): StatementResult(
            x=0.0,
            y=0.0,
            extremity=0.0,
            priority=priority,
            moderated_out=False,
            agree=0,
            disagree=0,
            passes=0,
            group_informed_consensus=None,
        )
        for sid, priority in enumerate(priorities)
    }

    with sessions.begin() as session:
        assert jobs.acquire(session, cid, "test", 60.0)
        tick = jobs.publish(
            session,
            cid,
            "test",
            60.0,
            watermark=Watermark(),
            revision=-1,
            duration_ms=0.0,
            document=lambda tick, ms: bare_document(tick, ms, statements),
            positions=b"",
        )
    assert tick == 1


def test_draws_follow_priority_weights():
    rng = np.random.default_rng(0)
    candidates = np.array([0, 1, 2, 5])
    priority = np.array([1.0, 3.0, 6.0, 0.0, 0.0])  # sid 5 is newer than the result
    counts = Counter(choose_next(candidates, priority, rng) for _ in range(40_000))
    total = 1 + 3 + 6 + NEW_STATEMENT_PRIORITY
    for sid, weight in ((0, 1), (1, 3), (2, 6), (5, NEW_STATEMENT_PRIORITY)):
        assert counts[sid] / 40_000 == pytest.approx(weight / total, abs=0.01)


def test_zero_weights_fall_back_to_a_uniform_draw_and_nothing_left_is_none():
    rng = np.random.default_rng(1)
    counts = Counter(choose_next(np.array([3, 4]), np.zeros(5), rng) for _ in range(2000))
    assert set(counts) == {3, 4} and min(counts.values()) > 800
    assert choose_next(np.array([], dtype=np.int64), np.ones(3), rng) is None


def test_the_api_draws_by_the_published_priorities(app, client, staff, sessions):
    response = client.post(
        f"{API}/conversations",
        headers=staff["admin"],
        json={"topic": "routing", "seed_statements": ["low", "middle", "high", "rejected"]},
    )
    cid = response.json["id"]
    give_conversation(client, staff, cid)
    client.patch(
        f"{API}/conversations/{cid}/statements/3",
        json={"status": "rejected"},
        headers=staff["moderator"],
    )
    publish_priorities(sessions, cid, [1.0, 3.0, 6.0, 50.0])
    browser = app.test_client()
    counts = Counter(
        browser.get(f"{API}/conversations/{cid}/next").json["statement"]["id"] for _ in range(1500)
    )
    assert 3 not in counts  # rejected: never shown, whatever its priority
    assert counts[0] / 1500 == pytest.approx(0.1, abs=0.03)
    assert counts[1] / 1500 == pytest.approx(0.3, abs=0.04)
    assert counts[2] / 1500 == pytest.approx(0.6, abs=0.04)
    # once voted on, a statement is no longer drawn, and the rest keep their proportions
    browser.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 2, "vote": 0})
    after = Counter(
        browser.get(f"{API}/conversations/{cid}/next").json["statement"]["id"] for _ in range(600)
    )
    assert set(after) == {0, 1}
    assert after[1] / 600 == pytest.approx(0.75, abs=0.06)
