"""What every registered authority guarantees, checked against its own simulator: the list comes
from the registry, so a new authority is covered without editing this file."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscalgate.authorities import descriptors, get_driver
from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Connection, Environment
from fiscalgate.authorities.descriptor import AuthorityDescriptor
from fiscalgate.core.errors import InvoiceError, Problem
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.simkit.serve import serve_in_thread

DESCRIPTORS = descriptors()
IDS = [d.code for d in DESCRIPTORS]


def _mock(described: AuthorityDescriptor) -> tuple[AuthorityDriver, AuthoritySettings]:
    driver = get_driver(described.code)
    return driver, driver.parse_settings({"environment": "mock", **described.mock_credentials()})


@pytest.fixture(params=["in-process", pytest.param("socket", marks=pytest.mark.socket)])
def transport_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(params=DESCRIPTORS, ids=IDS)
def described(request: pytest.FixtureRequest) -> AuthorityDescriptor:
    found: AuthorityDescriptor = request.param
    return found


@pytest.fixture
def connection(described: AuthorityDescriptor, transport_kind: str) -> Iterator[Connection]:
    """The authority's simulator, reached in-process (ASGI) or over a real TCP socket."""
    driver, settings = _mock(described)
    app = driver.mock_app(settings)
    placeholder = driver.base_url(settings)
    if transport_kind == "in-process":
        yield Connection(placeholder, Environment.MOCK, httpx.ASGITransport(app=app), 10.0)
        return
    with serve_in_thread(app) as url:
        # The simulator's routes live under the placeholder URL's path (FNE: /ws).
        yield Connection(url + httpx.URL(placeholder).path.rstrip("/"), Environment.MOCK, None, 10.0)


def test_the_sample_invoice_is_valid_for_its_authority(described: AuthorityDescriptor) -> None:
    driver, settings = _mock(described)
    assert driver.validate(parse_invoice(described.sample()), settings) == []
    assert driver.build_payload(parse_invoice(described.sample()), settings)


@pytest.mark.anyio
async def test_the_simulator_certifies_the_sample(
    described: AuthorityDescriptor, connection: Connection
) -> None:
    driver, settings = _mock(described)
    saved: list[dict[str, object]] = []

    async def checkpoint(data: dict[str, object]) -> None:
        saved.append(data)

    invoice = parse_invoice(described.sample("SHARED-1"))
    cert = await driver.certify(invoice, settings, connection, checkpoint=checkpoint)
    assert (cert.authority, cert.environment) == (described.code, "mock")
    assert cert.reference
    assert {"total_excl_tax", "total_tax", "total"} <= set(cert.totals)
    assert all(isinstance(v, Decimal) for v in cert.totals.values())
    assert cert.totals["total"] > 0
    assert cert.certified_at.tzinfo is not None


@pytest.mark.anyio
@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
async def test_certify_and_credit_note_refuse_what_validate_refuses_before_sending(
    described: AuthorityDescriptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver owns validation: its own entry points run `validate` first, so a caller (the
    gateway, the CLI) never needs to, and an invalid invoice never leaves the machine."""
    driver, settings = _mock(described)
    app = driver.mock_app(settings)
    connection = Connection(driver.base_url(settings), Environment.MOCK, httpx.ASGITransport(app=app), 10.0)
    original = await driver.certify(parse_invoice(described.sample("SHARED-VALID")), settings, connection)

    sent: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(599)

    offline = Connection(driver.base_url(settings), Environment.MOCK, httpx.MockTransport(refuse), 10.0)
    problem = Problem("buyer.name", "contract_rule", "refused by the test's validate")
    seen: list[str] = []

    def validate(invoice: Invoice, _settings: AuthoritySettings) -> list[Problem]:
        seen.append(invoice.number)
        return [problem]

    monkeypatch.setattr(driver, "validate", validate)
    with pytest.raises(InvoiceError) as certify_refused:
        await driver.certify(parse_invoice(described.sample("SHARED-BAD")), settings, offline)
    credit = parse_invoice(
        {
            **described.sample("SHARED-BAD-AV"),
            "kind": "credit_note",
            "original": {"number": "SHARED-VALID", "reference": original.reference},
        }
    )
    with pytest.raises(InvoiceError) as credit_refused:
        await driver.credit_note(credit, original, settings, offline)
    assert certify_refused.value.problems == [problem] and credit_refused.value.problems == [problem]
    assert seen == ["SHARED-BAD", "SHARED-BAD-AV"]
    assert sent == [], "nothing is sent for an invoice the driver's validate refuses"


@pytest.mark.anyio
@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
async def test_the_certified_sample_prints(described: AuthorityDescriptor) -> None:
    """Its printing.py gives the PDF renderer what it needs (fiscalgate/printing/README.md): the
    certified sample prints with its reference, a pro forma without it."""
    import io

    from pypdf import PdfReader

    from fiscalgate.printing import render_invoice_pdf

    def text(pdf: bytes) -> str:
        return " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)

    driver, settings = _mock(described)
    app = driver.mock_app(settings)
    connection = Connection(driver.base_url(settings), Environment.MOCK, httpx.ASGITransport(app=app), 10.0)
    invoice = parse_invoice(described.sample("SHARED-PRINT"))
    cert = await driver.certify(invoice, settings, connection)
    for layout in ("a4", "receipt"):
        assert cert.reference in text(render_invoice_pdf(invoice, cert, layout=layout))
        pro = text(render_invoice_pdf(invoice, None, authority=described.code, layout=layout))
        assert cert.reference not in pro and "NON CERTIFIÉE" in pro


@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
def test_the_simulator_imports_nothing_from_the_client_side(described: AuthorityDescriptor) -> None:
    """A simulator is a second, independent reading of the spec: only fiscalgate.simkit, its own
    simulator package and third-party libraries (contract tests prove nothing otherwise)."""
    folder = Path(get_driver(described.code).__class__.__module__.replace(".", "/"))
    root = Path(__file__).parents[2] / "src" / folder.parent / "simulator"
    files = sorted(root.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "app.py", "state.py", "cli.py"}
    allowed = ("fiscalgate.simkit", f"{described.package}.simulator")
    offenders = [
        f"{f.name}: {name}"
        for f in files
        for name in _imports(f)
        if (name.startswith("fiscalgate") and not name.startswith(allowed)) or name.startswith("..")
    ]
    assert offenders == []


def test_the_independence_check_sees_client_and_relative_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from fiscalgate.core.money import round_half_up\nfrom .. import convert\n", encoding="utf-8"
    )
    assert _imports(bad) == ["fiscalgate.core.money", "..convert"]


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ", ".join(alias.name for alias in node.names)
            # `..x` climbs out of simulator/ to the client side; `.x` stays inside it.
            names.append("." * node.level + module)
    return names
