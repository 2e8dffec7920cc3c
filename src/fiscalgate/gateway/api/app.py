"""The FastAPI application factory."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from fiscalgate.core.errors import GatewayError, Problem
from fiscalgate.gateway.api.docs import mount_docs
from fiscalgate.gateway.api.guard import GuardSettings, RequestGuard
from fiscalgate.gateway.api.headers import SecurityHeaders
from fiscalgate.gateway.api.idempotency import IdempotencyMiddleware
from fiscalgate.gateway.api.mock_pages import router as mock_pages_router
from fiscalgate.gateway.api.neutral_schema import document_models
from fiscalgate.gateway.api.openapi import document_errors
from fiscalgate.gateway.audit.router import router as audit_router
from fiscalgate.gateway.authorities import DriverLookup, default_lookup
from fiscalgate.gateway.batches.router import router as batches_router
from fiscalgate.gateway.console.routes import mount_console
from fiscalgate.gateway.crypto import SecretBox, load_or_create_key
from fiscalgate.gateway.db import DEFAULT_DATABASE_URL, migrate
from fiscalgate.gateway.errors import (
    ApiError,
    InvalidRequest,
    InvoiceOperationError,
    error_body,
    http_status_for,
)
from fiscalgate.gateway.invoices.router import router as invoices_router
from fiscalgate.gateway.metrics import router as metrics_router
from fiscalgate.gateway.netpolicy import private_urls_allowed
from fiscalgate.gateway.printing.router import router as printing_router
from fiscalgate.gateway.queue.worker import run_background
from fiscalgate.gateway.runtime import PUBLIC_URL_ENV, Database, Gateway, normalise_public_url
from fiscalgate.gateway.settings.router import router as settings_router
from fiscalgate.gateway.stickers.router import router as stickers_router
from fiscalgate.gateway.tenants.profile_router import router as profile_router
from fiscalgate.gateway.tenants.router import admin as admin_router
from fiscalgate.gateway.tenants.router import tenant as tenant_router
from fiscalgate.gateway.tools.router import router as tools_router
from fiscalgate.gateway.webhooks.dispatcher import background_dispatcher
from fiscalgate.gateway.webhooks.router import router as webhooks_router

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "FISCALGATE_ADMIN_TOKEN"


def _problems_from_request(exc: RequestValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err.get("loc", ())]
        where = loc[0] if loc else None
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        path = ".".join(loc).replace(".[", "[") or "(body)"
        # Pydantic prefixes the texts of our own validators ("Value error, ..."): not for users.
        message = (
            str(err.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        )
        if where == "query" and err.get("type") == "extra_forbidden":
            # A misspelt filter must not silently answer the whole list (api/pagination.py).
            message = f"unknown query parameter {path!r}: see the route's parameters in /docs"
        problems.append(Problem(path, str(err.get("type", "invalid")), message))
    return problems


class _Unhandled(ApiError):
    default_code = "http.error"


class GatewayApp(FastAPI):
    """FastAPI with the security headers outside everything, so that 500s carry them too
    (Starlette's error middleware answers from outside the user middleware)."""

    https_public_url = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), https_public_url=self.https_public_url)


