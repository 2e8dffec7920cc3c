"""Every ORM model, imported in one place so the metadata is complete (migrations, tests)."""

from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.console.models import ConsoleSession, User
from fiscalgate.gateway.db import Base
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.settings.models import AuthorityConfig, MockSimulatorState
from fiscalgate.gateway.tenants.models import ApiKey, Tenant
from fiscalgate.gateway.tenants.profile_models import TenantProfile

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuthorityConfig",
    "Base",
    "ConsoleSession",
    "IdempotencyRecord",
    "InvoiceRow",
    "MockSimulatorState",
    "Tenant",
    "TenantProfile",
    "User",
]
