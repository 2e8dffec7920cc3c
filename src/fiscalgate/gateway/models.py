"""Every ORM model, imported in one place so the metadata is complete (migrations, tests)."""

from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.chain import ChainLink
from fiscalgate.gateway.db import Base
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.tenants.models import ApiKey, Tenant

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuthorityConfig",
    "Base",
    "ChainLink",
    "IdempotencyRecord",
    "InvoiceRow",
    "Tenant",
]
