"""Shared fixtures: the real Pol.is exports in tests/fixtures (CC BY 4.0, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CONVERSATIONS = sorted(p.name for p in FIXTURES.iterdir() if (p / "votes.csv").exists())


@pytest.fixture(scope="session")
def load_conversation():
    """Read a fixture conversation once per session: ``load_conversation("vtaiwan.uberx")``."""
    from polis_like.io import read_export

    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = read_export(FIXTURES / name)
        return cache[name]

    return load
