"""Connections at scale, over real HTTP: open event streams and clients that send their
headers slowly hold no request thread, so votes and /healthz stay prompt, the streams all get
the new results, and the slow clients are disconnected."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import serving
from test_service_http import Browser

API = "/api/v1"
#: More than the old cap of streams with the default 2 x 32 threads (2 x 28), on one process
#: with 4 request threads.
STREAMS = 100
SLOW = 20


@pytest.fixture
def roomy(database_url, sessions, tmp_path):
    """The service with the default cap of streams and a header time limit of 2 s."""
    with serving(database_url, sessions, tmp_path, POLIS_LIKE_HEADER_TIMEOUT_S="2") as running:
        yield running


def open_stream(port: int, path: str) -> tuple[socket.socket, object]:
    """An event stream's socket and its reader, past the response headers (200 only)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n".encode())
    reader = sock.makefile("rb")
    status = reader.readline()
    assert status.split()[1] == b"200", status
    while reader.readline() not in (b"\r\n", b""):
        pass
    return sock, reader


def next_results(reader, deadline: float) -> dict:
    """The data of the stream's next ``results`` event (chunked: sizes come between frames)."""
    name = None
    while time.monotonic() < deadline:
        line = reader.readline().decode().rstrip("\r\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == "results":
            return json.loads(line[6:])
    raise AssertionError("no results event in time")


def dribble(sockets: list[socket.socket], closed: dict, stop: threading.Event) -> None:
    """Send each slow socket one more byte of headers every 0.2 s; note when the server closes
    it (its time in ``closed``)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000
    i = 0
    while not stop.is_set() and len(closed) < len(sockets):
        for n, sock in enumerate(sockets):
            if n in closed:
                continue
            try:
                sock.sendall(head[i : i + 1])
                sock.setblocking(False)
                if sock.recv(1) == b"":
                    closed[n] = time.monotonic()
            except BlockingIOError:
                pass
            except OSError:
                closed[n] = time.monotonic()
        i += 1
        stop.wait(0.2)


def timed(call) -> tuple[float, object]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


# PostgreSQL only, to stay within ~30 s: the streams are served alike on SQLite (see
# test_service_http.py, which runs on both).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_streams_past_the_old_cap_and_slow_clients_leave_votes_and_healthz_prompt(roomy):
    admin = Browser(roomy["base"], {"Authorization": f"Bearer {roomy['token']}"})
    _, conversation = admin.call(
        "POST", f"{API}/conversations", {"topic": "Busy", "seed_statements": ["a", "b", "c"]}
    )
    cid = conversation["id"]
    streams = [open_stream(roomy["port"], f"{API}/conversations/{cid}/events")]
    slow = [socket.create_connection(("127.0.0.1", roomy["port"])) for _ in range(SLOW)]
    slow_started = time.monotonic()
    closed: dict[int, float] = {}
    stop = threading.Event()
    dribbler = threading.Thread(target=dribble, args=(slow, closed, stop), daemon=True)
    dribbler.start()
    try:
        streams += [
            open_stream(roomy["port"], f"{API}/conversations/{cid}/events")
            for _ in range(STREAMS - 1)
        ]
        # 100 streams and 20 slow clients on 4 request threads: votes and /healthz still answer
        took, (status, _) = timed(lambda: Browser(roomy["base"]).call("GET", "/healthz"))
        assert status == 200 and took < 2.0
        voted = 0
        for _ in range(3):
            browser = Browser(roomy["base"])
            _, shown = browser.call("GET", f"{API}/conversations/{cid}/next")
            while shown["statement"] is not None:
                took, (status, shown) = timed(
                    lambda b=browser, s=shown: b.call(
                        "POST",
                        f"{API}/conversations/{cid}/votes",
                        {"statement_id": s["statement"]["id"], "vote": 1},
                    )
                )
                assert status == 200 and took < 2.0
                voted += 1
        # every stream gets the result that counts the votes
        deadline = time.monotonic() + 30
        for _, reader in streams:
            event = next_results(reader, deadline)
            while event["participation"]["votes"] < voted:
                event = next_results(reader, deadline)
            assert event["participation"]["votes"] == voted == 9
        # the slow clients were cut off at the header time limit (2 s), not served for ever
        deadline = slow_started + 15
        while len(closed) < SLOW and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(closed) == SLOW
        assert max(closed.values()) - slow_started < 6
    finally:
        stop.set()
        dribbler.join()
        for sock in slow:
            sock.close()
        for sock, reader in streams:
            reader.close()
            sock.close()


def connections_held(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_a_burst_of_participants_is_shared_by_the_web_processes(database_url, sessions, tmp_path):
    """Everyone opening the conversation at once (one kept-alive connection each) must not
    land on one web process, which would leave the other processes' cores idle."""
    with serving(database_url, sessions, tmp_path, web_processes=2) as running:
        port = running["port"]
        deadline = time.monotonic() + 30
        while len(processes := children(running["pid"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(processes) == 2
        time.sleep(1)  # each process has started listening
        burst = [socket.socket() for _ in range(60)]
        for sock in burst:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        try:
            for sock in burst:
                sock.setblocking(True)
                sock.settimeout(10)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            for sock in burst:
                assert sock.recv(12).startswith(b"HTTP/1.1 200")
            held = [connections_held(pid, port) for pid in processes]
            assert sum(held) == len(burst)
            assert min(held) >= len(burst) // 4, held
        finally:
            for sock in burst:
                sock.close()


def test_each_web_process_listens_on_a_tcp_socket_of_its_own():
    """The socket must say it is TCP (asyncio sets TCP_NODELAY on its connections only then;
    without it every answer sent in two parts waited 40 ms for the client's delayed ACK), and
    listen on the shared socket's address, which stops listening."""
    from polis_like.launcher.web import own_listener

    shared = socket.create_server(("127.0.0.1", 0), reuse_port=True)
    own = own_listener(shared, 16)
    try:
        assert own.proto == socket.IPPROTO_TCP
        assert own.getsockname() == shared.getsockname()
        with socket.create_connection(own.getsockname(), timeout=5):
            own.setblocking(True)
            own.settimeout(5)
            accepted, _ = own.accept()  # the connection came to this process's socket
            accepted.close()
    finally:
        own.close()
        shared.close()
