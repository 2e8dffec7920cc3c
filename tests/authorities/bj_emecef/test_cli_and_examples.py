"""The CLI (`fiscalgate certify -a bj-emecef`, `fiscalgate simulate bj-emecef`) and the README's examples."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

import fiscalgate.authorities.bj_emecef as package
from fiscalgate.authorities.bj_emecef.simulator import cli as sim_cli
from fiscalgate.authorities.bj_emecef.simulator.app import create_app
from fiscalgate.authorities.bj_emecef.simulator.state import Platform
from fiscalgate.cli import main
from fiscalgate.simkit.serve import serve_in_thread

EXAMPLES = Path(package.__file__).parent / "examples"


@pytest.mark.socket
def test_certify_fv_with_aib_then_fa_against_it_from_the_cli(tmp_path: Path) -> None:
    platform = Platform()  # the defaults of `fiscalgate simulate bj-emecef` = the mock credentials
    runner = CliRunner()
    with serve_in_thread(create_app(platform)) as url:
        fv_cert = tmp_path / "fv.cert.json"
        fv = runner.invoke(
            main,
            [
                "certify",
                str(EXAMPLES / "fv_with_aib.json"),
                "-a",
                "bj-emecef",
                "--url",
                url,
                "--out",
                str(fv_cert),
            ],
        )
        assert fv.exit_code == 0, fv.output
        assert "counters         1/1 FV" in fv.output and "total            5170" in fv.output
        saved = json.loads(fv_cert.read_text(encoding="utf-8"))
        assert saved["authority_data"]["type"] == "FV" and saved["reference"].startswith("TEST-")

        fa = runner.invoke(
            main,
            [
                "certify",
                str(EXAMPLES / "fa_against_fv.json"),
                "-a",
                "mecef",
                "--url",
                url,
                "--original",
                str(fv_cert),
            ],
        )
        assert fa.exit_code == 0, fa.output
        assert "counters         1/2 FA" in fa.output and "total            1876" in fa.output
        assert platform.invoices[saved["authority_data"]["code"]].credited == 1876

        # 5170 - 1876 leaves 3294: one more identical FA fits, a third exceeds the original (error 12)
        fa_args = ["certify", str(EXAMPLES / "fa_against_fv.json"), "-a", "bj-emecef", "--url", url]
        second = runner.invoke(main, [*fa_args, "--original", str(fv_cert)])
        assert second.exit_code == 0 and "2/3 FA" in second.output
        again = runner.invoke(main, [*fa_args, "--original", str(fv_cert)])
    assert again.exit_code == 3
    assert "[12] La référence de la facture originale n'est pas valide (le montant" in again.output


def test_certify_in_process_mock_and_dry_run() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["certify", str(EXAMPLES / "fv_with_aib.json"), "-a", "bj-emecef"])
    assert result.exit_code == 0, result.output
    assert "reference        TEST-" in result.output
    dry = runner.invoke(main, ["certify", str(EXAMPLES / "fv_with_aib.json"), "-a", "bj-emecef", "--dry-run"])
    assert dry.exit_code == 0
    assert json.loads(dry.output)["aib"] == "B"


def test_certify_reports_every_local_problem(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "fv_with_aib.json").read_text(encoding="utf-8"))
    data["lines"][0]["tax_category"] = "reduced"
    data["authority_options"]["bj-emecef"]["aib"] = "Z"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["certify", str(path), "-a", "bj-emecef"])
    assert result.exit_code == 2
    assert "lines[0].tax_category" in result.output and "authority_options.bj-emecef.aib" in result.output


def test_simulate_help() -> None:
    result = CliRunner().invoke(main, ["simulate", "bj-emecef", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--port",
        "--host",
        "--ifu",
        "--nim",
        "--token-secret",
        "--pending-ttl",
        "--test-mode / --production-mode",
    ):
        assert flag in result.output


def test_simulate_prints_a_token_the_simulator_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(sim_cli, "run_forever", lambda app, host, port: served.update(app=app, port=port))
    secret = "a-cli-secret-of-at-least-thirty-two-bytes"
    args = [
        "simulate",
        "bj-emecef",
        "--port",
        "9123",
        "--ifu",
        "1234567890123",
        "--nim",
        "TS01000077",
        "--token-secret",
        secret,
    ]
    result = CliRunner().invoke(main, [*args, "--pending-ttl", "30", "--production-mode"])
    assert result.exit_code == 0, result.output
    token = next(line.split()[-1] for line in result.output.splitlines() if line.startswith("token:"))
    platform = served["app"].platform
    assert served["port"] == 9123 and platform.pending_ttl.total_seconds() == 30 and not platform.test_mode
    assert platform.authenticate(f"Bearer {token}")


def test_simulate_refuses_bad_ids() -> None:
    result = CliRunner().invoke(main, ["simulate", "bj-emecef", "--ifu", "12"])
    assert result.exit_code == 2 and "13 digits" in result.output


def test_python_example_certifies_fv_then_fa(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("emecef_example", EXAMPLES / "certify_fv_then_fa.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fv, fa = anyio.run(module.main)
    assert (fv.counters, fv.totals["total"]) == ("1/1 FV", 5170)
    assert (fa.counters, fa.totals["total"]) == ("1/2 FA", 1876)
    assert fa.authority_data["original_code"] == fv.authority_data["code"]
    assert "persist before confirming" in capsys.readouterr().out


def test_the_invalid_example_reports_every_problem_and_sends_nothing() -> None:
    result = CliRunner().invoke(main, ["certify", str(EXAMPLES / "invalid_invoice.json"), "-a", "bj-emecef"])
    assert result.exit_code == 2, result.output
    fields = {
        line.split(":")[0].strip(" -") for line in result.output.splitlines() if line.startswith("  - ")
    }
    assert fields == {
        "authority_options.bj-emecef.aib",
        "discount",
        "lines[0].tax_category",
        "lines[1].extra_taxes[0].rate",
        "buyer.tax_id",
    }
    assert "certified by" not in result.output
