"""Sign-in, sessions, CSRF, roles and tenant isolation of the console."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from fiscalgate.cli import main
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.console import accounts
from tests.console.conftest import PASSWORD, World, browser, csrf_of, form_post, sign_in

pytestmark = pytest.mark.anyio


async def test_sign_in_sets_a_hardened_cookie_and_wrong_passwords_are_refused(world: World) -> None:
    async with browser(world.app) as client:
        bad = await sign_in(client, "owner@demo.test", "wrong password!")
        assert bad.status_code == 401 and "fg_session" not in bad.headers.get("set-cookie", "")
        ok = await sign_in(client, "OWNER@demo.test")
        assert ok.status_code == 303 and ok.headers["location"] == "/console/dashboard"
        cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("fg_session=")).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    # Behind a proxy that terminates TLS: the app sees http, the proxy says https, the browser is on https.
    async with browser(world.app, "https://testserver", **{"X-Forwarded-Proto": "https"}) as client:
        ok = await sign_in(client, "owner@demo.test")
        cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("fg_session=")).lower()
        assert "secure" in cookie  # behind a TLS-terminating proxy


async def test_pages_need_a_session(world: World) -> None:
    async with browser(world.app) as client:
        r = await client.get("/console/invoices")
        assert r.status_code == 303 and r.headers["location"].startswith(
            "/console/login?next=/console/invoices"
        )


async def test_sign_in_attempts_are_rate_limited(world: World) -> None:
    async with browser(world.app) as client:
        for _ in range(5):
            assert (await sign_in(client, "owner@demo.test", "not the password")).status_code == 401
        limited = await sign_in(client, "owner@demo.test")  # even the right password now waits
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


async def test_sign_in_form_needs_its_csrf_token(world: World) -> None:
    async with browser(world.app) as client:
        await client.get("/console/login")
        r = await client.post(
            "/console/login", data={"email": "owner@demo.test", "password": PASSWORD, "csrf": "x"}
        )
        assert r.status_code == 403


async def test_a_form_without_the_session_csrf_token_is_refused(world: World, signed_in: Any) -> None:
    client = await signed_in("owner@demo.test")
    invoice_id = world.invoice()
    r = await client.post(f"/console/invoices/{invoice_id}/certify", data={"csrf": "forged"})
    assert r.status_code == 403
    r = await client.post(f"/console/invoices/{invoice_id}/certify", data={})
    assert r.status_code == 403
    inv = await client.get(f"/console/invoices/{invoice_id}")
    assert "badge s-approved" in inv.text  # nothing happened


async def test_sessions_are_listed_and_revocable(world: World, signed_in: Any) -> None:
    first = await signed_in("owner@demo.test")
    second = await signed_in("owner@demo.test")
    page = await first.get("/console/account")
    ids = re.findall(r"/console/account/sessions/([0-9a-f]+)/revoke", page.text)
    assert len(ids) == 1  # the other session; this one is marked "this session"
    r = await first.post(f"/console/account/sessions/{ids[0]}/revoke", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert (await second.get("/console/dashboard")).status_code == 303  # signed out
    assert (await first.get("/console/dashboard")).status_code == 200


async def test_password_change_checks_the_current_one_and_closes_other_sessions(
    world: World, signed_in: Any
) -> None:
    me = await signed_in("accountant@demo.test")
    other = await signed_in("accountant@demo.test")
    wrong = await form_post(
        me,
        "/console/account",
        "/console/account/password",
        {"current": "nope", "new": "a new long password", "confirm": "a new long password"},
    )
    assert wrong.status_code == 422 and 'id="err-current"' in wrong.text
    short = await form_post(
        me,
        "/console/account",
        "/console/account/password",
        {"current": PASSWORD, "new": "short", "confirm": "short"},
    )
    assert short.status_code == 422 and 'id="err-new"' in short.text
    ok = await form_post(
        me,
        "/console/account",
        "/console/account/password",
        {"current": PASSWORD, "new": "a new long password", "confirm": "a new long password"},
    )
    assert ok.status_code == 303
    assert (await other.get("/console/dashboard")).status_code == 303
    assert (await me.get("/console/dashboard")).status_code == 200
    async with browser(world.app) as fresh:
        assert (await sign_in(fresh, "accountant@demo.test")).status_code == 401
        assert (await sign_in(fresh, "accountant@demo.test", "a new long password")).status_code == 303


async def test_another_companys_invoice_is_404_on_every_page_and_action(world: World, signed_in: Any) -> None:
    theirs = world.invoice("bj-emecef", tenant_id=world.other_tenant_id)
    client = await signed_in("owner@demo.test")
    page = await client.get("/console/invoices")
    csrf = csrf_of(page.text)
    assert (await client.get(f"/console/invoices/{theirs}")).status_code == 404
    assert (await client.get(f"/console/invoices/{theirs}/pdf")).status_code == 404
    for action in ("approve", "certify", "reconcile", "dry-run", "credit-note"):
        r = await client.post(
            f"/console/invoices/{theirs}/{action}",
            data={"csrf": csrf, "action": "confirm", "number": "X", "scope": "full"},
        )
        assert r.status_code == 404, action
    assert theirs not in (await client.get("/console/invoices")).text
    their_entry = world.gw.db.call(
        lambda s: s.query(AuditEntry.id).filter(AuditEntry.tenant_id == world.other_tenant_id).first()[0]
    )
    assert (await client.get(f"/console/audit/{their_entry}")).status_code == 404
    assert (await client.post(f"/console/audit/{their_entry}/replay", data={"csrf": csrf})).status_code == 404
    # Their settings section does not exist here either (bj-emecef is available to both, so try sfec
    # from the other side: the other company, in Bénin with mecef only, has no cg-sfec).
    other = await signed_in("owner@other.test")
    other_csrf = csrf_of((await other.get("/console/settings")).text)
    r = await other.post("/console/settings/cg-sfec", data={"csrf": other_csrf, "environment": "mock"})
    assert r.status_code == 404
    # Their users and keys: the admin pages are the administrator's only.
    assert (await client.get(f"/console/admin/tenants/{world.other_tenant_id}")).status_code == 403


async def test_a_viewer_cannot_reach_an_owner_or_accountant_action_even_by_posting_by_hand(
    world: World, signed_in: Any
) -> None:
    viewer = await signed_in("viewer@demo.test")
    invoice_id = world.invoice()
    page = await viewer.get(f"/console/invoices/{invoice_id}")
    assert page.status_code == 200
    assert f"/console/invoices/{invoice_id}/certify" not in page.text  # no button shown
    csrf = csrf_of(page.text)  # a valid token of the viewer's own session
    posts = {
        f"/console/invoices/{invoice_id}/certify": {},
        f"/console/invoices/{invoice_id}/approve": {},
        "/console/invoices/new": {"authority": "ci-fne", "document": "{}"},
        "/console/settings/ci-fne": {"environment": "sandbox"},
        "/console/settings/bj-emecef/test": {},
        "/console/team/users": {"email": "x@y.ci", "password": "long enough pw", "role": "owner"},
        "/console/team/keys": {"label": "stolen"},
        "/console/admin/tenants": {"name": "Evil", "country": "CI"},
    }
    for url, data in posts.items():
        r = await viewer.post(url, data={"csrf": csrf, **data})
        assert r.status_code == 403, url
    for url in ("/console/team", "/console/invoices/new", "/console/admin"):
        assert (await viewer.get(url)).status_code == 403, url
    owner = await signed_in("owner@demo.test")
    inv = await owner.get(f"/console/invoices/{invoice_id}")
    assert "badge s-approved" in inv.text
    keys = await owner.get("/console/team")
    assert "stolen" not in keys.text


async def test_an_accountant_certifies_but_cannot_change_settings(world: World, signed_in: Any) -> None:
    accountant = await signed_in("accountant@demo.test")
    page = await accountant.get("/console/settings")
    assert page.text.count("<fieldset disabled>") == 3  # the three authorities' forms, read-only
    r = await accountant.post(
        "/console/settings/ci-fne", data={"csrf": csrf_of(page.text), "environment": "sandbox"}
    )
    assert r.status_code == 403


async def test_owner_issues_an_api_key_shown_once_that_works_and_can_be_revoked(
    world: World, signed_in: Any
) -> None:
    owner = await signed_in("owner@demo.test")
    r = await form_post(owner, "/console/team", "/console/team/keys", {"label": "erp"})
    key = re.search(r'id="new-key">(fgk_[^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert key not in (await owner.get("/console/team")).text  # shown once
    async with browser(world.app, Authorization=f"Bearer {key}") as api:
        assert (await api.get("/v1/tenant")).status_code == 200
        page = await owner.get("/console/team")
        key_id = re.findall(r"/console/team/keys/([0-9a-f]+)/revoke", page.text)[-1]
        await owner.post(f"/console/team/keys/{key_id}/revoke", data={"csrf": csrf_of(page.text)})
        revoked = await api.get("/v1/tenant")
        # the newest key is the one just issued (keys are listed by creation)
        assert revoked.status_code == 401


async def test_console_actions_are_attributed_to_the_user_in_the_audit_log(
    world: World, signed_in: Any
) -> None:
    client = await signed_in("accountant@demo.test")
    invoice_id = world.invoice()
    await form_post(client, f"/console/invoices/{invoice_id}", f"/console/invoices/{invoice_id}/certify", {})
    page = await client.get(f"/console/audit?invoice_id={invoice_id}")
    assert "user:accountant@demo.test" in page.text
    triggers = world.gw.db.call(
        lambda s: {e.trigger for e in s.query(AuditEntry).filter(AuditEntry.invoice_id == invoice_id)}
    )
    assert "user:accountant@demo.test" in triggers and "test" in triggers  # created by the helper


def test_cli_users_add_bootstraps_an_owner(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    from fiscalgate.gateway.db import make_engine, make_sessionmaker, migrate
    from fiscalgate.gateway.tenants.schemas import TenantCreate
    from fiscalgate.gateway.tenants.service import create_tenant

    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        create_tenant(s, TenantCreate(name="Acme", country="CI"))
    r = runner.invoke(
        main,
        [
            "users",
            "add",
            "boss@acme.ci",
            "--role",
            "owner",
            "--tenant",
            "Acme",
            "--password",
            "a long password",
            "--database-url",
            url,
        ],
    )
    assert r.exit_code == 0, r.output
    again = runner.invoke(
        main,
        [
            "users",
            "add",
            "boss@acme.ci",
            "--role",
            "owner",
            "--tenant",
            "Acme",
            "--password",
            "a long password",
            "--database-url",
            url,
        ],
    )
    assert again.exit_code == 2 and "already exists" in again.output
    no_tenant = runner.invoke(
        main,
        [
            "users",
            "add",
            "x@acme.ci",
            "--role",
            "viewer",
            "--password",
            "a long password",
            "--database-url",
            url,
        ],
    )
    assert no_tenant.exit_code != 0
    listed = runner.invoke(main, ["users", "list", "--database-url", url])
    assert "boss@acme.ci\towner" in listed.output
    with make_sessionmaker(engine).begin() as s:
        user = accounts.find_user(s, "boss@acme.ci")
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert accounts.verify_password(user, "a long password") and not accounts.verify_password(
            user, "nope"
        )
    engine.dispose()
