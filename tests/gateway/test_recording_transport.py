"""The recording transport: transparent to the caller, masked in what it keeps."""

from __future__ import annotations

import gzip
import json
from typing import Any

import anyio
import httpx
import pytest

from fiscalgate.gateway.audit.transport import RecordingTransport

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-api-key-value"


async def gzip_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers gzip-compressed JSON that echoes a secret, as a careless platform might."""
    body = gzip.compress(json.dumps({"ok": True, "echo": SECRET, "api_key": "zzzz-yyyy-xxxx-wwww"}).encode())
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_gzip_bodies_pass_through_and_secrets_are_masked() -> None:
    recorder = RecordingTransport(httpx.ASGITransport(app=gzip_app), [SECRET])
    async with httpx.AsyncClient(transport=recorder, base_url="http://platform") as client:
        r = await client.post(
            f"/sign?key={SECRET}",
            json={"token": SECRET, "n": 1},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    assert r.status_code == 201 and r.json()["echo"] == SECRET  # the caller sees the real answer
    [record] = recorder.records
    kept = json.dumps(
        [
            record.url,
            record.request_headers,
            record.request_body,
            record.response_body,
            record.response_headers,
        ]
    )
    assert SECRET not in kept and "zzzz-yyyy-xxxx-wwww" not in kept
    assert record.response_status == 201 and record.outcome == "http 201"
    assert record.request_body["n"] == 1 and record.response_body["ok"] is True
    assert record.exact["headers"]["authorization"] == f"Bearer {SECRET}"  # sealed before storage


async def test_a_request_without_answer_is_recorded() -> None:
    async def hang(scope: Any, receive: Any, send: Any) -> None:
        await anyio.sleep(3600)

    recorder = RecordingTransport(httpx.ASGITransport(app=hang), [])
    async with httpx.AsyncClient(transport=recorder, base_url="http://platform") as client:
        with anyio.move_on_after(0.1):
            await client.get("/status")
    [record] = recorder.records
    assert record.response_status is None and record.outcome.startswith("no response")
    assert record.duration_ms is not None and record.duration_ms >= 90
    assert recorder.sent_anything


def echo_app(body: bytes) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize(
    "raw",
    [
        # A secret spelled with JSON escapes, under a key that is always masked, or in UTF-16:
        # what the bytes do not show must still be masked (the check on bytes is only a shortcut).
        json.dumps({"echo": SECRET.replace("s", "\\u0073")}).replace("\\\\", "\\").encode(),
        json.dumps({"nested": [{"API_KEY": "short"}]}).encode(),
        json.dumps({"echo": f"é {SECRET}"}, ensure_ascii=False).encode("utf-16"),
        json.dumps({"echo": f"café {SECRET}"}, ensure_ascii=False).encode(),
    ],
)
async def test_secrets_are_masked_however_the_body_spells_them(raw: bytes) -> None:
    recorder = RecordingTransport(httpx.ASGITransport(app=echo_app(raw)), [SECRET])
    async with httpx.AsyncClient(transport=recorder, base_url="http://platform") as client:
        await client.get("/x")
    [record] = recorder.records
    kept = json.dumps(record.response_body, ensure_ascii=False)
    assert SECRET not in kept and "short" not in kept, kept


async def test_a_body_without_secrets_is_kept_as_sent() -> None:
    lines = [{"description": f"Article {i} — é", "quantity": "2"} for i in range(1000)]
    raw = json.dumps({"items": lines}, ensure_ascii=False).encode()
    recorder = RecordingTransport(httpx.ASGITransport(app=echo_app(raw)), [SECRET])
    async with httpx.AsyncClient(transport=recorder, base_url="http://platform") as client:
        await client.post("/x", content=raw)
    [record] = recorder.records
    assert record.request_body == record.response_body == {"items": lines}
