"""The library's public API: what `import fiscalgate` offers is exactly this list. Changing it is a
decision (a new name, or a breaking removal), so this test makes it a visible one."""

import tomllib
from pathlib import Path

import fiscalgate

ROOT = Path(__file__).parents[1]

PUBLIC = {
    # the neutral invoice
    "Invoice", "InvoiceLine", "InvoiceKind", "Buyer", "BuyerKind", "Seller", "Operator", "Payment",
    "PaymentMethod", "Discount", "ExtraTax", "TaxCategory", "OriginalInvoice", "parse_invoice",
    # the certification
    "Certification", "Notice", "Reconciliation",
    # the errors
    "GatewayError", "ConfigurationError", "InvoiceError", "Problem", "Resolution", "AuthorityError",
    "AuthorityUnreachable", "OutcomeUnknown", "AuthorityAuthError", "InvoiceRejected",
    "AlreadyCertified", "RateLimited", "AuthorityServerError",
    # the driver registry and the authorities' descriptors
    "get_driver", "all_drivers", "codes", "descriptor", "descriptors", "AuthorityDriver",
    "AuthoritySettings", "Connection", "Environment", "AuthorityDescriptor", "OnboardingStep",
    "CreditNoteRules",
    "__version__",
}  # fmt: skip


def test_the_public_api_is_pinned() -> None:
    assert set(fiscalgate.__all__) == PUBLIC
    assert len(fiscalgate.__all__) == len(PUBLIC)  # no name listed twice
    for name in fiscalgate.__all__:
        assert getattr(fiscalgate, name) is not None, name


def test_the_api_works_from_the_top_level_import() -> None:
    invoice = fiscalgate.parse_invoice(fiscalgate.descriptors()[0].sample())
    driver = fiscalgate.get_driver(fiscalgate.codes()[0])
    settings = driver.parse_settings(driver.mock_credentials())
    assert isinstance(invoice, fiscalgate.Invoice)
    assert driver.validate(invoice, settings) == []


def test_the_package_ships_its_types_and_its_license() -> None:
    assert (ROOT / "src/fiscalgate/py.typed").is_file()
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "2026 fiscalgate contributors" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
