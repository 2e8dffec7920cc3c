"""`fiscalgate print`: offline from a certification file, pro forma from an invoice file, and from a
running gateway by invoice id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from PIL import Image

from fiscalgate.cli import main
from fiscalgate.simkit.serve import serve_in_thread
from tests.gateway.conftest import real_invoice, real_tenant
from tests.printing.conftest import Certified
from tests.printing.helpers import all_text, qr_codes_per_page


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The CLI talks HTTP to the gateway: one database is enough (the route is tested on both).
    return f"sqlite:///{tmp_path}/gateway.db"


def _files(tmp_path: Path, c: Certified) -> tuple[Path, Path]:
    cert, invoice = tmp_path / "cert.json", tmp_path / "invoice.json"
    cert.write_text(c.cert.model_dump_json(indent=2), encoding="utf-8")
    invoice.write_text(c.invoice.model_dump_json(indent=2), encoding="utf-8")
    return cert, invoice


def test_offline_from_a_certification_file(tmp_path: Path, certified: dict[str, Certified]) -> None:
    c = certified["bj-emecef"]
    cert, invoice = _files(tmp_path, c)
    Image.new("RGB", (90, 40), (0, 120, 60)).save(tmp_path / "logo.png")
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"name": "Pharmacie du Lac", "rccm": "RB-COT-24-B-1", "logo": "logo.png"}))
    out = tmp_path / "out.pdf"
    args = ["print", str(cert), "--invoice", str(invoice), "--layout", "receipt", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--profile", str(profile), "--duplicate"])
    assert result.exit_code == 0, result.output
    pdf = out.read_bytes()
    text = all_text(pdf)
    assert c.cert.reference in text and "Pharmacie du Lac" in text and "DUPLICATA" in text
    assert qr_codes_per_page(pdf)[-1] == [c.cert.qr_content]


def test_offline_pro_forma_from_an_invoice_file(tmp_path: Path, certified: dict[str, Certified]) -> None:
    _, invoice = _files(tmp_path, certified["ci-fne"])
    out = tmp_path / "pro.pdf"
    result = CliRunner().invoke(
        main, ["print", str(invoice), "-a", "ci-fne", "--lang", "en", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "NOT CERTIFIED" in all_text(out.read_bytes())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{cert}"], "a certification file needs --invoice"),
        (["{invoice}"], "a pro forma needs --authority"),
        (["{cert}", "--invoice", "{cert}"], "is not a valid neutral invoice"),
        (["0123456789abcdef"], "give --url and --key"),
        (["{cert}", "--invoice", "{invoice}", "--layout", "a5"], "Invalid value for '--layout'"),
        (["{cert}", "--invoice", "{invoice}", "--profile", "{invoice}"], "unknown profile field(s)"),
    ],
)
def test_bad_input_says_what_is_wrong(
    tmp_path: Path, certified: dict[str, Certified], args: list[str], message: str
) -> None:
    cert, invoice = _files(tmp_path, certified["ci-fne"])
    filled = [a.format(cert=cert, invoice=invoice) for a in args]
    result = CliRunner().invoke(
        main, ["print", *filled, "--out", str(tmp_path / "x.pdf")], env={"FISCALGATE_URL": ""}
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.socket
@pytest.mark.anyio
async def test_from_a_running_gateway_by_invoice_id(real_app: FastAPI, tmp_path: Path) -> None:
    tenant, api, _, _ = await real_tenant(real_app, "ci-fne")
    async with api:
        created = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
        cert = (await api.post(f"/v1/invoices/{created['id']}/certify")).json()["certification"]
    out = tmp_path / "gw.pdf"
    with serve_in_thread(real_app) as base:
        args = ["print", created["id"], "--url", base, "--key", tenant["key"], "--out", str(out)]
        ok = CliRunner().invoke(main, args)
        missing = CliRunner().invoke(
            main, ["print", "nope", "--url", base, "--key", tenant["key"], "--out", str(tmp_path / "n.pdf")]
        )
    assert ok.exit_code == 0, ok.output
    assert qr_codes_per_page(out.read_bytes())[-1] == [cert["qr_content"]]
    assert missing.exit_code == 3 and "invoice.not_found" in missing.output
