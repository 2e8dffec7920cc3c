"""Security headers on every answer, errors and 500s included (the outermost ASGI layer).

A header the route set itself (a console page with its own CSP nonce, say) is left as it is.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Server-rendered pages (/console) use only their own assets: scripts, styles, images and forms
# from the gateway itself, never framed. The FNE mock verification page styles itself inline.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)
# Swagger UI / ReDoc (FastAPI's /docs and /redoc) load their script and style from jsDelivr and
# start with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
MOCK_PAGE_CSP = DEFAULT_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HSTS = "max-age=31536000; includeSubDomains"
_DOCS = ("/docs", "/redoc")


def _csp(path: str) -> str:
    if path.startswith(_DOCS):
        return DOCS_CSP
    if path.startswith("/mock/"):
        return MOCK_PAGE_CSP
    return DEFAULT_CSP


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https_public_url: bool = False) -> None:
        self.app = app
        self.https_public_url = https_public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        # Behind a TLS proxy, uvicorn's --proxy-headers makes the scheme https (X-Forwarded-Proto).
        https = scope.get("scheme") == "https" or self.https_public_url

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", _csp(path))
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
                if path.startswith("/v1/"):
                    headers.setdefault("Cache-Control", "no-store")  # answers may carry keys, settings
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
