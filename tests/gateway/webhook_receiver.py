"""A real HTTP receiver for webhook tests: a small server on 127.0.0.1 (port 0) in a thread.

It can be *down* (its socket bound, so the port is reserved, but not listening: connections are
refused) and brought up later on the same port without a race. Tests wait for what it received
through a condition, never by sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver = self.server.receiver
        status = receiver.answer
        with receiver.changed:
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            receiver.changed.notify_all()
        payload = b"ok" if status < 300 else b"receiver says no"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the sender gave up (a test ending, a timeout): nothing to answer
            pass

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


class Receiver:
    def __init__(self, *, listening: bool = True, path: str = "/hooks/fiscalgate") -> None:
        self.requests: list[Received] = []
        self.changed = threading.Condition()
        self.answer = 200
        self.released = threading.Event()  # cleared: answers wait (a hanging receiver)
        self.released.set()
        self._server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self._server.receiver = self
        self._server.server_bind()  # the port is ours from now on; nothing listens yet
        self._thread: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        if listening:
            self.up()

    def up(self) -> None:
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def wait_for(self, condition: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        """Block until `condition(requests)` holds (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not condition(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"the receiver did not get what was expected: {len(self.requests)} requests"
                    )
                self.changed.wait(left)
            return list(self.requests)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy (the condition itself, never a fixed wait)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await anyio.sleep(0.02)
