"""Request plumbing for the console: templates, language, the signed-in user, CSRF, cookies."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import segno
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from fiscalgate.core.errors import GatewayError
from fiscalgate.gateway.console import accounts
from fiscalgate.gateway.console.accounts import Principal
from fiscalgate.gateway.console.i18n import LANGUAGES, negotiate, translate
from fiscalgate.gateway.runtime import Gateway

SESSION_COOKIE = "fg_session"
LANG_COOKIE = "fg_lang"
LOGIN_CSRF_COOKIE = "fg_login_csrf"
PREFIX = "/console"

templates = Environment(
    loader=PackageLoader("fiscalgate.gateway.console", "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M") + " UTC"


def _money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    text = f"{d:,.2f}".rstrip("0").rstrip(".") if d != d.to_integral() else f"{d:,.0f}"
    return text.replace(",", "\u202f")


def qr_data_uri(content: str | None) -> str | None:
    """The QR code as an SVG data URI, drawn here (no image from the internet)."""
    if not content:
        return None
    return segno.make(content, error="m").svg_data_uri(scale=4, border=2)


templates.filters.update(json=_json, when=_when, money=_money, urlquote=lambda v: quote(str(v), safe=""))


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def secure(request: Request) -> bool:
    """Secure cookies behind https, also when a proxy terminates TLS and says so."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or proto == "https"


def language(request: Request, who: Principal | None = None) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    if who is not None and who.language in LANGUAGES:
        return str(who.language)
    return negotiate(request.headers.get("accept-language"))


async def principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await gateway(request).db.read(accounts.principal, token)


@dataclass
class Page:
    """What every template gets: the request, the user, the language and `t()`."""

    request: Request
    who: Principal | None
    lang: str
    values: dict[str, Any] = field(default_factory=dict)

    def t(self, key: str, **values: Any) -> str:
        return translate(self.lang, key, **values)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = templates.get_template(template)
        html = page.render(
            t=self.t,
            who=self.who,
            lang=self.lang,
            languages=LANGUAGES,
            path=self.request.url.path,
            query=self.request.url.query,
            csrf=self.who.csrf_token if self.who else "",
            prefix=PREFIX,
            Markup=Markup,
            **self.values,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response

    def error(self, exc: GatewayError) -> dict[str, Any]:
        """An error as templates show it: message, code, the authority's own code and text, and
        the problems keyed by field."""
        fields: dict[str, list[str]] = {}
        for p in getattr(exc, "problems", []):
            fields.setdefault(p.field.split(".")[-1] if p.field else "", []).append(p.message)
        return {
            "message": exc.message,
            "code": exc.code,
            "authority_code": getattr(exc, "authority_code", None),
            "authority_message": getattr(exc, "authority_message", None),
            "problems": [p.to_dict() for p in getattr(exc, "problems", [])],
            "fields": fields,
        }


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class NeedSignIn(Exception):
    """Raised by `require`; the console answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class NotAllowed(Exception):
    """The signed-in user's role does not allow this; answered 403 with a page."""


class BadCsrf(Exception):
    """A form without the session's CSRF token; answered 403 with a page."""


async def require(request: Request, action: str = "read") -> Page:
    """The page context of a signed-in user allowed to do `action`; raise otherwise. For a POST,
    the form's CSRF token must be the session's."""
    who = await principal(request)
    if who is None:
        raise NeedSignIn(str(request.url.path))
    page = Page(request, who, language(request, who))
    if not who.can(action):
        raise NotAllowed
    if request.method == "POST":
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not sent or not secrets.compare_digest(sent, who.csrf_token):
            raise BadCsrf
    return page


def public_page(request: Request) -> Page:
    return Page(request, None, language(request))


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure(request), path=PREFIX
    )
