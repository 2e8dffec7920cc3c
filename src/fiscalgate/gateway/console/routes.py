"""The console's pages. Every page reads through `services` (the gateway's own functions) and
every action posts a plain HTML form (CSRF token, role checked on the server)."""

from __future__ import annotations

import json
import secrets
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from fiscalgate.core.errors import GatewayError, Problem
from fiscalgate.gateway.audit.schemas import AuditFilter
from fiscalgate.gateway.console import accounts, onboarding, services
from fiscalgate.gateway.console.accounts import SignInLimiter
from fiscalgate.gateway.console.i18n import LANGUAGES
from fiscalgate.gateway.console.models import ROLES
from fiscalgate.gateway.console.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    BadCsrf,
    NeedSignIn,
    NotAllowed,
    Page,
    gateway,
    principal,
    public_page,
    qr_data_uri,
    redirect,
    require,
    set_cookie,
)
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import InvoiceOperationError, NotFound

router = APIRouter(prefix=PREFIX, include_in_schema=False)
STATIC = Path(__file__).parent / "static"
STATUSES = ("draft", "approved", "submitting", "certified", "rejected", "unknown", "failed")
KINDS = ("sale", "purchase", "credit_note")
ENVIRONMENTS = ("mock", "sandbox", "production")


def _form_value(form: Any, name: str) -> str:
    return str(form.get(name, "")).strip()


# --- sign-in -----------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    who = await principal(request)
    if who is None:
        return redirect(f"{PREFIX}/login")
    return redirect(f"{PREFIX}/admin" if who.is_admin else f"{PREFIX}/dashboard")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "") -> Response:
    page = public_page(request)
    token = secrets.token_urlsafe(24)
    response = page.render("login.html", next=next, login_csrf=token, email="", error=None)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _safe_next(value: str) -> str:
    # Only a path inside the console: never an open redirect to another site.
    return value if value.startswith(PREFIX + "/") and not value.startswith("//") else PREFIX


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    page = public_page(request)
    form = await request.form()
    email = _form_value(form, "email").lower()
    sent = _form_value(form, "csrf")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    token = secrets.token_urlsafe(24)

    def again(error: str, status: int, **values: Any) -> Response:
        response = page.render(
            "login.html",
            status=status,
            next=_form_value(form, "next"),
            login_csrf=token,
            email=email,
            error=page.t(error, **values),
        )
        set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    if not sent or not cookie or not secrets.compare_digest(sent, cookie):
        return again("login.csrf", 403)
    limiter: SignInLimiter = request.app.state.console_limiter
    ip = request.client.host if request.client else ""
    keys = (f"email:{email}", f"ip:{ip}")
    wait = limiter.retry_after(*keys)
    if wait:
        response = again("login.too_many", 429, seconds=wait)
        response.headers["Retry-After"] = str(wait)
        return response
    password = str(form.get("password", ""))
    agent = request.headers.get("user-agent", "")
    found = await gateway(request).db.run(
        lambda s: (lambda r: (r[0], r[1].tenant_id is None) if r else None)(
            accounts.sign_in(s, email, password, user_agent=agent, ip=ip)
        )
    )
    if found is None:
        limiter.failed(*keys)
        return again("login.failed", 401)
    cookie_token, is_admin = found
    target = _safe_next(_form_value(form, "next"))
    if target == PREFIX:
        target = f"{PREFIX}/admin" if is_admin else f"{PREFIX}/dashboard"
    response = redirect(target)
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        cookie_token,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    page = await require(request)
    assert page.who is not None
    who = page.who
    await gateway(request).db.run(accounts.revoke_session, who.user_id, who.session_id)
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.post("/language")
async def switch_language(request: Request) -> Response:
    """Works signed in or not (the sign-in page has the switch too). Signed in, the choice is
    kept on the user as well; a CSRF token is checked when there is a session."""
    form = await request.form()
    lang = _form_value(form, "lang")
    if lang not in LANGUAGES:
        lang = "fr"
    who = await principal(request)
    if who is not None:
        if not secrets.compare_digest(_form_value(form, "csrf"), who.csrf_token):
            raise BadCsrf
        await gateway(request).db.run(accounts.set_language, who.user_id, lang)
    response = redirect(_safe_next(_form_value(form, "next")) if _form_value(form, "next") else PREFIX)
    set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 86400)
    return response


