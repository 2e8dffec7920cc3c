"""Schemathesis against the ASGI app, on SQLite and PostgreSQL: no input gives a 500, and every
answer conforms to the OpenAPI document (status listed, content type, body schema, headers).

Bounded: POSITIVE and NEGATIVE examples per operation (see the constants), no shrinking, no
example database. Before the fixes this found, among others: `offset` >= 2**63 (500 on both
databases), NUL characters (500 on PostgreSQL), dates that overflow once converted to UTC (500),
and every 404/409/400 missing from the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from tests.gateway.conftest import ADMIN, mock_settings

POSITIVE = 8
NEGATIVE = 5
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


async def _tenant_key(app: FastAPI) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as adm:
        r = await adm.post(
            "/v1/admin/tenants",
            json={"name": f"S-{uuid.uuid4().hex[:8]}", "country": "CI", "modules": ["sfec"]},
        )
        tenant = r.json()
        key: str = (await adm.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={})).json()["key"]
        adm.headers["Authorization"] = f"Bearer {key}"
        r = await adm.put("/v1/settings/ci-fne", json=mock_settings("ci-fne"))
        assert r.status_code == 200, r.text
        return key


def _explore(operation: Any, token: str, mode: Any, count: int, failures: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call()
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{operation.label} [{mode.value}]: {exc}\n{case.as_curl_command()}")

    with contextlib.suppress(Unsatisfiable):  # no invalid input exists (GET /healthz has no parameter)
        run()


def test_no_server_error_and_no_schema_violation(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    key = asyncio.run(_tenant_key(app))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        token = ADMIN if operation.path.startswith("/v1/admin") else key
        _explore(operation, token, schemathesis.GenerationMode.POSITIVE, POSITIVE, failures)
        _explore(operation, token, schemathesis.GenerationMode.NEGATIVE, NEGATIVE, failures)
    assert operations >= 20
    assert not failures, "\n\n".join(failures[:10])
