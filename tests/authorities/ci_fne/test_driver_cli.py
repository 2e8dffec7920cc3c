"""Settings safety, environments and URLs, the registry entry, and the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
from fiscalgate.authorities.ci_fne.printing import print_data
from fiscalgate.authorities.ci_fne.simulator import cli as sim_cli
from fiscalgate.cli import main
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.simkit.serve import serve_in_thread

EXAMPLES = Path(__file__).parents[3] / "src/fiscalgate/authorities/ci_fne/examples"
KEY = "Fq3ZbW8mTx2LkR7nVc4PsY9dHj6QaE1u"


def base(**changes: Any) -> dict[str, Any]:
    return {
        "ncc": "9606123E",
        "api_key": KEY,
        "point_of_sale": "Caisse 1",
        "establishment": "Siège",
        **changes,
    }


def test_registry_entry() -> None:
    driver = get_driver("fne")
    assert isinstance(driver, FneDriver)
    assert (driver.code, driver.module, driver.country, driver.currencies) == (
        "ci-fne",
        "fne",
        "CI",
        ("XOF",),
    )
    assert get_driver("ci-fne") is driver


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        (base(), "http://ci-fne.mock/ws"),
        (base(base_url="http://127.0.0.1:8010/ws/"), "http://127.0.0.1:8010/ws"),
        (base(environment="sandbox"), "http://54.247.95.108/ws"),
        (base(environment="sandbox", base_url="http://proxy.local/ws"), "http://proxy.local/ws"),
        (
            base(environment="production", production_url="https://www.services.fne.dgi.gouv.ci/ws"),
            "https://www.services.fne.dgi.gouv.ci/ws",
        ),
    ],
    ids=["mock", "mock-apart", "sandbox", "sandbox-override", "production"],
)
def test_base_url_per_environment(driver: FneDriver, settings: dict[str, Any], url: str) -> None:
    assert driver.base_url(driver.parse_settings(settings)) == url


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        (base(environment="production"), "production_url", "production needs"),
        (
            base(environment="production", production_url="http://www.services.fne.dgi.gouv.ci/ws"),
            "production_url",
            "https",
        ),
        (
            base(environment="production", production_url="https://54.247.95.108/ws"),
            "production_url",
            "test platform",
        ),
        (
            base(environment="production", production_url="https://127.0.0.1:8443/ws"),
            "production_url",
            "this machine",
        ),
        (
            base(environment="production", production_url="https://localhost/ws"),
            "production_url",
            "this machine",
        ),
        (
            base(
                environment="production",
                production_url="https://www.services.fne.dgi.gouv.ci/ws",
                base_url="http://127.0.0.1:8010/ws",
            ),
            "base_url",
            "https",
        ),
        (
            base(environment="sandbox", base_url="https://www.services.fne.dgi.gouv.ci/ws"),
            "base_url",
            "production host",
        ),
        (base(base_url="https://www.services.fne.dgi.gouv.ci/ws"), "base_url", "production host"),
        (base(ncc="9606123"), "ncc", "pattern"),
        (base(api_key=""), "api_key", "at least 1"),
        (base(point_of_sale=""), "point_of_sale", "at least 1"),
    ],
    ids=[
        "prod-without-url",
        "prod-plain-http",
        "prod-test-host",
        "prod-loopback",
        "prod-localhost",
        "prod-base-url-loopback",
        "sandbox-to-prod",
        "mock-to-prod",
        "bad-ncc",
        "empty-key",
        "empty-pos",
    ],
)
def test_dangerous_settings_are_refused(
    driver: FneDriver, settings: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        driver.parse_settings(settings)
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems and words in problems[field], problems


def test_secrets_are_masked_in_settings(driver: FneDriver) -> None:
    s = driver.parse_settings(base())
    assert isinstance(s, FneSettings)
    assert KEY not in repr(s) and s.secrets() == [KEY]


def test_mock_credentials_work_on_mock_app(driver: FneDriver) -> None:
    creds = driver.mock_credentials(ncc="1304777N")
    app = driver.mock_app(driver.parse_settings(creds))
    taxpayer = next(iter(app.platform.taxpayers.values()))  # type: ignore[attr-defined]
    assert (taxpayer.ncc, taxpayer.api_key) == ("1304777N", creds["api_key"])
    assert taxpayer.points_of_sale == [creds["point_of_sale"]]


# --- CLI ---------------------------------------------------------------------------------------------
def test_certify_example_in_process(tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    result = CliRunner().invoke(
        main, ["certify", str(EXAMPLES / "b2b_invoice.json"), "--authority", "ci-fne", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cert = json.loads(out.read_text())
    assert cert["reference"] in result.output
    assert cert["reference"].startswith("9606123E")
    assert "680400" in result.output  # the DOC's net HT
    printed = print_data(Certification.model_validate(cert))
    assert printed.title == f"Facture de vente Nº {cert['reference']}"
    assert printed.qr_payload == cert["qr_content"]
    assert [label for label, _ in printed.totals] == [
        "TOTAL HT",
        "TVA",
        "TOTAL TTC",
        "AUTRES TAXES",
        "TOTAL A PAYER",
    ]


def test_certify_invalid_example_lists_problems() -> None:
    result = CliRunner().invoke(main, ["certify", str(EXAMPLES / "invalid_invoice.json"), "-a", "ci-fne"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    for expected in (
        "buyer.tax_id",
        "lines[0].tax_code",
        "lines[1].extra_taxes[0].rate",
        "authority_options.ci-fne.rne",
        "buyer.phone",
    ):
        assert expected in result.output


def test_dry_run_prints_the_payload() -> None:
    result = CliRunner().invoke(
        main, ["certify", str(EXAMPLES / "b2b_invoice.json"), "-a", "fne", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["template"] == "B2B" and body["customTaxes"] == [{"name": "DTD", "amount": 5}]


@pytest.mark.socket
def test_invoice_then_credit_note_against_a_simulator_run_apart(driver: FneDriver, tmp_path: Path) -> None:
    """The README's walk-through: simulator on a socket, invoice, then a partial credit note."""
    app = driver.mock_app(driver.parse_settings(driver.mock_credentials()))
    runner = CliRunner()
    with serve_in_thread(app) as url:
        first = runner.invoke(
            main,
            [
                "certify",
                str(EXAMPLES / "b2b_invoice.json"),
                "-a",
                "ci-fne",
                "--url",
                f"{url}/ws",
                "--out",
                str(tmp_path / "c.json"),
            ],
        )
        assert first.exit_code == 0, first.output
        note = runner.invoke(
            main,
            [
                "certify",
                str(EXAMPLES / "b2b_credit_note.json"),
                "-a",
                "ci-fne",
                "--url",
                f"{url}/ws",
                "--original",
                str(tmp_path / "c.json"),
            ],
        )
    assert note.exit_code == 0, note.output
    assert "reference        A9606123E" in note.output
    assert "81000" in note.output  # 5 bags x 20 000 - 10 % - 10 %


