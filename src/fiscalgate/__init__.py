"""fiscalgate: one neutral invoice in, the right tax authority's certification out.

The names below are the library's public API (pinned by tests/test_public_api.py); everything else
may change between versions. The gateway (`fiscalgate.gateway`) and the CLI are applications built
on it.
"""

from fiscalgate.authorities import all_drivers, codes, descriptor, descriptors, get_driver
from fiscalgate.authorities.base import (
    AuthorityDriver,
    AuthoritySettings,
    Connection,
    Environment,
    Reconciliation,
)
from fiscalgate.authorities.descriptor import AuthorityDescriptor, CreditNoteRules, OnboardingStep
from fiscalgate.core.certification import Certification, Notice
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    GatewayError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
    RateLimited,
    Resolution,
)
from fiscalgate.core.invoice import (
    Buyer,
    BuyerKind,
    Discount,
    ExtraTax,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Operator,
    OriginalInvoice,
    Payment,
    PaymentMethod,
    Seller,
    TaxCategory,
    parse_invoice,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyCertified",
    "AuthorityAuthError",
    "AuthorityDescriptor",
    "AuthorityDriver",
    "AuthorityError",
    "AuthorityServerError",
    "AuthoritySettings",
    "AuthorityUnreachable",
    "Buyer",
    "BuyerKind",
    "Certification",
    "ConfigurationError",
    "Connection",
    "CreditNoteRules",
    "Discount",
    "Environment",
    "ExtraTax",
    "GatewayError",
    "Invoice",
    "InvoiceError",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceRejected",
    "Notice",
    "OnboardingStep",
    "Operator",
    "OriginalInvoice",
    "OutcomeUnknown",
    "Payment",
    "PaymentMethod",
    "Problem",
    "RateLimited",
    "Reconciliation",
    "Resolution",
    "Seller",
    "TaxCategory",
    "__version__",
    "all_drivers",
    "codes",
    "descriptor",
    "descriptors",
    "get_driver",
    "parse_invoice",
]
