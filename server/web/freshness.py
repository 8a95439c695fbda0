"""Whether a conversation's results on a page may be out of date: votes the worker has not
taken in for longer than ``WORKER_LAG_S`` (the worker stopped, or falls behind). The pages then
keep showing the last results and say so; ``static/js/freshness.js`` does the same live on the
dashboard, from ``/healthz``."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from polis_like.storage import health


def results_behind(session: Session, conversation_id: int) -> bool:
    """Whether the conversation's oldest vote not in its results is older than the setting."""
    lag_s = health.worker_lag_s(session, conversation_id=conversation_id)
    return lag_s > current_app.config["WORKER_LAG_S"]
