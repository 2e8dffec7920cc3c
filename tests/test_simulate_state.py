"""`fiscalgate simulate <authority> --state FILE`: a simulator restarted on the same file continues
its numbering and still knows the invoices certified before (a credit note against one works)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fiscalgate.cli import main
from fiscalgate.simkit.serve import serve_in_thread

EXAMPLES = Path(__file__).parents[1] / "src/fiscalgate/authorities"
CASES = {
    # authority: (simulator cli module, invoice, credit note, API path under the served URL)
    "ci-fne": ("ci_fne", "b2b_invoice.json", "b2b_credit_note.json", "/ws"),
    "bj-emecef": ("bj_emecef", "fv_with_aib.json", "fa_against_fv.json", ""),
    "cg-sfec": ("cg_sfec", "invoice.json", "credit_note.json", ""),
}


def start(authority: str, state: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """Run `fiscalgate simulate` up to the point it would serve; return (its app, its output)."""
    cli = importlib.import_module(f"fiscalgate.authorities.{CASES[authority][0]}.simulator.cli")
    served: list[Any] = []
    monkeypatch.setattr(cli, "run_forever", lambda app, host, port: served.append(app))
    result = CliRunner().invoke(main, ["simulate", authority, "--state", str(state)])
    assert result.exit_code == 0, result.output
    return served[0], result.output


def certify(authority: str, url: str, invoice: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["certify", str(invoice), "-a", authority, "--url", url, "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    cert: dict[str, Any] = json.loads(out.read_text())
    return cert


@pytest.mark.parametrize("authority", list(CASES))
def test_a_restarted_simulator_continues(
    authority: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package, invoice_name, credit_name, api = CASES[authority]
    invoice = EXAMPLES / package / "examples" / invoice_name
    state = tmp_path / "sim.json"

    app, output = start(authority, state, monkeypatch)
    assert "(new)" in output
    with serve_in_thread(app) as served:
        url = served + api
        first = certify(authority, url, invoice, tmp_path / "first.json")
    assert state.is_file()

    app, output = start(authority, state, monkeypatch)
    assert "(resumed)" in output
    second_invoice = tmp_path / "second.json"
    data = json.loads(invoice.read_text())
    data["number"] += "-B"  # SFEC keys invoices by their number: a new invoice, not a resend
    second_invoice.write_text(json.dumps(data))
    with serve_in_thread(app) as served:
        url = served + api
        second = certify(authority, url, second_invoice, tmp_path / "second-cert.json")
        credit = certify(
            authority,
            url,
            EXAMPLES / package / "examples" / credit_name,
            tmp_path / "credit.json",
            "--original",
            str(tmp_path / "first.json"),
        )
    assert second["reference"] != first["reference"]
    assert credit["reference"] not in (first["reference"], second["reference"])
    if authority == "bj-emecef":
        assert (first["counters"], second["counters"], credit["counters"]) == ("1/1 FV", "2/2 FV", "1/3 FA")


def test_a_file_that_is_not_a_snapshot_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    state.write_text("not json")
    result = CliRunner().invoke(main, ["simulate", "ci-fne", "--state", str(state)])
    assert result.exit_code != 0
    assert "is not a simulator snapshot" in str(result.exception)
