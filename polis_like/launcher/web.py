"""The web server's processes: gunicorn's arbiter over uvicorn workers serving the ASGI front.

gunicorn keeps what it did (the processes, their restarts, the listening socket, signals);
each process is a uvicorn event loop (httptools parser) that reads requests and holds the event
streams, while the Flask app runs in the front's request threads (``server.front``). A client
that sends its headers slowly costs a buffer on the loop, not a thread, and is disconnected
after ``POLIS_LIKE_HEADER_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import socket
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker


class Protocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with a time limit on each request's headers (uvicorn has
    none: a client sending one byte a second would keep its connection for ever)."""

    #: Seconds from a request's first byte (or the connection) to the end of its headers; set
    #: by ``serve`` before gunicorn starts the processes.
    timeout_s: ClassVar[float] = 10.0
    _headers_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the next request on a kept-alive connection: its own limit

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._headers_timer is None:
            self._headers_timer = self.loop.call_later(self.timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _too_slow(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def own_listener(shared: socket.socket, backlog: int) -> socket.socket:
    """A listening socket of this process alone, on the address of gunicorn's ``shared`` one.

    Every process has its own, with ``SO_REUSEPORT``, and the kernel spreads new connections
    evenly over them. On one shared socket, the first process awake takes every connection
    waiting, so that a burst of participants (a broadcast sends everyone at once) lands on one
    process and its one core while the others idle. The shared socket stops listening (the
    port stays bound to it); a unix socket is kept as it is.
    """
    if shared.family not in (socket.AF_INET, socket.AF_INET6):
        return shared
    # IPPROTO_TCP said, not left 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer written in two parts waits 40 ms for the client's delayed ACK.
    own = socket.socket(shared.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(shared.getsockname())
    own.listen(backlog)
    own.setblocking(False)
    try:
        shared.shutdown(socket.SHUT_RD)  # no longer in the group that shares connections
    except OSError:
        pass  # another process did it already
    return own


class Worker(UvicornWorker):
    """A gunicorn worker process running uvicorn with :class:`Protocol`."""

    #: The listening sockets (gunicorn's, then this process's own: :func:`own_listener`).
    sockets: list[socket.socket]

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "asyncio",
        "http": Protocol,
        "interface": "asgi3",
        # The client address is the peer's, as with gunicorn's own workers: uvicorn would
        # otherwise believe X-Forwarded-For from 127.0.0.1, and the rate limits with it.
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,  # gunicorn's access log is off too; not even formatted
        # On SIGTERM, end what is still open (event streams never end by themselves) before
        # gunicorn's graceful_timeout (5 s) kills the process.
        "timeout_graceful_shutdown": 3,
    }

    def init_process(self) -> None:
        # Each open event stream is a socket: allow as many as the system lets a process.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.sockets = [own_listener(shared, self.cfg.backlog) for shared in self.sockets]
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # What the app holds from now on lives as long as the process: move it out of the
        # collector's reach, so that a full collection scans only what requests left (a few
        # thousand objects), not the 160,000 of the imports, which stalled every request of
        # the process for tens of milliseconds at a time.
        gc.collect()
        gc.freeze()