# --- account: password and sessions ------------------------------------------------------------------
async def _account(page: Page, status: int = 200, **extra: Any) -> Response:
    assert page.who is not None
    user_id = page.who.user_id
    sessions = await gateway(page.request).db.read(accounts.list_sessions, user_id)
    return page.render(
        "account.html", status=status, sessions=sessions, **{"error": None, "done": None, **extra}
    )


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request) -> Response:
    page = await require(request)
    return await _account(page, done=request.query_params.get("done"))


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    page = await require(request)
    assert page.who is not None
    who = page.who
    form = await request.form()
    current, new, confirm = (str(form.get(k, "")) for k in ("current", "new", "confirm"))
    try:
        await gateway(request).db.run(accounts.change_password, who, current, new, confirm)
    except GatewayError as exc:
        return await _account(page, status=422, error=page.error(exc))
    return redirect(f"{PREFIX}/account?done=password")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(request: Request, session_id: str) -> Response:
    page = await require(request)
    assert page.who is not None
    await gateway(request).db.run(accounts.revoke_session, page.who.user_id, session_id)
    return redirect(f"{PREFIX}/account?done=revoked")


# --- dashboard ---------------------------------------------------------------------------------------
def _tenant_id(page: Page) -> str:
    assert page.who is not None
    if page.who.tenant_id is None:  # the administrator has no tenant pages
        raise NotAllowed
    return page.who.tenant_id


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    page = await require(request)
    tid = _tenant_id(page)
    gw = gateway(request)

    def read(s: Session) -> tuple[Any, Any]:
        return services.dashboard(s, tid, utcnow()), services.all_settings(s, gw, tid)

    tiles, settings = await gw.db.read(read)
    test_envs = [
        (x.authority, x.environment) for x in settings if x.configured and x.environment != "production"
    ]
    return page.render("dashboard.html", tiles=tiles, test_envs=test_envs, names=onboarding.authority_name)


# --- settings ----------------------------------------------------------------------------------------
async def _settings_page(
    page: Page,
    status: int = 200,
    errors: dict[str, Any] | None = None,
    sent: dict[str, dict[str, str]] | None = None,
    results: dict[str, Any] | None = None,
) -> Response:
    tid = _tenant_id(page)
    gw = gateway(page.request)

    def read(s: Session) -> list[dict[str, Any]]:
        sections = []
        for out in services.all_settings(s, gw, tid):
            main, advanced = services.settings_fields(gw, out.authority)
            facts = services.onboarding_facts(s, tid, out.authority)
            sections.append(
                {
                    "out": out,
                    "fields": main,
                    "advanced": advanced,
                    "steps": [(step, step.done_when in facts) for step in onboarding.steps(out.authority)],
                    "name": onboarding.authority_name(out.authority),
                    "test_call": services.connection_test(gw, out.authority),
                }
            )
        return sections

    sections = await gw.db.read(read)
    return page.render(
        "settings.html",
        status=status,
        sections=sections,
        errors=errors or {},
        sent=sent or {},
        results=results or {},
        environments=ENVIRONMENTS,
        done=page.request.query_params.get("done"),
        field_label=lambda authority, name: onboarding.field_label(authority, name, page.lang),
    )


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> Response:
    return await _settings_page(await require(request))


@router.post("/settings/{authority}", response_class=HTMLResponse)
async def save_settings(request: Request, authority: str) -> Response:
    page = await require(request, "settings")
    tid = _tenant_id(page)
    gw = gateway(request)
    form = await request.form()
    if authority not in await gw.db.read(services.available, tid):
        raise NotFound(f"no authority {authority} for this tenant", code="settings.not_found")
    main, advanced = services.settings_fields(gw, authority)
    data: dict[str, Any] = {
        "environment": _form_value(form, "environment"),
        "active": form.get("active") == "on",
    }
    sent: dict[str, str] = {}
    for f in (*main, *advanced):
        raw = _form_value(form, f.name)
        if f.kind != "secret":
            sent[f.name] = raw
        if f.kind == "secret":
            data[f.name] = raw or None  # empty keeps the stored secret (never sent back to the page)
        elif raw == "":
            data[f.name] = "" if f.required else None
        else:
            data[f.name] = raw
    try:
        await gw.db.run(
            services.save_settings, gw, page.who.caller if page.who else None, tid, authority, data
        )
    except GatewayError as exc:
        sent["environment"] = data["environment"]
        sent["active"] = "on" if data["active"] else ""
        return await _settings_page(page, 422, errors={authority: page.error(exc)}, sent={authority: sent})
    return redirect(f"{PREFIX}/settings?done={authority}#{authority}")


