"""The generic parts of the `fiscalgate` command (each authority tests its own flows)."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from fiscalgate.authorities import codes, descriptors, get_driver
from fiscalgate.authorities.capabilities import capabilities
from fiscalgate.cli import main
from fiscalgate.simkit.serve import serve_in_thread

FNE_EXAMPLES = Path(__file__).parents[1] / "src/fiscalgate/authorities/ci_fne/examples"


def test_authorities_lists_every_registered_one() -> None:
    result = CliRunner().invoke(main, ["authorities"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == codes()
    for line, described in zip(lines, descriptors(), strict=True):
        assert described.module in line and described.country in line and described.name in line
        offered = capabilities(get_driver(described.code))
        assert line.endswith("offers: " + (", ".join(offered) or "nothing else"))


def test_simulate_lists_each_authority_command() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for code in codes():
        assert code in result.output
    unknown = CliRunner().invoke(main, ["simulate", "rdc-dgi"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output


def test_certify_unknown_authority_and_unreadable_files(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["certify", str(tmp_path / "nope.json"), "-a", "ci-fne"])
    assert missing.exit_code == 2 and "cannot read the invoice file" in missing.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    bad_json = runner.invoke(main, ["certify", str(broken), "-a", "ci-fne"])
    assert bad_json.exit_code == 2 and "is not valid JSON" in bad_json.output
    unknown = runner.invoke(main, ["certify", str(FNE_EXAMPLES / "b2b_invoice.json"), "-a", "rdc-dgi"])
    assert unknown.exit_code == 2 and "unknown authority 'rdc-dgi'" in unknown.output


def test_bad_setting_pair_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["certify", str(FNE_EXAMPLES / "b2b_invoice.json"), "-a", "ci-fne", "--set", "ncc"]
    )
    assert result.exit_code == 2 and "--set takes key=value" in result.output


def test_credit_note_in_throwaway_mock_gets_a_hint(tmp_path: Path) -> None:
    runner = CliRunner()
    cert_file = tmp_path / "cert.json"
    first = runner.invoke(
        main, ["certify", str(FNE_EXAMPLES / "b2b_invoice.json"), "-a", "ci-fne", "--out", str(cert_file)]
    )
    assert first.exit_code == 0, first.output
    assert json.loads(cert_file.read_text())["authority"] == "ci-fne"
    credit = runner.invoke(
        main,
        ["certify", str(FNE_EXAMPLES / "b2b_credit_note.json"), "-a", "ci-fne", "--original", str(cert_file)],
    )
    assert credit.exit_code == 3
    assert "hint: without --url" in credit.output


# --- reconcile: an unknown outcome resolved across two runs of the CLI, over a real socket ---------
EXAMPLES = Path(__file__).parents[1] / "src/fiscalgate/authorities"


def _simulator(code: str) -> Iterator[str]:
    driver = get_driver(code)
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    with serve_in_thread(driver.mock_app(settings)) as url:
        yield url


@pytest.fixture
def emecef_url() -> Iterator[str]:
    yield from _simulator("bj-emecef")


@pytest.fixture
def fne_url() -> Iterator[str]:
    yield from _simulator("ci-fne")


@pytest.fixture
def sfec_url() -> Iterator[str]:
    yield from _simulator("cg-sfec")


def _fault(url: str, **spec: object) -> None:
    assert httpx.post(f"{url}/_sim/faults", json=spec).status_code == 201


@pytest.mark.socket
def test_emecef_lost_confirm_is_reconciled_from_the_pending_file(emecef_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    invoice = str(EXAMPLES / "bj_emecef/examples/fv_with_aib.json")
    common = ["-a", "bj-emecef", "--url", emecef_url, "--set", "timeout_seconds=0.5"]
    out = tmp_path / "fv.json"
    _fault(emecef_url, kind="drop_before_processing", path="/confirm")
    lost = runner.invoke(main, ["certify", invoice, *common, "--out", str(out)])
    assert lost.exit_code == 4, lost.output
    assert "OutcomeUnknown" in lost.output and "checkpoint:" in lost.output
    pending = tmp_path / "fv.json.pending.json"
    assert json.loads(pending.read_text())["uid"]
    assert not out.exists()
    done = runner.invoke(
        main, ["reconcile", invoice, *common, "--checkpoint", str(pending), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "certified by bj-emecef" in done.output
    assert json.loads(out.read_text())["reference"].startswith("TEST-")
    reference = json.loads(out.read_text())["reference"]
    assert json.loads(pending.read_text())["resolved"]["reference"] == reference
    # Asked again, it never advises a second certification: the file says it is resolved, and
    # e-MECeF (which no longer lists the request) is not even asked.
    _fault(emecef_url, kind="error", status=500, times=-1)
    again = runner.invoke(main, ["reconcile", invoice, *common, "--checkpoint", str(pending)])
    assert again.exit_code == 0, again.output
    assert "already resolved" in again.output and reference in again.output
    assert "safe" not in again.output


@pytest.mark.socket
def test_emecef_pending_request_can_be_cancelled(emecef_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    invoice = str(EXAMPLES / "bj_emecef/examples/fv_with_aib.json")
    common = ["-a", "bj-emecef", "--url", emecef_url, "--set", "timeout_seconds=0.5"]
    _fault(emecef_url, kind="drop_before_processing", path="/confirm")
    lost = runner.invoke(main, ["certify", invoice, *common])
    checkpoint = lost.output.split("checkpoint: ", 1)[1].splitlines()[0]
    cancelled = runner.invoke(
        main, ["reconcile", invoice, *common, "--checkpoint", checkpoint, "--decision", "cancel"]
    )
    assert cancelled.exit_code == 0, cancelled.output
    assert "not certified" in cancelled.output and "safe" in cancelled.output


@pytest.mark.socket
def test_fne_cannot_be_reconciled_automatically(fne_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    invoice = str(EXAMPLES / "ci_fne/examples/b2b_invoice.json")
    common = ["-a", "ci-fne", "--url", f"{fne_url}/ws", "--set", "timeout_seconds=0.5"]
    _fault(fne_url, kind="hang_after_processing", path="/sign")
    lost = runner.invoke(main, ["certify", invoice, *common, "--out", str(tmp_path / "c.json")])
    assert lost.exit_code == 4, lost.output
    result = runner.invoke(
        main, ["reconcile", invoice, *common, "--checkpoint", str(tmp_path / "c.json.pending.json")]
    )
    assert result.exit_code == 4
    assert "still unknown" in result.output and "portal" in result.output


@pytest.mark.socket
def test_sfec_timeout_is_found_by_invoice_id(sfec_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    invoice = str(EXAMPLES / "cg_sfec/examples/invoice.json")
    common = ["-a", "cg-sfec", "--url", sfec_url, "--set", "timeout_seconds=0.5", "--set", "max_attempts=1"]
    _fault(sfec_url, kind="hang_after_processing", path="/invoices")
    lost = runner.invoke(main, ["certify", invoice, *common, "--out", str(tmp_path / "s.json")])
    assert lost.exit_code == 4, lost.output
    found = runner.invoke(
        main, ["reconcile", invoice, *common, "--checkpoint", str(tmp_path / "s.json.pending.json")]
    )
    assert found.exit_code == 0, found.output
    assert "certified by cg-sfec" in found.output


def test_reconcile_rejects_a_checkpoint_that_is_neither_file_nor_json() -> None:
    result = CliRunner().invoke(
        main,
        ["reconcile", str(FNE_EXAMPLES / "b2b_invoice.json"), "-a", "ci-fne", "--checkpoint", "not-json"],
    )
    assert result.exit_code == 2 and "neither a file nor JSON" in result.output


@pytest.mark.parametrize("code", codes())
def test_certify_each_authoritys_sample_in_mock(code: str, tmp_path: Path) -> None:
    from fiscalgate.authorities import descriptor

    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(descriptor(code).sample("CLI-1")), encoding="utf-8")
    out = tmp_path / "cert.json"
    result = CliRunner().invoke(main, ["certify", str(invoice), "-a", code, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"certified by {code} (mock)" in result.output
    assert json.loads(out.read_text(encoding="utf-8"))["authority"] == code
