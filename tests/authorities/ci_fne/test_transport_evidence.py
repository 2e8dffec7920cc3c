"""FNE tells "not sent" from "maybe certified" by the transport's evidence, over real sockets on
127.0.0.1: a refusing port, a server that drops the connection before reading the request, one
that reads it and goes silent (or hangs up), and proxies answering 502 / 503 / 504; the write
failure path itself is pinned with a transport that reports the trace events deterministically."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne.client import FneClient
from fiscalgate.core.errors import AuthorityServerError, AuthorityUnreachable, OutcomeUnknown

pytestmark = [pytest.mark.anyio, pytest.mark.socket]
PAYLOAD: dict[str, Any] = {"invoiceType": "sale", "items": [{"description": "riz", "amount": 1000}]}

Handler = Callable[[socket.socket], None]


@contextmanager
def server(handle: Handler) -> Iterator[int]:
    """A one-connection-at-a-time TCP server on 127.0.0.1 running `handle` on each connection."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A fixed, small receive buffer (inherited by accepted connections, and no autotuning): the
    # kernel cannot absorb a large body for a server that does not read it, whenever the server
    # thread gets to accept (loopback autotuning grows to tcp_rmem's max, 32 MiB here).
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, suppress(OSError):
                handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    """Read one whole HTTP request (headers and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def reset(conn: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed or refusing front end does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def answer(status: str, body: bytes, content_type: str = "text/html") -> Handler:
    def handle(conn: socket.socket) -> None:
        read_request(conn)
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        conn.sendall(head.encode() + body)

    return handle


def client(port: int, timeout: float = 5.0) -> FneClient:
    connection = Connection(f"http://127.0.0.1:{port}/ws", Environment.SANDBOX, timeout=timeout)
    return FneClient(connection, "test-key")


async def test_a_refusing_port_is_not_sent() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there: the connection is refused
    with pytest.raises(AuthorityUnreachable) as caught:
        await client(port).sign_payload(PAYLOAD)
    assert caught.value.retryable and "nothing was sent" in caught.value.message


async def test_a_server_that_drops_the_connection_before_reading_is_never_a_false_not_sent() -> None:
    """The platform never had the request. When the write visibly fails (the reset came before
    the body was handed over) that is proof: `not sent`, retryable. But asyncio's transport may
    also report the write complete when the connection was lost while it waited to drain its
    buffer; then the transport holds no proof and the call stays `unknown` (a person checks).
    Which of the two happens depends on when the reset arrives; neither is ever a success, and
    "not sent" is only said with the write's failure in hand (the next test pins that path)."""
    big = {**PAYLOAD, "commercialMessage": "x" * 16_000_000}
    with server(reset) as port, pytest.raises((AuthorityUnreachable, OutcomeUnknown)) as caught:
        await client(port).sign_payload(big)
    if isinstance(caught.value, AuthorityUnreachable):
        assert caught.value.code in ("authority.unreachable.fne.not_written", "authority.unreachable")
        assert caught.value.retryable
    else:
        assert not caught.value.retryable


class TracedFailure(httpx.AsyncBaseTransport):
    """Reports through httpcore's `trace` extension the events a real connection reports, then
    fails as it did: `failed_at` names the step whose `.failed` event is sent."""

    def __init__(self, failed_at: str) -> None:
        self.failed_at = failed_at

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        for step in ("send_request_headers", "send_request_body", "receive_response_headers"):
            await trace(f"http11.{step}.started", {})
            if step == self.failed_at:
                await trace(f"http11.{step}.failed", {})
                raise httpx.ReadError("connection reset by peer", request=request)
            await trace(f"http11.{step}.complete", {})
        raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("failed_at", "expected"),
    [("send_request_body", AuthorityUnreachable), ("receive_response_headers", OutcomeUnknown)],
)
async def test_not_sent_is_said_only_when_the_body_write_failed(
    failed_at: str, expected: type[Exception]
) -> None:
    connection = Connection(
        "http://fne.test/ws", Environment.SANDBOX, transport=TracedFailure(failed_at), timeout=5
    )
    with pytest.raises(expected) as caught:
        await FneClient(connection, "test-key").sign_payload(PAYLOAD)
    if expected is AuthorityUnreachable:
        assert caught.value.code == "authority.unreachable.fne.not_written"
        assert caught.value.retryable
    else:
        assert not caught.value.retryable


def read_then_hang_up(conn: socket.socket) -> None:
    read_request(conn)  # the platform has the request: it may have signed it


async def test_a_server_that_read_the_request_and_hung_up_may_have_certified() -> None:
    with server(read_then_hang_up) as port, pytest.raises(OutcomeUnknown) as caught:
        await client(port).sign_payload(PAYLOAD)
    assert not caught.value.retryable


async def test_a_timeout_after_the_request_was_written_is_unknown() -> None:
    released = threading.Event()

    def read_then_stay_silent(conn: socket.socket) -> None:
        read_request(conn)
        released.wait(10)  # until the test is over: the client times out first

    try:
        with server(read_then_stay_silent) as port, pytest.raises(OutcomeUnknown) as caught:
            await client(port, timeout=0.5).sign_payload(PAYLOAD)
    finally:
        released.set()
    assert caught.value.code == "authority.outcome_unknown"


NGINX_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
)
NGINX_503 = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>nginx</body></html>"
NGINX_504 = b"<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>"


async def test_a_proxy_503_was_not_forwarded_and_is_retryable() -> None:
    proxy = server(answer("503 Service Temporarily Unavailable", NGINX_503))
    with proxy as port, pytest.raises(AuthorityServerError) as caught:
        await client(port).sign_payload(PAYLOAD)
    assert caught.value.code == "authority.server_error.fne.proxy_unavailable"
    assert caught.value.retryable and caught.value.http_status == 503


@pytest.mark.parametrize(
    ("status", "page"), [("502 Bad Gateway", NGINX_502), ("504 Gateway Time-out", NGINX_504)]
)
async def test_a_proxy_502_or_504_may_have_been_forwarded(status: str, page: bytes) -> None:
    with server(answer(status, page)) as port, pytest.raises(OutcomeUnknown) as caught:
        await client(port).sign_payload(PAYLOAD)
    assert caught.value.code == "authority.outcome_unknown.fne.proxy"
    assert "proxy" in caught.value.message and not caught.value.retryable


async def test_fne_s_own_5xx_stays_uncertain_whatever_the_status() -> None:
    body = b'{"message":"Service Unavailable","error":"service_unavailable","statusCode":503,"errors":{}}'
    platform = server(answer("503 Service Unavailable", body, "application/json"))
    with platform as port, pytest.raises(OutcomeUnknown) as caught:
        await client(port).sign_payload(PAYLOAD)
    assert caught.value.code == "authority.outcome_unknown.fne.server_error"