@router.post("/settings/{authority}/test", response_class=HTMLResponse)
async def test_connection(request: Request, authority: str) -> Response:
    page = await require(request, "settings")
    tid = _tenant_id(page)
    gw = gateway(request)
    if services.connection_test(gw, authority) is None or authority not in await gw.db.read(
        services.available, tid
    ):
        raise NotFound(f"no connection test for {authority}", code="settings.no_test")
    who = page.who.caller if page.who else services.Caller(tenant_id=tid, trigger="console")
    try:
        result: Any = {"ok": True, "answer": await services.test_connection(gw, who, tid, authority)}
    except GatewayError as exc:
        result = {"ok": False, "error": page.error(exc)}
    return await _settings_page(page, results={authority: result})


# --- invoices ----------------------------------------------------------------------------------------
def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/invoices", response_class=HTMLResponse)
async def invoices(request: Request) -> Response:
    page = await require(request)
    tid = _tenant_id(page)
    p = request.query_params
    try:
        number = max(1, int(p.get("page", "1")))
    except ValueError:
        number = 1
    f = services.InvoiceQuery(
        q=p.get("q", ""),
        status=p.get("status", "") if p.get("status", "") in STATUSES else "",
        authority=p.get("authority", ""),
        kind=p.get("kind", "") if p.get("kind", "") in KINDS else "",
        date_from=_date(p.get("from", "")),
        date_to=_date(p.get("to", "")),
        page=number,
    )
    gw = gateway(request)
    rows, total = await gw.db.read(services.search_invoices, tid, f)
    authorities = await gw.db.read(services.available, tid)
    pages = max(1, -(-total // services.PAGE_SIZE))
    keep = {k: v for k, v in p.items() if k != "page" and v}
    return page.render(
        "invoices.html",
        rows=rows,
        total=total,
        f=f,
        pages=pages,
        keep=keep,
        statuses=STATUSES,
        kinds=KINDS,
        authorities=authorities,
    )


def _sample_invoice(authority: str) -> str:
    from fiscalgate.gateway.console.demo import sample_invoice

    return json.dumps(sample_invoice(authority, "F-"), indent=2, ensure_ascii=False)


@router.get("/invoices/new", response_class=HTMLResponse)
async def new_invoice_form(request: Request) -> Response:
    page = await require(request, "invoices")
    tid = _tenant_id(page)
    authorities = await gateway(request).db.read(services.available, tid)
    authority = request.query_params.get("authority") or (authorities[0] if authorities else "")
    return page.render(
        "invoice_new.html",
        authorities=authorities,
        authority=authority,
        document=_sample_invoice(authority),
        approve=True,
        error=None,
    )


@router.post("/invoices/new", response_class=HTMLResponse)
async def new_invoice(request: Request) -> Response:
    page = await require(request, "invoices")
    tid = _tenant_id(page)
    gw = gateway(request)
    form = await request.form()
    authority = _form_value(form, "authority")
    document = str(form.get("document", ""))
    approve = form.get("approve") == "on"
    authorities = await gw.db.read(services.available, tid)
    try:
        try:
            parsed = json.loads(document)
        except json.JSONDecodeError as exc:
            raise services.InvoiceError(
                [Problem("document", "json", f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
            ) from None
        body = services.InvoiceCreate(authority=authority or None, invoice=parsed, approve=approve)
        assert page.who is not None
        out = await gw.db.run(services.create_invoice, gw, page.who.caller, tid, body)
    except GatewayError as exc:
        return page.render(
            "invoice_new.html",
            status=422,
            authorities=authorities,
            authority=authority,
            document=document,
            approve=approve,
            error=page.error(exc),
        )
    return redirect(f"{PREFIX}/invoices/{out.id}?done=created")


async def _detail(page: Page, invoice_id: str, status: int = 200, **extra: Any) -> Response:
    tid = _tenant_id(page)
    gw = gateway(page.request)

    def read(s: Session) -> dict[str, Any]:
        inv = services.invoice(s, tid, invoice_id)  # another tenant's: NotFound → 404 page
        credited = services.credited_so_far(s, inv.id) if inv.kind != "credit_note" else {}
        original = services.invoice(s, tid, inv.original_id) if inv.original_id else None
        return {
            "inv": inv,
            "credited": credited,
            "credits": services.credit_notes_of(s, tid, inv.id),
            "original": original,
        }

    data = await gw.db.read(read)
    inv = data["inv"]
    # The API's view of the certification (nulls, UTC datetimes), as the template's plain mapping.
    cert = inv.certification.model_dump(mode="json") if inv.certification else {}
    qr = cert.get("qr_image") or qr_data_uri(cert.get("qr_content"))
    lines = []
    for i, line in enumerate(inv.invoice.get("lines", []), start=1):
        done = Decimal(str(data["credited"].get(i, 0)))
        lines.append(
            {"n": i, "line": line, "credited": done, "left": Decimal(str(line.get("quantity", 0))) - done}
        )
    return page.render(
        "invoice.html",
        status=status,
        inv=inv,
        cert=cert,
        qr=qr,
        lines=lines,
        credits=data["credits"],
        original=data["original"],
        reconcile_choices=onboarding.reconcile_choices(inv.authority),
        pdf=True,
        done=page.request.query_params.get("done"),
        **{"error": None, "dry": None, **extra},
    )


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse)
async def invoice_detail(request: Request, invoice_id: str) -> Response:
    return await _detail(await require(request), invoice_id)


@router.post("/invoices/{invoice_id}/{action}", response_class=HTMLResponse)
async def invoice_action(request: Request, invoice_id: str, action: str) -> Response:
    if action not in ("approve", "certify", "reconcile", "dry-run", "credit-note"):
        raise NotFound(f"no action {action}", code="http.404")
    page = await require(request, "read" if action == "dry-run" else "invoices")
    tid = _tenant_id(page)
    gw = gateway(request)
    assert page.who is not None
    who = page.who.caller
    form = await request.form()
    await gw.db.read(services.invoice, tid, invoice_id)  # 404 first for another tenant's invoice
    try:
        if action == "approve":
            await gw.db.run(services.approve, gw, who, tid, invoice_id)
        elif action == "certify":
            await services.certify(gw, who, tid, invoice_id)
        elif action == "dry-run":
            dry = await gw.db.read(services.dry_run, gw, tid, invoice_id)
            return await _detail(page, invoice_id, dry=dry)
        elif action == "reconcile":
            choice = _form_value(form, "action")
            body = services.ReconcileRequest(
                action=choice,
                reference=_form_value(form, "reference") or None,
                note=_form_value(form, "note") or None,
            )
            await services.reconcile(gw, who, tid, invoice_id, body)
        else:
            out = await gw.db.run(services.credit_note, who, tid, invoice_id, _credit_body(form))
            return redirect(f"{PREFIX}/invoices/{out.id}?done=credit-note")
    except InvoiceOperationError as exc:
        return await _detail(
            page,
            invoice_id,
            status=409 if exc.error.code.startswith("invoice.cannot") else 422,
            error=page.error(exc.error),
        )
    except GatewayError as exc:
        return await _detail(page, invoice_id, status=422, error=page.error(exc))
    except ValueError as exc:  # pydantic: a form value outside what the API accepts
        return await _detail(
            page,
            invoice_id,
            status=422,
            error={"message": str(exc), "code": "request.invalid", "problems": [], "fields": {}},
        )
    return redirect(f"{PREFIX}/invoices/{invoice_id}?done={action}")


def _credit_body(form: Any) -> Any:
    number = _form_value(form, "number")
    if _form_value(form, "scope") == "full":
        lines = None
    else:
        lines = []
        for key in form:
            if key.startswith("qty_") and _form_value(form, key):
                try:
                    quantity = Decimal(_form_value(form, key).replace(",", "."))
                except InvalidOperation:
                    raise services.InvoiceError(
                        [Problem(key, "decimal", "a quantity such as 1 or 0.5")]
                    ) from None
                if quantity > 0:
                    lines.append({"original_line": int(key[4:]), "quantity": quantity})
        if not lines:
            raise services.InvoiceError(
                [Problem("lines", "required", "choose at least one line and a quantity to credit")]
            )
    return services.CreditNoteCreate(
        number=number,
        lines=lines,
        reason=_form_value(form, "reason") or None,
        approve=True,
    )


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(request: Request, invoice_id: str) -> Response:
    """The console's session-authenticated mirror of `GET /v1/invoices/{id}/pdf`."""
    page = await require(request)
    tid = _tenant_id(page)
    gw = gateway(request)
    await gw.db.read(services.invoice, tid, invoice_id)  # 404 for another tenant's invoice
    layout = request.query_params.get("layout", "a4")
    if layout not in ("a4", "receipt", "receipt58"):
        layout = "a4"
    assert page.who is not None
    who = page.who.caller
    printed = await anyio.to_thread.run_sync(
        lambda: services.print_invoice(gw, who, tid, invoice_id, layout, page.lang)
    )
    return Response(
        printed.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{printed.filename}"'},
    )


# --- audit -------------------------------------------------------------------------------------------
@router.get("/audit", response_class=HTMLResponse)
async def audit(request: Request) -> Response:
    page = await require(request)
    tid = _tenant_id(page)
    p = request.query_params
    try:
        number = max(1, int(p.get("page", "1")))
    except ValueError:
        number = 1
    values = {k: p.get(k, "") for k in ("authority", "kind", "status", "invoice_id")}
    error = None
    try:
        f = AuditFilter(
            authority=values["authority"] or None,
            kind=values["kind"] or None,
            status=values["status"] or None,
            invoice_id=values["invoice_id"] or None,
            limit=services.PAGE_SIZE + 1,
            offset=(number - 1) * services.PAGE_SIZE,
        )
    except ValueError as exc:
        error = str(exc)
        f = AuditFilter(limit=services.PAGE_SIZE + 1)
    entries = await gateway(request).db.read(services.audit_entries, tid, f)
    more = len(entries) > services.PAGE_SIZE
    keep = {k: v for k, v in values.items() if v}
    authorities = await gateway(request).db.read(services.available, tid)
    return page.render(
        "audit.html",
        entries=entries[: services.PAGE_SIZE],
        values=values,
        page_number=number,
        more=more,
        keep=keep,
        error=error,
        authorities=authorities,
    )


@router.get("/audit/{entry_id}", response_class=HTMLResponse)
async def audit_entry(request: Request, entry_id: str) -> Response:
    page = await require(request)
    entry = await gateway(request).db.read(services.audit_entry, _tenant_id(page), entry_id)
    return page.render("audit_entry.html", entry=entry, replay=None, error=None)


@router.post("/audit/{entry_id}/replay", response_class=HTMLResponse)
async def audit_replay(request: Request, entry_id: str) -> Response:
    page = await require(request, "audit.replay")
    tid = _tenant_id(page)
    gw = gateway(request)
    entry = await gw.db.read(services.audit_entry, tid, entry_id)
    assert page.who is not None
    try:
        result = await services.replay(gw, page.who.caller, tid, entry_id)
    except GatewayError as exc:
        return page.render("audit_entry.html", status=409, entry=entry, replay=None, error=page.error(exc))
    return page.render("audit_entry.html", entry=entry, replay=result, error=None)


# --- team: users and API keys (owner) ----------------------------------------------------------------
async def _team(page: Page, status: int = 200, **extra: Any) -> Response:
    tid = _tenant_id(page)

    def read(s: Session) -> tuple[Any, Any]:
        return accounts.list_users(s, tid), services.api_keys(s, tid)

    users, keys = await gateway(page.request).db.read(read)
    return page.render(
        "team.html",
        status=status,
        users=users,
        keys=keys,
        roles=ROLES,
        **{"error": None, "new_key": None, **extra},
    )


@router.get("/team", response_class=HTMLResponse)
async def team(request: Request) -> Response:
    return await _team(await require(request, "users"))


async def _create_user(request: Request, form: Any, tenant_id: str, by: str) -> None:
    """A user of `tenant_id` from the add-user form (the owner's team page and the admin's)."""
    await gateway(request).db.run(
        lambda s: accounts.create_user(
            s,
            email=_form_value(form, "email"),
            password=str(form.get("password", "")),
            role=_form_value(form, "role"),
            tenant_id=tenant_id,
            name=_form_value(form, "name"),
            by=by,
        )
    )


@router.post("/team/users", response_class=HTMLResponse)
async def add_user(request: Request) -> Response:
    page = await require(request, "users")
    tid = _tenant_id(page)
    form = await request.form()
    assert page.who is not None
    by = page.who.caller.trigger
    try:
        await _create_user(request, form, tid, by)
    except GatewayError as exc:
        return await _team(page, status=422, error=page.error(exc))
    return redirect(f"{PREFIX}/team")


@router.post("/team/users/{user_id}/{what}")
async def enable_user(request: Request, user_id: str, what: str) -> Response:
    page = await require(request, "users")
    tid = _tenant_id(page)
    if what not in ("disable", "enable"):
        raise NotFound("no such action", code="http.404")
    assert page.who is not None
    who = page.who

    def work(s: Session) -> None:
        user = accounts.tenant_user(s, tid, user_id)
        if user.id == who.user_id:
            raise NotAllowed  # an owner cannot lock themself out
        accounts.set_disabled(s, user, what == "disable", who.caller.trigger)

    await gateway(request).db.run(work)
    return redirect(f"{PREFIX}/team")


@router.post("/team/keys", response_class=HTMLResponse)
async def issue_key(request: Request) -> Response:
    page = await require(request, "api_keys")
    tid = _tenant_id(page)
    form = await request.form()
    assert page.who is not None
    created = await gateway(request).db.run(
        services.issue_key, page.who.caller, tid, _form_value(form, "label")
    )
    return await _team(page, new_key=created)  # shown once, on this answer only


@router.post("/team/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    page = await require(request, "api_keys")
    assert page.who is not None
    await gateway(request).db.run(services.revoke_key, page.who.caller, _tenant_id(page), key_id)
    return redirect(f"{PREFIX}/team")


# --- administration (platform administrator) ---------------------------------------------------------
@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request) -> Response:
    page = await require(request, "admin")
    companies = await gateway(request).db.read(services.tenants)
    return page.render(
        "admin.html",
        companies=companies,
        modules=services.module_slugs(),
        module_label=lambda m: onboarding.module_label(m, page.lang),
        error=None,
        sent={},
    )


@router.post("/admin/tenants", response_class=HTMLResponse)
async def provision(request: Request) -> Response:
    page = await require(request, "admin")
    form = await request.form()
    gw = gateway(request)
    name, country = _form_value(form, "name"), _form_value(form, "country")
    modules = [str(m) for m in form.getlist("modules")]
    assert page.who is not None
    try:
        out = await gw.db.run(services.create_tenant, page.who.caller, name, country, modules)
    except (GatewayError, ValueError) as exc:
        error = page.error(exc) if isinstance(exc, GatewayError) else _pydantic_error(exc)
        companies = await gw.db.read(services.tenants)
        return page.render(
            "admin.html",
            status=422,
            companies=companies,
            modules=services.module_slugs(),
            module_label=lambda m: onboarding.module_label(m, page.lang),
            error=error,
            sent={"name": name, "country": country, "modules": modules},
        )
    return redirect(f"{PREFIX}/admin/tenants/{out.id}?done=created")


def _pydantic_error(exc: ValueError) -> dict[str, Any]:
    from pydantic import ValidationError

    fields: dict[str, list[str]] = {}
    problems = []
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else ""
            message = str(err.get("msg", "")).removeprefix("Value error, ")
            fields.setdefault(name, []).append(message)
            problems.append({"field": name, "rule": err.get("type", ""), "message": message})
    return {
        "message": "; ".join(p["message"] for p in problems) or str(exc),
        "code": "request.invalid",
        "problems": problems,
        "fields": fields,
    }


async def _company(page: Page, tenant_id: str, status: int = 200, **extra: Any) -> Response:
    gw = gateway(page.request)

    def read(s: Session) -> dict[str, Any]:
        return {
            "company": services.tenant(s, tenant_id),
            "users": accounts.list_users(s, tenant_id),
            "keys": services.api_keys(s, tenant_id),
            "settings": services.all_settings(s, gw, tenant_id),
        }

    data = await gw.db.read(read)
    return page.render(
        "company.html",
        status=status,
        roles=ROLES,
        done=page.request.query_params.get("done"),
        **data,
        **{"error": None, "new_key": None, **extra},
    )


@router.get("/admin/tenants/{tenant_id}", response_class=HTMLResponse)
async def company(request: Request, tenant_id: str) -> Response:
    return await _company(await require(request, "admin"), tenant_id)


@router.post("/admin/tenants/{tenant_id}/users", response_class=HTMLResponse)
async def company_user(request: Request, tenant_id: str) -> Response:
    page = await require(request, "admin")
    form = await request.form()
    assert page.who is not None
    by = page.who.caller.trigger
    try:
        await _create_user(request, form, tenant_id, by)
    except GatewayError as exc:
        return await _company(page, tenant_id, status=422, error=page.error(exc))
    return redirect(f"{PREFIX}/admin/tenants/{tenant_id}")


@router.post("/admin/tenants/{tenant_id}/keys", response_class=HTMLResponse)
async def company_key(request: Request, tenant_id: str) -> Response:
    page = await require(request, "admin")
    form = await request.form()
    assert page.who is not None
    created = await gateway(request).db.run(
        services.issue_key, page.who.caller, tenant_id, _form_value(form, "label")
    )
    return await _company(page, tenant_id, new_key=created)


@router.post("/admin/tenants/{tenant_id}/keys/{key_id}/revoke")
async def company_key_revoke(request: Request, tenant_id: str, key_id: str) -> Response:
    page = await require(request, "admin")
    assert page.who is not None
    await gateway(request).db.run(services.revoke_key, page.who.caller, tenant_id, key_id)
    return redirect(f"{PREFIX}/admin/tenants/{tenant_id}")


# --- mounting ----------------------------------------------------------------------------------------
def mount_console(app: FastAPI) -> None:
    """Add the console to the gateway's app: the pages, their static files, and the handlers that
    turn sign-in, permission and not-found conditions into pages (only under /console)."""
    app.state.console_limiter = SignInLimiter()
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)

    prior_gateway_handler = app.exception_handlers.get(GatewayError)

    def _page(request: Request) -> Page:
        return public_page(request)

    @app.exception_handler(NeedSignIn)
    async def _sign_in(_request: Request, exc: NeedSignIn) -> Response:
        return RedirectResponse(f"{PREFIX}/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(NotAllowed)
    async def _forbidden(request: Request, _exc: NotAllowed) -> Response:
        who = await principal(request)
        page = Page(request, who, public_page(request).lang if who is None else _page(request).lang)
        return page.render(
            "error.html", status=403, title=page.t("error.forbidden"), detail=page.t("error.forbidden_text")
        )

    @app.exception_handler(BadCsrf)
    async def _csrf(request: Request, _exc: BadCsrf) -> Response:
        page = Page(request, await principal(request), _page(request).lang)
        return page.render(
            "error.html", status=403, title=page.t("error.csrf"), detail=page.t("error.csrf_text")
        )

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        if not request.url.path.startswith(PREFIX + "/") and prior_gateway_handler is not None:
            return await prior_gateway_handler(request, exc)  # type: ignore[no-any-return,misc]
        page = Page(request, await principal(request), _page(request).lang)
        if isinstance(exc, NotFound):
            return page.render("error.html", status=404, title=page.t("error.not_found"), detail=exc.message)
        return page.render("error.html", status=422, title=page.t("error.refused"), detail=exc.message)