def test_credit_note_without_running_simulator_is_explained(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "c.json"
    assert (
        runner.invoke(
            main, ["certify", str(EXAMPLES / "b2b_invoice.json"), "-a", "ci-fne", "--out", str(out)]
        ).exit_code
        == 0
    )
    # each in-process mock run starts a fresh simulator: the original is unknown there
    note = runner.invoke(
        main, ["certify", str(EXAMPLES / "b2b_credit_note.json"), "-a", "ci-fne", "--original", str(out)]
    )
    assert note.exit_code == 3
    assert "Invoice not found" in note.output


def test_simulate_help() -> None:
    result = CliRunner().invoke(main, ["simulate", "ci-fne", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--port",
        "--host",
        "--ncc",
        "--api-key",
        "--stickers",
        "--establishment",
        "--point-of-sale",
        "--warning-threshold",
    ):
        assert flag in result.output


def test_simulate_refuses_a_bad_ncc() -> None:
    result = CliRunner().invoke(main, ["simulate", "ci-fne", "--ncc", "123"])
    assert result.exit_code == 2 and "NCC" in result.output


@pytest.mark.parametrize(
    ("kind", "title"),
    [("sale", "Facture de vente"), ("credit_note", "Facture d'avoir"), ("purchase", "Bordereau d'achat")],
)
def test_print_data_titles_and_rows(kind: str, title: str) -> None:
    cert = Certification(
        authority="ci-fne",
        environment="mock",
        kind=kind,
        reference="A9606123E2600000001",
        qr_content="http://h/fr/verification/t",
        verification_url="http://h/fr/verification/t",
        certified_at=datetime.now(UTC),
        totals={"total_excl_tax": Decimal(100), "vat": Decimal(18), "total_to_pay": Decimal(118)},
        authority_data={"ncc": "9606123E", "original_reference": "9606123E26000000001"},
    )
    printed = print_data(cert)
    assert printed.title == f"{title} Nº A9606123E2600000001"
    assert printed.totals == [
        ("TOTAL HT", Decimal(100)),
        ("TVA", Decimal(18)),
        ("TOTAL A PAYER", Decimal(118)),
    ]
    assert (printed.issuer_ncc, printed.original_reference) == ("9606123E", "9606123E26000000001")
    assert printed.vat_labels["TVA"] == "TVA normal - TVA sur HT 18,00% - A"


def test_invalid_b2f_example_lists_the_other_rules() -> None:
    result = CliRunner().invoke(main, ["certify", str(EXAMPLES / "invalid_b2f_invoice.json"), "-a", "ci-fne"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    for expected in (
        "foreign_currency: a B2F invoice needs the foreign currency and its exchange rate",
        "authority_options.ci-fne.payment_method: unknown FNE payment method 'bank-transfer'",
        "authority_options.ci-fne.custom_taxes[0].name: a custom tax needs a name",
        "lines[0].tax_code: each sale line needs exactly one FNE VAT code",
    ):
        assert expected in result.output


def test_dry_run_of_a_credit_note_explains_instead_of_crashing() -> None:
    result = CliRunner().invoke(
        main, ["certify", str(EXAMPLES / "b2b_credit_note.json"), "-a", "ci-fne", "--dry-run"]
    )
    assert result.exit_code == 2, result.output
    assert "credit_note_needs_original" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("key", ["clé-avec-accent", "two words", "tab\there"], ids=["accent", "space", "tab"])
def test_an_api_key_that_cannot_travel_in_a_header_is_refused(driver: FneDriver, key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        driver.parse_settings(base(api_key=key))
    problems = {p.field: p.message for p in caught.value.problems}
    assert "printable ASCII" in problems["api_key"]
    assert key not in str(caught.value.to_dict())  # the settings error never echoes the key


def test_a_pasted_key_is_trimmed(driver: FneDriver) -> None:
    s = driver.parse_settings(base(api_key=f"  {KEY}\n"))
    assert isinstance(s, FneSettings) and s.api_key.get_secret_value() == KEY


@pytest.mark.socket
def test_a_url_without_ws_is_explained(driver: FneDriver) -> None:
    app = driver.mock_app(driver.parse_settings(driver.mock_credentials()))
    with serve_in_thread(app) as url:
        result = CliRunner().invoke(
            main, ["certify", str(EXAMPLES / "b2b_invoice.json"), "-a", "ci-fne", "--url", url]
        )
    assert result.exit_code == 2, result.output
    assert "configuration error" in result.output and "/ws" in result.output
    assert app.platform.documents == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", ["", " ", "a b"], ids=["empty", "blank", "space"])
def test_simulate_refuses_a_key_no_client_could_send(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[object] = []
    monkeypatch.setattr(sim_cli, "run_forever", lambda *args: served.append(args))  # never block
    result = CliRunner().invoke(main, ["simulate", "ci-fne", "--api-key", key])
    assert result.exit_code == 2 and "API key" in result.output
    assert served == []
