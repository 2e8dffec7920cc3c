"""The generic parts of the `fiscalgate` command (each authority tests its own flows)."""

import json
from pathlib import Path

from click.testing import CliRunner

from fiscalgate.cli import main

FNE_EXAMPLES = Path(__file__).parents[1] / "src/fiscalgate/authorities/ci_fne/examples"


def test_authorities_lists_all_three() -> None:
    result = CliRunner().invoke(main, ["authorities"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == ["ci-fne", "bj-emecef", "cg-sfec"]


def test_simulate_lists_each_authority_command() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for code in ("ci-fne", "bj-emecef", "cg-sfec"):
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
