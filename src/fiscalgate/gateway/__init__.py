"""The multi-tenant gateway service (REST API over tenants, settings, invoices, audit)."""

from fiscalgate.gateway.api.app import create_app

__all__ = ["create_app"]
