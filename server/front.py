"""The ASGI front of ``polis-like serve``: the Flask app in a bounded pool of request threads,
and the event streams on the event loop.

A request is read on the event loop (a small body whole, with a time limit, so a slow client
holds no thread), then the Flask app answers it in one of ``threads`` threads, and the answer
is written back from the loop. The event route runs in a thread like any other (its checks,
errors and cap are the app's), but hands its open stream back (:data:`HANDOFF`): the loop
then serves the stream, waking on the process's one results broadcaster, so a thousand open
streams cost a thousand small coroutines and no thread.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .api.broadcast import Broadcaster, moved
from .api.events import HANDOFF, EventStream

#: Bodies up to this size are read whole on the event loop; larger ones (imports) stream to
#: their thread. A response is written once whole up to this size, in pieces beyond it.
BUFFER = 256 * 1024

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class Front:
    """The ASGI application: ``app`` (WSGI) in ``threads`` threads, event streams on the loop.

    ``body_timeout_s`` bounds how long a client may take to send a request body of up to
    :data:`BUFFER` bytes (408 past it); the server bounds the headers.
    """

    def __init__(self, app: Callable, *, threads: int, body_timeout_s: float = 10.0):
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")
        self._hub: Hub | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            self.executor.shutdown(wait=False, cancel_futures=True)
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Message, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        try:
            first, more = await asyncio.wait_for(_read_start(receive), self.body_timeout_s)
        except TimeoutError:
            await _plain(send, 408, b"the request body came too slowly")
            return
        body = Body(first, more, receive, loop, self.body_timeout_s)
        environ = wsgi_environ(scope, body)
        handoff: list[EventStream] = []
        environ[HANDOFF] = handoff
        status, headers, chunks, rest = await loop.run_in_executor(
            self.executor, self._call, environ
        )
        if handoff:
            stream = handoff[0]
            if status == 200 and rest is None:
                await self._stream(stream, headers, receive, send)
                return
            stream.close()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if rest is not None:
            try:
                while True:
                    piece = await loop.run_in_executor(self.executor, _next, rest)
                    if piece is None:
                        break
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            finally:
                await loop.run_in_executor(self.executor, _close, rest)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _call(self, environ: dict) -> tuple[int, list, list[bytes], Iterator[bytes] | None]:
        """Run the app in this thread: (status, headers, body up to :data:`BUFFER`, the rest
        of the body's iterator or None)."""
        started: list = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info=None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [int(status.split(" ", 1)[0]), headers]
            return chunks.append

        result = self.app(environ, start_response)
        iterator = iter(result)
        size, finished = 0, False
        try:
            for chunk in iterator:
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if size >= BUFFER:
                    break
            else:
                finished = True
        finally:
            if finished:
                _close(result)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in started[1]]
        return started[0], headers, chunks, None if finished else _Rest(result, iterator)

    async def _stream(self, stream: EventStream, headers: list, receive: Receive, send: Send):
        """Serve an event stream on the loop until it ends or its client goes."""
        hub = self._hub_of(stream.broadcaster)
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            text = stream.opening()
            while not gone.done():
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
                if (left := stream.timeout()) <= 0:
                    break
                now = await hub.wait(stream, left, gone)
                if gone.done():
                    return
                if stream.reads(now):  # a summary the broadcaster has not read: not on the loop
                    text = await asyncio.get_running_loop().run_in_executor(
                        self.executor, stream.step, now
                    )
                else:
                    text = stream.step(now)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            stream.close()

    def _hub_of(self, broadcaster: Broadcaster) -> Hub:
        if self._hub is None or self._hub.broadcaster is not broadcaster:
            self._hub = Hub(broadcaster, asyncio.get_running_loop())
        return self._hub


class Hub:
    """The event loop's side of a broadcaster: wakes the streams waiting on a conversation."""

    def __init__(self, broadcaster: Broadcaster, loop: asyncio.AbstractEventLoop):
        self.broadcaster = broadcaster
        self.loop = loop
        self._waiting: dict[int, asyncio.Future] = {}
        broadcaster.listen(lambda ids: loop.call_soon_threadsafe(self._wake, ids))

    def _wake(self, ids: set[int]) -> None:
        for conversation_id in ids:
            future = self._waiting.pop(conversation_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def wait(self, stream: EventStream, timeout: float, gone: asyncio.Future):
        """The conversation's (tick, revision) once it moves past what ``stream`` has seen,
        or after ``timeout``, or when ``gone`` is done."""
        deadline = self.loop.time() + timeout
        while True:
            now = self.broadcaster.now(stream.conversation_id, stream.seen)
            left = deadline - self.loop.time()
            if moved(now, stream.seen) or left <= 0 or gone.done():
                return now
            future = self._waiting.get(stream.conversation_id)
            if future is None or future.done():
                future = self._waiting[stream.conversation_id] = self.loop.create_future()
            await asyncio.wait((future, gone), timeout=left, return_when=asyncio.FIRST_COMPLETED)


class Body:
    """``wsgi.input``: what was read on the loop, then (for large bodies) the rest, read from
    the request's thread through the loop."""

    def __init__(self, first: bytes, more: bool, receive: Receive, loop, timeout_s: float):
        self.buffer = bytearray(first)
        self.more = more
        self.receive = receive
        self.loop = loop
        self.timeout_s = timeout_s

    def _fill(self, size: int) -> None:
        while self.more and (size < 0 or len(self.buffer) < size):
            future = asyncio.run_coroutine_threadsafe(self.receive(), self.loop)
            try:
                message = future.result(self.timeout_s)
            except TimeoutError:
                future.cancel()
                raise OSError("the request body came too slowly") from None
            if message["type"] != "http.request":
                raise OSError("the client went away")
            self.buffer += message.get("body", b"")
            self.more = message.get("more_body", False)

    def read(self, size: int = -1) -> bytes:
        self._fill(size)
        size = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def readline(self, size: int = -1) -> bytes:
        while b"\n" not in self.buffer and self.more and (size < 0 or len(self.buffer) < size):
            self._fill(len(self.buffer) + 1)
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        return self.read(end if size < 0 else min(end, size))

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class _Rest:
    """The unread part of a response body, and the WSGI result to close after it."""

    def __init__(self, result: Iterable[bytes], iterator: Iterator[bytes]):
        self.result = result
        self.iterator = iterator

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.iterator)

    def close(self) -> None:
        _close(self.result)


def _next(rest: Iterator[bytes]) -> bytes | None:
    return next(rest, None)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


async def _read_start(receive: Receive) -> tuple[bytes, bool]:
    """Up to :data:`BUFFER` bytes of the body, and whether more follows."""
    body, more = bytearray(), True
    while more and len(body) < BUFFER:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body), False
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return bytes(body), more


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _plain(send: Send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text, "more_body": False})


def wsgi_environ(scope: Message, body: Body) -> dict:
    """The WSGI environ of an ASGI HTTP request (PEP 3333's latin-1 strings)."""
    root = scope.get("root_path", "")
    path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode().decode("latin-1"),
        "PATH_INFO": path.encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # chunked bodies end; werkzeug may read them
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], port = scope["client"][:2]
        environ["REMOTE_PORT"] = str(port)
    for name, value in scope["headers"]:
        if b"_" in name:  # as gunicorn: X_Forwarded_For must not pass for X-Forwarded-For
            continue
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ
