"""Settings: one declared table, read in one place, documented; the instance folder; the
launcher's host, port and refusal of a port that is taken."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from polis_like.errors import InputError
from polis_like.settings import declared, read_settings, secret_key

ROOT = Path(__file__).parent.parent
COMMAND = [sys.executable, "-m", "polis_like.launcher.cli"]


def documented_settings() -> list[str]:
    """The environment variables in the first column of docs/service.md's Settings table."""
    text = (ROOT / "docs" / "service.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)


def test_the_docs_list_every_declared_setting_and_nothing_else():
    documented = documented_settings()
    declared_env = [setting.metadata["env"] for setting in declared()]
    assert sorted(documented) == sorted(declared_env)
    assert len(documented) == len(set(documented))


def test_every_setting_has_an_environment_variable_and_a_line_of_help():
    for setting in declared():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", setting.metadata["env"]), setting.name
        assert setting.metadata["help"].endswith("."), setting.name


def test_the_environment_sets_values_and_options_win_over_it():
    environ = {
        "POLIS_LIKE_PORT": "9001",
        "POLIS_LIKE_MAX_STREAMS": "3",
        "POLIS_LIKE_STREAM_PING_S": "2.5",
        "POLIS_LIKE_HOST": "",
    }
    settings = read_settings(environ)
    assert (settings.port, settings.max_streams, settings.stream_ping_s) == (9001, 3, 2.5)
    assert settings.host == "127.0.0.1"  # empty is unset
    assert read_settings(environ, port=9002, host=None).port == 9002


@pytest.mark.parametrize(
    "env, value",
    [
        ("POLIS_LIKE_PORT", "eighty"),
        ("POLIS_LIKE_PORT", "70000"),
        ("POLIS_LIKE_WEB_THREADS", "0"),
        ("POLIS_LIKE_SQLITE_BUSY_S", "nan"),
        ("POLIS_LIKE_PROXY_HOPS", "-1"),
        ("POLIS_LIKE_PROXY_HOPS", "one"),
        ("POLIS_LIKE_STAFF_SESSION_HOURS", "0"),
    ],
)
def test_a_malformed_setting_is_an_error_naming_its_variable(env, value):
    with pytest.raises(InputError, match=f"^\\${env}="):
        read_settings({env: value})


def test_max_streams_does_not_depend_on_threads_and_reaches_the_app(tmp_path):
    from server.app import create_app

    # streams hold no request thread: the cap is a plain number, whatever the threads
    assert read_settings({"POLIS_LIKE_WEB_THREADS": "2"}).max_streams == 5000
    settings = read_settings(
        {
            "POLIS_LIKE_MAX_STREAMS": "3",
            "POLIS_LIKE_INSTANCE": str(tmp_path),
            "POLIS_LIKE_MAX_JSON_BYTES": "1000",
        }
    )
    app = create_app(settings=settings)
    try:
        assert app.config["MAX_STREAMS"] == 3 and app.config["MAX_JSON_BYTES"] == 1000
    finally:
        app.extensions["polis_like.engine"].dispose()


def test_proxy_hops_and_the_staff_session_hours_reach_the_app(tmp_path):
    from werkzeug.middleware.proxy_fix import ProxyFix

    from server.app import create_app

    defaults = read_settings({})
    assert (defaults.proxy_hops, defaults.staff_session_hours) == (0, 12)
    settings = read_settings(
        {
            "POLIS_LIKE_INSTANCE": str(tmp_path),
            "POLIS_LIKE_PROXY_HOPS": "2",
            "POLIS_LIKE_STAFF_SESSION_HOURS": "0.5",
        }
    )
    app = create_app(settings=settings)
    plain = create_app(settings=settings.replace(proxy_hops=0))
    try:
        assert app.config["STAFF_SESSION_HOURS"] == 0.5
        assert isinstance(app.wsgi_app, ProxyFix)
        assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (2, 2, 2)
        assert app.wsgi_app.x_prefix == 0  # the pages link to absolute paths
        assert not isinstance(plain.wsgi_app, ProxyFix)
    finally:
        app.extensions["polis_like.engine"].dispose()
        plain.extensions["polis_like.engine"].dispose()


def test_the_instance_folder_is_the_users_data_folder_whatever_the_current_directory(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    settings = read_settings({})
    assert settings.instance_path() == tmp_path / "data" / "polis-like"
    assert settings.resolved_database_url() == (
        f"sqlite:///{tmp_path / 'data' / 'polis-like' / 'polis-like.db'}"
    )
    relative = read_settings({"POLIS_LIKE_INSTANCE": "var"})
    assert relative.instance_path() == tmp_path / "var"


def test_the_secret_key_is_made_once_with_mode_0600(tmp_path):
    settings = read_settings({"POLIS_LIKE_INSTANCE": str(tmp_path / "instance")})
    key = secret_key(settings)
    assert len(key) == 64 and secret_key(settings) == key
    assert oct((tmp_path / "instance" / "secret-key").stat().st_mode)[-3:] == "600"
    assert oct((tmp_path / "instance").stat().st_mode)[-3:] == "700"
    assert secret_key(settings.replace(secret_key="given")) == "given"


def test_the_app_finds_the_same_database_and_key_from_another_folder(tmp_path, monkeypatch):
    from server.app import create_app

    monkeypatch.setenv("POLIS_LIKE_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    configs = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        app = create_app()
        configs.append((app.config["DATABASE_URL"], app.config["SECRET_KEY"]))
        app.extensions["polis_like.engine"].dispose()
    assert configs[0] == configs[1]
    assert configs[0][0] == f"sqlite:///{tmp_path / 'instance' / 'polis-like.db'}"
    assert not (tmp_path / "a" / "var").exists() and not (tmp_path / "b" / "var").exists()


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_on_a_taken_port_exit_non_zero_with_one_line(command, tmp_path):
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        env = dict(os.environ, POLIS_LIKE_INSTANCE=str(tmp_path / "instance"))
        env.pop("DATABASE_URL", None)
        out = subprocess.run(
            COMMAND + [command, "--host", "127.0.0.1", "--port", str(port)],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2
    assert out.stderr == (
        f"polis-like: error: cannot listen on 127.0.0.1:{port}: the port is already in use\n"
    )
    assert "running" not in out.stdout
    assert not (tmp_path / "instance").exists()  # checked before anything started


def test_make_run_passes_host_port_and_the_checkouts_var_folder():
    out = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=9001"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    line = [line for line in out.stdout.splitlines() if "polis-like run" in line]
    assert line == [
        f'POLIS_LIKE_INSTANCE="{ROOT}/var" .venv/bin/polis-like run --host 0.0.0.0 --port 9001'
    ]
