"""`fiscalgate certify --authority cg-sfec` and `fiscalgate simulate cg-sfec`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from fiscalgate.authorities.cg_sfec.descriptor import MOCK_API_KEY, MOCK_NIU
from fiscalgate.authorities.cg_sfec.simulator import cli as sim_cli
from fiscalgate.authorities.cg_sfec.simulator.app import create_simulator
from fiscalgate.cli import main
from fiscalgate.simkit.serve import serve_in_thread

from .conftest import EXAMPLES


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_simulate_help() -> None:
    result = run("simulate", "cg-sfec", "--help")
    assert result.exit_code == 0
    for flag in ("--port", "--host", "--niu", "--api-key"):
        assert flag in result.output


def test_simulate_serves_with_the_given_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(sim_cli, "run_forever", lambda app, host, port: served.append((app, host, port)))
    result = run("simulate", "cg-sfec", "--port", "9123", "--niu", "P000001212112130", "--api-key", "k-123")
    assert result.exit_code == 0 and "http://127.0.0.1:9123" in result.output
    [(app, host, port)] = served
    assert (host, port) == ("127.0.0.1", 9123)

    async def probe(key: str) -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            return (await client.get("/api/invoices", headers={"X-API-Key": key})).status_code

    assert anyio.run(probe, "k-123") == 200
    assert anyio.run(probe, MOCK_API_KEY) == 401


def test_certify_the_example_in_mock() -> None:
    result = run("certify", str(EXAMPLES / "invoice.json"), "--authority", "sfec")
    assert result.exit_code == 0, result.output
    assert "certified by cg-sfec (mock)" in result.output
    assert "SFEC-API-" in result.output and "1189469" in result.output


def test_dry_run_prints_the_payload() -> None:
    result = run("certify", str(EXAMPLES / "invoice.json"), "-a", "cg-sfec", "--dry-run")
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["total_amount"] == 1189469 and payload["invoice_type"] == "salesInvoice"


def test_an_invalid_invoice_lists_every_problem(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "invoice.json").read_text(encoding="utf-8"))
    data["currency"] = "EUR"
    data["buyer"].pop("tax_id")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["certify", str(path), "-a", "cg-sfec"])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.output
    assert "currency: SFEC accepts XAF or USD" in result.output and "buyer.tax_id" in result.output


@pytest.mark.socket
def test_invoice_then_credit_note_against_a_simulator_run_apart(tmp_path: Path) -> None:
    sim = create_simulator(MOCK_NIU, MOCK_API_KEY)
    with serve_in_thread(sim.app) as url:
        cert = tmp_path / "cert.json"
        first = run(
            "certify", str(EXAMPLES / "invoice.json"), "-a", "cg-sfec", "--url", url, "--out", str(cert)
        )
        assert first.exit_code == 0, first.output
        note = run(
            "certify",
            str(EXAMPLES / "credit_note.json"),
            "-a",
            "cg-sfec",
            "--url",
            url,
            "--original",
            str(cert),
        )
        assert note.exit_code == 0, note.output
        again = CliRunner().invoke(
            main,
            [
                "certify",
                str(EXAMPLES / "credit_note.json"),
                "-a",
                "cg-sfec",
                "--url",
                url,
                "--original",
                str(cert),
                "--set",
                "max_attempts=1",
            ],
        )
    assert again.exit_code == 0  # same invoice_id, same content: adopted, not certified twice
    assert "certified by cg-sfec" in again.output
    assert sorted(sim.platform.records) == ["AV-2026-0007", "FAC-2026-0042"]
    assert sim.platform.records["FAC-2026-0042"].credit_note_id == "AV-2026-0007"


@pytest.mark.socket
def test_wrong_key_on_a_simulator_run_apart_is_reported(tmp_path: Path) -> None:
    sim = create_simulator(MOCK_NIU, "another-key")
    with serve_in_thread(sim.app) as url:
        result = CliRunner().invoke(
            main, ["certify", str(EXAMPLES / "invoice.json"), "-a", "cg-sfec", "--url", url]
        )
    assert result.exit_code == 3
    assert "AuthorityAuthError" in result.output and "Clé d’authentification invalide" in result.output
