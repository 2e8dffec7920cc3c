"""Every ORM model, imported in one place so the metadata is complete (migrations, tests)."""

from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.batches.models import BatchItemRow, BatchRow
from fiscalgate.gateway.chain import ChainLink
from fiscalgate.gateway.console.models import ConsoleSession, User
from fiscalgate.gateway.db import Base
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits.models import BreakerRow, PendingSlotRow, RateBucketRow
from fiscalgate.gateway.settings.models import AuthorityConfig, MockSimulatorEntry, MockSimulatorState
from fiscalgate.gateway.stickers.models import StickerBalance, StickerState
from fiscalgate.gateway.tenants.models import ApiKey, Tenant
from fiscalgate.gateway.tenants.profile_models import TenantProfile
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuthorityConfig",
    "Base",
    "BatchItemRow",
    "BatchRow",
    "BreakerRow",
    "ChainLink",
    "ConsoleSession",
    "IdempotencyRecord",
    "InvoiceRow",
    "MockSimulatorEntry",
    "MockSimulatorState",
    "OutboxEvent",
    "PendingSlotRow",
    "RateBucketRow",
    "StickerBalance",
    "StickerState",
    "Tenant",
    "TenantProfile",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