def create_app(
    database_url: str | None = None,
    *,
    admin_token: str | None = None,
    secret_key: bytes | str | None = None,
    var_dir: str | Path = "var",
    driver_lookup: DriverLookup | None = None,
    run_migrations: bool = True,
    public_url: str | None = None,
    guard: GuardSettings | None = None,
    workers: int | None = None,
    allow_private_urls: bool | None = None,
) -> FastAPI:
    """Build the gateway. The schema is brought up to date here (Alembic) unless told otherwise.

    `public_url` (else `FISCALGATE_PUBLIC_URL`): where clients reach the gateway; with it, mock
    certifications carry QR / verification URLs served by the gateway under `/mock/...`.

    `workers`: run this process's heartbeat and crash healing while the app runs (its lifespan),
    with an embedded queue worker of that concurrency (0: heartbeat only, the queue is worked by
    `fiscalgate worker` processes). None (the default for an app built in-process): neither."""
    url = database_url or os.environ.get("FISCALGATE_DATABASE_URL") or DEFAULT_DATABASE_URL
    public = public_url or os.environ.get(PUBLIC_URL_ENV)
    var = Path(var_dir)
    if run_migrations:
        migrate(url)
    token = admin_token or os.environ.get(ADMIN_TOKEN_ENV) or secrets.token_urlsafe(32)
    gw = Gateway(
        db=Database(url),
        box=SecretBox(secret_key or load_or_create_key(var)),
        admin_token=token,
        driver_lookup=driver_lookup or default_lookup,
        public_url=normalise_public_url(public) if public else None,
        allow_private_urls=private_urls_allowed() if allow_private_urls is None else allow_private_urls,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with background_dispatcher(gw):  # webhook deliveries
            if workers is None:
                yield
            else:
                async with run_background(gw, "serve", concurrency=workers):
                    yield
        gw.db.dispose()

    app = GatewayApp(
        title="fiscalgate",
        summary="Certify invoices with FNE (Côte d'Ivoire), e-MECeF (Bénin) and SFEC (Congo)",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from the package's own assets (api/docs.py), not a CDN
        redoc_url=None,
    )
    app.state.gateway = gw
    app.https_public_url = (gw.public_url or "").startswith("https://")
    mount_docs(app)

    @app.exception_handler(InvoiceOperationError)
    async def _on_invoice_failure(_request: Request, exc: InvoiceOperationError) -> JSONResponse:
        body = error_body(exc.error, invoice_id=exc.invoice_id, invoice_status=exc.invoice_status)
        return JSONResponse(body, status_code=body["status"])

    @app.exception_handler(GatewayError)
    async def _on_gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=http_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _problems_from_request(exc)
        error = InvalidRequest(
            "invalid request: " + "; ".join(str(p) for p in problems[:3]),
            code="request.invalid",
            problems=problems,
        )
        return JSONResponse(error_body(error), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = _Unhandled(str(exc.detail), code=f"http.{exc.status_code}")
        body = error_body(error)
        body["status"] = exc.status_code
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _on_unstorable(_request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the validation let through (a number out of its range, say):
        # the input's fault, answered as such; the database's own text stays in the log.
        log.warning("database refused a value: %s", exc.orig)
        error = InvalidRequest(
            "a value of the request cannot be stored (out of range)", code="request.unstorable"
        )
        return JSONResponse(error_body(error), status_code=422)

    @app.exception_handler(Exception)
    async def _on_bug(_request: Request, exc: Exception) -> JSONResponse:
        # Same body shape for our own bugs; the traceback goes to the server log (uvicorn).
        error = _Unhandled(f"internal error ({type(exc).__name__}); see the server log", code="internal")
        body = error_body(error)
        body.update(kind="InternalError", status=500)
        return JSONResponse(body, status_code=500)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness and database check."""

        def ping(session: Session) -> Any:
            return session.execute(text("SELECT 1")).scalar()

        try:
            await gw.db.run(ping)
        except Exception:  # any database failure makes the service unhealthy
            # Unauthenticated route: the detail (host names, user, driver text) goes to the log only.
            log.exception("health check: the database is unavailable")
            return JSONResponse(  # type: ignore[return-value]
                {"status": "error", "database": "unavailable (see the server log)"}, status_code=503
            )
        return {"status": "ok", "database": "ok", "dialect": gw.db.engine.dialect.name}

    routers: tuple[APIRouter, ...] = (
        admin_router,
        tenant_router,
        profile_router,
        settings_router,
        batches_router,  # before invoices: /v1/invoices/batch is not an invoice id
        invoices_router,
        printing_router,
        audit_router,
        mock_pages_router,
    )
    routers += (webhooks_router, stickers_router, metrics_router)
    routers += (tools_router,)  # /v1/authorities, settings test, invoice report
    for router in routers:
        app.include_router(router)
    mount_console(app)  # the web console under /console (HTML pages, not in the OpenAPI schema)
    app.add_middleware(IdempotencyMiddleware)
    # Outside the idempotency middleware: authenticated and size-checked before any body is read.
    app.add_middleware(RequestGuard, settings=guard or GuardSettings.from_env())
    document_errors(app)
    document_models(app)
    return app
