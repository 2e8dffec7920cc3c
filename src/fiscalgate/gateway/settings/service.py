"""Per-tenant, per-authority settings: validated by the driver, secrets sealed, changes audited."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Environment
from fiscalgate.core.errors import ConfigurationError, Problem
from fiscalgate.core.masking import mask_mapping, mask_secret
from fiscalgate.gateway import netpolicy
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.authorities import available_authorities
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import InvalidRequest, NotFound
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.settings.schemas import SettingsOut
from fiscalgate.gateway.tenants.models import Tenant
from fiscalgate.gateway.tenants.service import Caller, get_tenant


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) or origin is typing.Annotated:
        return any(_is_secret(arg) for arg in typing.get_args(annotation))
    return False


def secret_field_names(model: type[AuthoritySettings]) -> list[str]:
    return [name for name, info in model.model_fields.items() if _is_secret(info.annotation)]


def require_available(tenant: Tenant, authority: str) -> None:
    if authority not in available_authorities(tenant.country, tenant.modules):
        raise InvalidRequest(
            f"{authority} is not available to this tenant (country {tenant.country}, modules "
            f"{', '.join(tenant.modules) or 'none'}): an authority needs its country or its module active",
            code="settings.authority_unavailable",
        )


def _row(session: Session, tenant_id: str, authority: str) -> AuthorityConfig | None:
    return session.scalar(
        select(AuthorityConfig).where(
            AuthorityConfig.tenant_id == tenant_id, AuthorityConfig.authority == authority
        )
    )


def _plain_and_secrets(gw: Gateway, row: AuthorityConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    return dict(row.data), gw.box.open(row.secrets_sealed)


def _masked_view(plain: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    view = dict(plain)
    view.update({k: mask_secret(v) if isinstance(v, str) else v for k, v in secrets.items()})
    return view


_DERIVED_TYPES = (str, int, float, bool, datetime)


def derived_values(settings: AuthoritySettings) -> dict[str, Any]:
    """The settings model's read-only properties with plain values (e-MECeF: `nim`,
    `token_expires_at`), never secrets."""
    secrets = set(settings.secrets())
    out: dict[str, Any] = {}
    for name in dir(type(settings)):
        if name.startswith("_") or not isinstance(getattr(type(settings), name, None), property):
            continue
        try:
            value = getattr(settings, name)
        except Exception:  # a property that cannot be computed is just not shown
            continue
        if isinstance(value, _DERIVED_TYPES) and value not in secrets:
            out[name] = value
    return out


def settings_out(gw: Gateway, tenant: Tenant, authority: str, row: AuthorityConfig | None) -> SettingsOut:
    available = authority in available_authorities(tenant.country, tenant.modules)
    if row is None:
        return SettingsOut(authority=authority, available=available, configured=False)
    plain, secrets = _plain_and_secrets(gw, row)
    derived: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    try:
        derived = derived_values(gw.driver(authority).parse_settings({**plain, **secrets}))
    except ConfigurationError as exc:  # valid when saved, not any more (e.g. an expired token)
        problems = [p.to_dict() for p in exc.problems] or [
            {"field": "", "rule": exc.code, "message": exc.message}
        ]
    return SettingsOut(
        authority=authority,
        available=available,
        configured=True,
        environment=row.environment,
        active=row.active,
        settings=_masked_view(plain, secrets),
        secret_fields=list(row.secret_fields),
        derived=derived,
        problems=problems,
        updated_at=row.updated_at,
    )


def get_settings(session: Session, gw: Gateway, tenant_id: str, authority: str) -> SettingsOut:
    tenant = get_tenant(session, tenant_id)
    return settings_out(gw, tenant, authority, _row(session, tenant_id, authority))


def _with_mock_credentials(
    driver: AuthorityDriver,
    secret_names: list[str],
    row: AuthorityConfig | None,
    old_plain: dict[str, Any],
    old_secrets: dict[str, Any],
    payload: dict[str, Any],
) -> dict[str, Any]:
    """`{"environment": "mock"}` is enough: the payload completed with working credentials for the
    tenant's in-process simulator (the driver's `mock_credentials`).

    Only when the settings end in `mock` without a `base_url` (a simulator run apart has its own
    credentials). A field the payload gives is never replaced. A plain field already stored is kept
    (and passed to `mock_credentials` as a hint: the e-MECeF token is minted for the stored IFU); a
    secret is filled when missing, and also when entering `mock` from another environment: a
    sandbox or production secret is useless to the simulator (the e-MECeF one refuses any token it
    did not sign) and must not follow the tenant there."""
    stored_environment = row.environment if row is not None else None
    environment = payload.get("environment") or stored_environment or Environment.MOCK.value
    base_url = payload["base_url"] if "base_url" in payload else old_plain.get("base_url")
    if environment != Environment.MOCK.value or base_url:
        return payload
    hints = {
        k: v
        for k, v in {**old_plain, **payload}.items()
        if isinstance(v, str) and v and k not in secret_names and k not in ("environment", "base_url")
    }
    entering = stored_environment != Environment.MOCK.value
    filled = dict(payload)
    for key, value in driver.mock_credentials(**hints).items():
        if key in payload:
            continue
        stored = old_secrets.get(key) if key in secret_names else old_plain.get(key)
        if stored in (None, "") or (key in secret_names and entering):
            filled[key] = value
    return filled


def save_settings(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, authority: str, payload: dict[str, Any]
) -> SettingsOut:
    """Merge `payload` over the stored settings and validate the result with the driver.

    Fields left out keep their stored value; a secret sent empty, null, or as its own masked form
    (a GET's output sent back) keeps the stored secret.
    """
    tenant = get_tenant(session, tenant_id)
    require_available(tenant, authority)
    driver = gw.driver(authority)
    names = secret_field_names(driver.settings_model)
    row = _row(session, tenant_id, authority)
    old_plain, old_secrets = _plain_and_secrets(gw, row) if row else ({}, {})

    def kept(key: str) -> bool:  # a stored secret the payload leaves as it is
        value = payload.get(key)
        return key not in payload or value in (None, "", mask_secret(old_secrets[key]))

    payload = _with_mock_credentials(driver, names, row, old_plain, old_secrets, payload)

    if row is not None and row.environment == "production":
        leaving_for = str(payload.get("environment") or row.environment)
        if leaving_for != "production":
            # A live key must never follow the tenant to a test platform (FNE's sandbox is plain
            # http): leaving production takes every stored secret anew.
            missing = [key for key in old_secrets if kept(key)]
            if missing:
                raise InvalidRequest(
                    f"leaving production for {leaving_for}: send the {leaving_for} value of "
                    + ", ".join(missing)
                    + " (the production secrets are not carried over)",
                    code="settings.secrets_required",
                    problems=[
                        Problem(
                            key, "required", f"the {leaving_for} value is required when leaving production"
                        )
                        for key in missing
                    ],
                )

    merged: dict[str, Any] = {**old_plain, **old_secrets}
    for key, value in payload.items():
        if key in names and key in old_secrets and kept(key):
            continue
        merged[key] = value
    # The settings model owns every check (credentials, environment, hosts): parsing is validating.
    settings = driver.parse_settings(merged)
    # No tenant makes the gateway call inside its network (issue 14); checked again at call time.
    netpolicy.check_settings_urls(settings.model_dump(mode="json"), allow_private=gw.allow_private_urls)

    secrets = {
        n: v.get_secret_value() for n in names if isinstance(v := getattr(settings, n, None), SecretStr)
    }
    plain = settings.model_dump(mode="json", exclude=set(names))
    if row is None:
        row = AuthorityConfig(tenant_id=tenant_id, authority=authority)
        session.add(row)
    row.environment = settings.environment.value
    row.active = settings.active
    row.data = plain
    row.secret_fields = names
    row.secrets_sealed = gw.box.seal(secrets) if secrets else None
    row.updated_at = utcnow()
    session.flush()

    every_secret = [*old_secrets.values(), *secrets.values()]
    record_event(
        session,
        tenant_id=tenant_id,
        kind="settings_change",
        event="settings.saved",
        trigger=caller.trigger,
        authority=authority,
        environment=row.environment,
        detail={
            "before": mask_mapping(_masked_view(old_plain, old_secrets), every_secret) if old_plain else None,
            "after": mask_mapping(_masked_view(plain, secrets), every_secret),
        },
    )
    return settings_out(gw, tenant, authority, row)


def load_settings(
    session: Session, gw: Gateway, tenant: Tenant, authority: str
) -> tuple[AuthorityDriver, AuthoritySettings]:
    """The driver and validated settings to call `authority` with, or ConfigurationError."""
    _require_callable(tenant, authority)
    return _settings_from(gw, authority, _row(session, tenant.id, authority))


# Built once (statement construction costs about as much as its execution); values are bound.
_TENANT_AND_SETTINGS = (
    select(Tenant, AuthorityConfig)
    .outerjoin(
        AuthorityConfig,
        (AuthorityConfig.tenant_id == Tenant.id) & (AuthorityConfig.authority == bindparam("authority")),
    )
    .where(Tenant.id == bindparam("tenant_id"))
)


def load_tenant_settings(
    session: Session, gw: Gateway, tenant_id: str, authority: str, *, switched_off_too: bool = False
) -> tuple[AuthorityDriver, AuthoritySettings]:
    """`load_settings` for a tenant known by its id: the tenant and its settings row are read in
    one statement (every certification attempt runs this). `switched_off_too`: settings with
    `active=false` are loaded as well (a read-only call may try them before they are switched on)."""
    found = session.execute(_TENANT_AND_SETTINGS, {"tenant_id": tenant_id, "authority": authority}).first()
    if found is None:
        raise NotFound(f"no tenant {tenant_id}", code="tenant.not_found")
    tenant, row = found
    _require_callable(tenant, authority)
    return _settings_from(gw, authority, row, switched_off_too=switched_off_too)


def mock_simulator_settings(
    session: Session, gw: Gateway, tenant_id: str, authority: str
) -> tuple[AuthorityDriver, AuthoritySettings] | None:
    """The driver and settings a tenant's in-process simulator is built from, or None when the
    tenant has none (unknown tenant or authority, not in mock, or mock pointed at a base URL)."""
    try:
        driver, settings = load_tenant_settings(session, gw, tenant_id, authority)
    except (ConfigurationError, NotFound):
        return None
    if settings.environment != Environment.MOCK or settings.base_url:
        return None
    return driver, settings


def _require_callable(tenant: Tenant, authority: str) -> None:
    if authority not in available_authorities(tenant.country, tenant.modules):
        raise ConfigurationError(
            f"{authority} is not available to this tenant (neither its country nor an active module)",
            code="settings.authority_unavailable",
        )


def _settings_from(
    gw: Gateway, authority: str, row: AuthorityConfig | None, *, switched_off_too: bool = False
) -> tuple[AuthorityDriver, AuthoritySettings]:
    if row is None:
        raise ConfigurationError(
            f"no {authority} settings for this tenant: PUT /v1/settings/{authority} first",
            code="settings.missing",
        )
    if not row.active and not switched_off_too:
        raise ConfigurationError(
            f"the {authority} settings are switched off (active=false)", code="settings.inactive"
        )
    driver = gw.driver(authority)
    plain, secrets = _plain_and_secrets(gw, row)
    return driver, driver.parse_settings({**plain, **secrets})


def list_settings(session: Session, gw: Gateway, tenant_id: str, authorities: list[str]) -> list[SettingsOut]:
    tenant = get_tenant(session, tenant_id)
    return [settings_out(gw, tenant, code, _row(session, tenant_id, code)) for code in authorities]


def delete_settings(session: Session, gw: Gateway, caller: Caller, tenant_id: str, authority: str) -> None:
    row = _row(session, tenant_id, authority)
    if row is None:
        raise NotFound(f"no {authority} settings for this tenant", code="settings.not_found")
    plain, secrets = _plain_and_secrets(gw, row)
    session.delete(row)
    record_event(
        session,
        tenant_id=tenant_id,
        kind="settings_change",
        event="settings.deleted",
        trigger=caller.trigger,
        authority=authority,
        environment=row.environment,
        detail={"before": _masked_view(plain, secrets), "after": None},
    )
