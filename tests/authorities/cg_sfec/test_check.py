"""`python -m fiscalgate.authorities.cg_sfec.check`: a payload built elsewhere is checked locally,
every inconsistency is listed with its expected value, and nothing is sent while one remains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fiscalgate.authorities.cg_sfec import check
from fiscalgate.authorities.cg_sfec.descriptor import MOCK_API_KEY, MOCK_NIU
from fiscalgate.authorities.cg_sfec.simulator.app import create_simulator
from fiscalgate.simkit.serve import serve_in_thread

from .conftest import EXAMPLES


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(check.command, list(args))
    return result.exit_code, result.output


def test_the_seeds_own_example_is_refused_with_all_nine_faults() -> None:
    code, output = run(str(EXAMPLES / "seed_report_request.json"))
    assert code == 2
    assert "9 problem(s), nothing was sent" in output
    for line in (
        "items[0].net_amount: must be subtotal − discount_amount = 3320, got 7835.2",
        "items[1].tax_amount: must be net_amount × 18 % = 1432.8, got 1792.8",
        "subtotal: must be Σ items.net_amount = 11280, got 13280",
        "[expected 13310.4]",
    ):
        assert line in output


def test_the_seed_example_is_read_as_a_report_request() -> None:
    payload = json.loads((EXAMPLES / "seed_report_request.json").read_text(encoding="utf-8"))
    assert check.request_model(payload).__name__ == "ReportRequest"
    # only totals are wrong in it: the shape of the seed's own request is accepted
    assert {p.rule for p in check.problems_of(payload)} <= {
        "line_net",
        "line_tax",
        "line_total",
        "subtotal",
        "tax_t",
        "total_tax",
        "total",
        "amount_due",
    }


def test_a_valid_payload(tmp_path: Path) -> None:
    payload = json.loads((EXAMPLES / "inconsistent_payload.json").read_text(encoding="utf-8"))
    payload["items"][0]["net_amount"] = 685000
    payload["items"][1]["tax_amount"] = 11875
    payload.update(total_tax_r_amount=11875, total_amount=1189469, amount_due=1189469)
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    assert run(str(path)) == (0, "no problem found\n")
    code, output = run(str(path), "--paid", "189469")
    assert code == 2 and "amount_due" in output and "[expected 1000000]" in output
    code, output = run(str(path), "--paid", "lots")
    assert code == 2 and "'lots' is not an amount" in output
    assert run(str(path), "--url", "http://127.0.0.1:9")[0] == 2  # --url without --api-key


@pytest.mark.socket
def test_nothing_is_sent_while_a_problem_remains(tmp_path: Path) -> None:
    sim = create_simulator(MOCK_NIU, MOCK_API_KEY)
    bad = EXAMPLES / "inconsistent_payload.json"
    with serve_in_thread(sim.app) as url:
        code, output = run(str(bad), "--url", url, "--api-key", MOCK_API_KEY)
        assert code == 2 and "5 problem(s), nothing was sent" in output
        assert sim.platform.journal == []
        payload = json.loads(bad.read_text(encoding="utf-8"))
        payload["items"][0]["net_amount"] = 685000
        payload["items"][1]["tax_amount"] = 11875
        payload.update(total_tax_r_amount=11875, total_amount=1189469, amount_due=1189469)
        good = tmp_path / "good.json"
        good.write_text(json.dumps(payload), encoding="utf-8")
        wrong_key = run(str(good), "--url", url, "--api-key", "nope")
        assert wrong_key[0] == 3 and "AuthorityAuthError" in wrong_key[1]
        code, output = run(str(good), "--url", url, "--api-key", MOCK_API_KEY)
    assert code == 0, output
    assert json.loads(output)["certification_number"].startswith("SFEC-API-")
    assert list(sim.platform.records) == ["FAC-2026-0043"]


def test_test_payloads_never_go_to_the_production_host() -> None:
    code, output = run(
        str(EXAMPLES / "inconsistent_payload.json"), "--url", "https://api.sfec.gouv.cg", "--api-key", "k"
    )
    assert code == 2 and "cannot point at the production host" in output
