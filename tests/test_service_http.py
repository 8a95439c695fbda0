"""The real service over real HTTP: gunicorn and the worker as separate processes, a browser's
cookie, the event stream delivering results after votes, streams that never block votes, and
gzip on the wire."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from http.cookiejar import CookieJar
from urllib.request import HTTPCookieProcessor, Request, build_opener


class Browser:
    """A participant's browser: a cookie jar and JSON calls."""

    def __init__(self, base: str, headers: dict | None = None):
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))
        self.headers = headers or {}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except Exception as error:  # urllib raises for 4xx/5xx
            if hasattr(error, "code"):
                return error.code, json.loads(error.read())
            raise


class EventStream:
    def __init__(self, port: int, path: str, headers: dict | None = None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Accept": "text/event-stream", **(headers or {})}
        self.connection.request("GET", path, headers=headers)
        self.response = self.connection.getresponse()

    def next_results(self, deadline: float) -> dict:
        """The data of the next ``results`` event."""
        name = None
        while time.monotonic() < deadline:
            line = self.response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "results":
                return json.loads(line[6:])
            elif not line:
                name = None
        raise AssertionError("no results event in time")

    def close(self):
        self.connection.close()


def test_votes_reach_the_event_stream_through_the_worker(service):
    admin = Browser(service["base"], {"Authorization": f"Bearer {service['token']}"})
    status, conversation = admin.call(
        "POST",
        "/api/v1/conversations",
        {"topic": "Transit", "seed_statements": [f"statement {i}" for i in range(6)]},
    )
    assert status == 201
    cid = conversation["id"]
    stream = EventStream(service["port"], f"/api/v1/conversations/{cid}/events")
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        # a second stream is over this small server's cap: 503, while votes still go through
        second = http.client.HTTPConnection("127.0.0.1", service["port"], timeout=10)
        second.request("GET", f"/api/v1/conversations/{cid}/events")
        refused = second.getresponse()
        assert refused.status == 503 and refused.getheader("Retry-After")
        second.close()
        voted = 0
        for person in range(4):
            browser = Browser(service["base"])
            status, shown = browser.call("GET", f"/api/v1/conversations/{cid}/next")
            assert status == 200 and shown["remaining"] == 6
            while shown["statement"] is not None:
                status, shown = browser.call(
                    "POST",
                    f"/api/v1/conversations/{cid}/votes",
                    {"statement_id": shown["statement"]["id"], "vote": 1 if person % 2 else -1},
                )
                assert status == 200
                voted += 1
            assert shown["remaining"] == 0
        deadline = time.monotonic() + 60
        event = stream.next_results(deadline)
        while event["participation"]["votes"] < voted:
            event = stream.next_results(deadline)
        assert event["participation"]["votes"] == voted == 24
        assert event["participation"]["participants"] == 4
        status, results = Browser(service["base"]).call(
            "GET", f"/api/v1/conversations/{cid}/results"
        )
        assert status == 200 and results["tick"] >= event["tick"]
        status, me = browser.call("GET", f"/api/v1/conversations/{cid}/me")
        assert me["votes"] == 6 and me["participant"] == 3
    finally:
        stream.close()


def test_gunicorn_sends_results_and_static_files_gzipped_and_never_the_stream(service):
    port = service["port"]
    admin = Browser(service["base"], {"Authorization": f"Bearer {service['token']}"})
    status, conversation = admin.call(
        "POST",
        "/api/v1/conversations",
        {"topic": "Parks", "seed_statements": [f"parks need more {i}" for i in range(20)]},
    )
    assert status == 201
    cid = conversation["id"]
    voter = Browser(service["base"])
    vote = {"statement_id": 0, "vote": 1}
    assert voter.call("POST", f"/api/v1/conversations/{cid}/votes", vote)[0] == 200
    path = f"/api/v1/conversations/{cid}/results"
    deadline = time.monotonic() + 60
    while voter.call("GET", path)[0] != 200:
        assert time.monotonic() < deadline, "no result in time"
        time.sleep(0.2)

    def get(path: str, headers: dict) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.body = response.read()
        connection.close()
        return response

    for target in (path, "/static/vendor/uplot/uPlot.esm.js"):
        plain = get(target, {})
        packed = get(target, {"Accept-Encoding": "gzip"})
        assert plain.status == packed.status == 200 and len(plain.body) > 1024
        assert plain.getheader("Content-Encoding") is None
        assert packed.getheader("Content-Encoding") == "gzip"
        assert "Accept-Encoding" in packed.getheader("Vary")
        assert int(packed.getheader("Content-Length")) == len(packed.body)
        assert gzip.decompress(packed.body) == plain.body
        assert packed.getheader("ETag") == f"W/{plain.getheader('ETag')}"
        again = get(target, {"Accept-Encoding": "gzip", "If-None-Match": packed.getheader("ETag")})
        assert again.status == 304 and again.getheader("ETag") == packed.getheader("ETag")

    stream = EventStream(port, f"/api/v1/conversations/{cid}/events", {"Accept-Encoding": "gzip"})
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Encoding") is None
        assert stream.response.read(13) == b"retry: 2000\n\n"  # plain text, as it is written
    finally:
        stream.close()
