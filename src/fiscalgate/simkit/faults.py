"""Fault injection for simulators: latency, server errors, and "timeout after recording".

A `FaultInjector` wraps a simulator's ASGI app. Faults are queued rules, consumed in order by the
requests they match; tests add them in Python (`injector.add(...)`) or over HTTP through the
control endpoints `POST /_sim/faults` and `DELETE /_sim/faults`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

FaultKind = Literal["latency", "error", "hang_after_processing", "drop_before_processing"]


@dataclass
class Fault:
    """One rule. `path` is a substring of the request path (None matches every request).

    - latency: wait `seconds` then answer normally;
    - error: answer `status` with `body` without processing the request;
    - hang_after_processing: process and record the request, then never answer (the client
      times out: the outcome is unknown to it);
    - drop_before_processing: never answer and never process.
    """

    kind: FaultKind
    path: str | None = None
    method: str | None = None
    seconds: float = 0.0
    status: int = 500
    body: Any = None
    times: int = 1  # how many matching requests it applies to; -1 = forever


class FaultInjector:
    CONTROL_PATH = "/_sim/faults"
    HANG_SECONDS = 3600.0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.faults: list[Fault] = []

    def add(self, kind: FaultKind, **options: Any) -> Fault:
        fault = Fault(kind=kind, **options)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def _take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path is not None and fault.path not in path:
                continue
            if fault.method is not None and fault.method.upper() != method:
                continue
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.rstrip("/").endswith(self.CONTROL_PATH):
            await self._control(scope, receive, send)
            return
        fault = self._take(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "latency":
            await anyio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "error":
            body = fault.body if fault.body is not None else {"message": "Internal Server Error"}
            await _send_json(send, fault.status, body)
        elif fault.kind == "hang_after_processing":

            async def swallow(message: Any) -> None:
                return None

            await self.app(scope, receive, swallow)
            await anyio.sleep(fault.seconds or self.HANG_SECONDS)
        else:  # drop_before_processing
            await anyio.sleep(fault.seconds or self.HANG_SECONDS)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "DELETE":
            self.clear()
            await _send_json(send, 200, {"faults": []})
            return
        if scope["method"] == "GET":
            await _send_json(send, 200, {"faults": [asdict(f) for f in self.faults]})
            return
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            spec = json.loads(raw or b"{}")
            fault = self.add(**spec)
        except (ValueError, TypeError) as exc:
            await _send_json(send, 400, {"message": f"invalid fault: {exc}"})
            return
        await _send_json(send, 201, asdict(fault))


async def _send_json(send: Send, status: int, body: Any) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
