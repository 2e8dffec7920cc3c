"""An httpx transport that records every exchange it carries, secrets masked.

It wraps whatever transport the driver would use (the in-process simulator, or the real network),
so mock and real platforms are audited by the same code. Records stay in memory until the caller
stores them: a request cancelled by a timeout cannot write to the database from inside the
cancelled scope, but its record (marked "no response") is still kept.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from fiscalgate.core.masking import mask_headers, mask_if_needed, mask_mapping

_MAX_BODY = 64_000


def _body(content: bytes, secrets: list[str]) -> Any:
    if not content:
        return None
    try:
        data = json.loads(content)
        return mask_if_needed(data, secrets, content)
    except ValueError:
        text = content[:_MAX_BODY].decode("utf-8", errors="replace")
        return {"_text": mask_mapping(text, secrets)}


@dataclass
class CallRecord:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    started: float
    # The exact request, for replay; sealed (encrypted) before it is stored.
    exact: dict[str, Any]
    response_status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: Any = None
    duration_ms: float | None = None
    outcome: str = "no response"
    extra: dict[str, Any] = field(default_factory=dict)
    # When the request left: entries of one operation keep the order of their calls.
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, secrets: list[str]) -> None:
        self.inner = inner
        self.secrets = [s for s in secrets if s]
        self.records: list[CallRecord] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        headers = dict(request.headers)
        masked_headers = mask_mapping(mask_headers(headers), self.secrets)
        record = CallRecord(
            method=request.method,
            url=mask_mapping(str(request.url), self.secrets),
            request_headers=masked_headers,
            request_body=_body(content, self.secrets),
            started=time.perf_counter(),
            exact={
                "method": request.method,
                "url": str(request.url),
                "headers": headers,
                "content": base64.b64encode(content).decode(),
            },
        )
        self.records.append(record)
        try:
            response = await self.inner.handle_async_request(request)
            # Raw bytes pass through untouched (the caller's client decodes gzip & co. itself).
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            await response.aclose()
        except BaseException as exc:  # cancellation included: the record must say what happened
            record.duration_ms = (time.perf_counter() - record.started) * 1000
            record.outcome = f"no response ({type(exc).__name__})"
            raise
        record.duration_ms = (time.perf_counter() - record.started) * 1000
        record.response_status = response.status_code
        record.response_headers = mask_mapping(mask_headers(dict(response.headers)), self.secrets)
        decoded = httpx.Response(response.status_code, headers=response.headers, content=raw).read()
        record.response_body = _body(decoded, self.secrets)
        record.outcome = f"http {response.status_code}"
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            content=raw,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def sent_anything(self) -> bool:
        return bool(self.records)
