"""The OpenAPI document lists every status a route can answer, each error with the one error body.

FastAPI documents a route's success and its 422 only. The statuses below are added by rule from
what the route is (authenticated? a path parameter? a body? an invoice action that calls an
authority?), so routes added later are covered without touching this module; the schemathesis run
in the test suite fails when a route answers a status that is not listed here.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

ERROR_SCHEMA = "ErrorBody"


class ProblemBody(BaseModel):
    field: str
    rule: str
    message: str
    expected: str | None = None


class ErrorBody(BaseModel):
    """The one body of every error answer (4xx and 5xx)."""

    kind: str = Field(description="The error kind: InvalidRequest, NotFound, InvoiceRejected, ...")
    code: str = Field(description="Stable dotted code, e.g. `invoice.not_found`")
    message: str
    status: int
    problems: list[ProblemBody]
    resolution: str = Field(description="What to do next: fix_input, retry, retry_later, reconcile, ...")
    retryable: bool
    authority: str | None
    authority_code: str | None
    authority_message: str | None
    authority_http_status: int | None
    invoice_id: str | None
    invoice_status: str | None


_WHY = {
    400: "Malformed request",
    401: "Missing, unknown, revoked or expired credential",
    403: "The credential may not do this (admin token vs tenant key, read-only key, production replay)",
    404: "Not found (another tenant's resources are not found either)",
    405: "Method not allowed",
    409: "Conflicts with the resource's current state, or an Idempotency-Key in progress",
    413: "Request body too large (see FISCALGATE_MAX_BODY_BYTES)",
    422: "Invalid input or settings (every problem with its field)",
    429: "Too many requests (rate limit: see Retry-After), or the authority's own rate limit",
    500: "A bug of the gateway (details in the server log only)",
    502: "The authority answered with an error, or a driver failed after sending",
    503: "The authority, or the database, is unreachable; nothing was sent",
    504: "No answer from the authority after sending: reconcile before retrying",
}
_AUTHORITY_CALLS = re.compile(
    r"^/v1/invoices/\{[^}]+\}/(certify|reconcile|report)$"
    r"|^/v1/settings/\{[^}]+\}/test$"  # the connection test and the information topics
    r"|^/v1/authorities/\{[^}]+\}/info(/\{[^}]+\})?$"
)
_WRITES = frozenset({"post", "put", "patch", "delete"})


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {500}
    if path.startswith("/v1/"):  # authenticated, rate limited
        statuses |= {401, 403, 422, 429}
    if "{" in path:
        statuses |= {404, 422}
    if method in _WRITES:
        statuses |= {409, 413, 422}  # 409: Idempotency-Key in progress, or the resource's state
    if "requestBody" in operation:
        statuses |= {400, 413, 422}  # 400: a body that is not JSON at all
    if "parameters" in operation:
        statuses.add(422)
    if _AUTHORITY_CALLS.match(path):
        statuses |= {502, 503, 504}
    if path.startswith("/mock/"):
        statuses |= {404, 504}
    if path == "/healthz":
        statuses.add(503)
    return statuses


def document_errors(app: FastAPI) -> None:
    """Replace `app.openapi` by one that adds the error answers of every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components[ERROR_SCHEMA] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(components[ERROR_SCHEMA].pop("$defs", {}))
        error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete", "head"):
                    continue
                responses = operation.setdefault("responses", {})
                for status in sorted(_statuses(path, method, operation)):
                    entry = responses.setdefault(str(status), {"description": _WHY[status]})
                    entry["content"] = error  # FastAPI's own 422 schema is not our body
                    if status == 429:
                        entry["headers"] = {
                            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
                        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
