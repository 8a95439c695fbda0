"""The service's commands: db upgrade, admin create (the token works), run's demo set-up."""

from __future__ import annotations

import pytest

from polis_like.launcher.cli import main


def test_db_upgrade_and_admin_create_make_a_working_token(tmp_path, capsys):
    from server.app import create_app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["admin", "create", "alice", "--role", "moderator", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "created moderator 'alice'" in out and "password: " in out
    token = out.split("API token: ")[1].split()[0]
    password = out.split("password: ")[1].split()[0]
    client = create_app({"DATABASE_URL": url, "SECRET_KEY": "k"}).test_client()
    assert (
        client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).json["role"]
        == "moderator"
    )
    assert (
        client.post("/api/v1/session", json={"name": "alice", "password": password}).status_code
        == 200
    )
    # the same name twice is a readable error, not a traceback
    assert main(["admin", "create", "alice", "--database-url", url]) == 2
    assert capsys.readouterr().err.startswith("polis-like: error: there is already an account")


@pytest.mark.parametrize("name", ["", " " * 3, "x" * 81])
def test_bad_account_names_are_refused(tmp_path, capsys, name):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["admin", "create", name, "--database-url", url]) == 2
    assert "1 to 80 characters" in capsys.readouterr().err


def test_short_password_from_stdin_is_refused(tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["admin", "create", "bob", "--password-stdin", "--database-url", url]) == 2
    assert "at least 8 characters" in capsys.readouterr().err


def test_demo_setup_imports_the_demo_once_and_keeps_the_admin_password(tmp_path):
    from polis_like.launcher.service import demo_setup
    from polis_like.storage.db import make_engine, session_factory
    from polis_like.storage.models import ConversationRow, VoteEventRow

    url = f"sqlite:///{tmp_path / 'var' / 'polis-like.db'}"
    first, password = demo_setup(url, tmp_path / "var")
    again, same = demo_setup(url, tmp_path / "var")
    assert first == again and password == same and len(password) >= 12
    engine = make_engine(url)
    with session_factory(engine)() as session:
        assert session.query(ConversationRow).count() == 1
        assert session.query(VoteEventRow).count() == 49_997
    engine.dispose()
    assert oct((tmp_path / "var" / "admin-password.txt").stat().st_mode)[-3:] == "600"
