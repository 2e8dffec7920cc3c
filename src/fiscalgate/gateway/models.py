"""Every ORM model, imported in one place so the metadata is complete (migrations, tests)."""

from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.db import Base
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.stickers.models import StickerBalance, StickerState
from fiscalgate.gateway.tenants.models import ApiKey, Tenant
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = ["ApiKey", "AuditEntry", "AuthorityConfig", "Base", "IdempotencyRecord", "InvoiceRow", "Tenant"]
__all__ += [
    "OutboxEvent",
    "StickerBalance",
    "StickerState",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
