"""`fiscalgate certify-batch` against a gateway served over a real socket: progress, summary,
exit codes, the CSV format, and resuming after an interruption without certifying twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

import fiscalgate.certify_batch as cb
from fiscalgate.cli import main
from fiscalgate.gateway.queue import run_background
from fiscalgate.gateway.runtime import Database, Gateway
from fiscalgate.simkit.serve import serve_in_thread
from tests.gateway.batches.test_batch_api import FAST
from tests.gateway.conftest import FAKE_SETTINGS, gateway, new_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver

pytestmark = [pytest.mark.anyio, pytest.mark.socket]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The client is under test here, not the database: SQLite only (the batch routes run on both
    databases in test_batch_api.py)."""
    return f"sqlite:///{tmp_path}/gateway.db"


@pytest.fixture
def served(fake_app: FastAPI, fakes: dict[str, FakeDriver]) -> Iterator[str]:
    """The gateway over a socket, and a queue worker beside it (batches are certified only
    through the queue), in a thread of its own like a `fiscalgate worker` process."""
    served_gw = gateway(fake_app)
    worker_gw = Gateway(
        db=Database(served_gw.db.url),
        box=served_gw.box,
        admin_token="",
        driver_lookup=lambda code: fakes[code],
        allow_private_urls=True,
    )
    stop = threading.Event()

    async def work() -> None:
        async with run_background(worker_gw, "worker", concurrency=4, poll=0.05, policy=FAST, heartbeat=0.2):
            await anyio.to_thread.run_sync(stop.wait)

    thread = threading.Thread(target=anyio.run, args=(work,), daemon=True)
    thread.start()
    try:
        with serve_in_thread(fake_app) as url:
            yield url
    finally:
        stop.set()
        thread.join(30)
        worker_gw.db.dispose()


async def _key(app: FastAPI) -> str:
    tenant, api = await new_tenant(app, settings={"ci-fne": FAKE_SETTINGS})
    await api.aclose()
    key: str = tenant["key"]
    return key


def _jsonl(path: Path, invoices: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in invoices), encoding="utf-8")
    return path


def _run(file: Path, url: str, key: str, *extra: str) -> Any:
    args = ["certify-batch", str(file), "--url", url, "--key", key, "-a", "ci-fne", "--poll", "0.05", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _calls(fakes: dict[str, FakeDriver]) -> int:
    return sum(s.calls for s in fakes["ci-fne"].simulators)


async def test_a_file_certified_with_a_summary_and_a_rerun_sends_nothing_again(
    fake_app: FastAPI, served: str, fakes: dict[str, FakeDriver], tmp_path: Path
) -> None:
    key = await _key(fake_app)
    invoices = [sample_invoice(f"C-{n}") for n in range(4)]
    invoices.append(sample_invoice("REJECT-5"))
    invoices.append(sample_invoice("C-6", buyer={"name": "INVALID"}))
    file = _jsonl(tmp_path / "invoices.jsonl", invoices)
    result = _run(file, served, key, "--chunk", "2")
    assert result.exit_code == 1, result.output
    assert "6 invoices: 5 accepted, 1 refused" in result.output
    assert "certified 4, rejected 1, failed 0, unknown 0" in result.output
    assert "#6 C-6: refused: invoice.buyer.name: this buyer is refused" in result.output
    assert "#5 REJECT-5: rejected" in result.output
    state = json.loads((tmp_path / "invoices.jsonl.state.json").read_text())
    assert [c["count"] for c in state["chunks"]] == [2, 2, 2]
    assert all(c["batch_id"] for c in state["chunks"])
    assert _calls(fakes) == 5

    again = _run(file, served, key, "--chunk", "2")
    assert again.exit_code == 1
    assert "resuming: 3 of 3 chunks already sent" in again.output
    assert "certified 4, rejected 1" in again.output
    assert _calls(fakes) == 5


async def test_interrupted_runs_resume_and_nothing_is_certified_twice(
    fake_app: FastAPI,
    served: str,
    fakes: dict[str, FakeDriver],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = await _key(fake_app)
    file = _jsonl(tmp_path / "big.jsonl", [sample_invoice(f"I-{n}") for n in range(9)])
    real_send = cb.send_chunk
    sent: list[str] = []

    def lost_answer(*args: Any) -> str:
        # The gateway took chunk 2, but the process died before recording its answer.
        batch_id = real_send(*args)
        sent.append(batch_id)
        if len(sent) == 2:
            raise KeyboardInterrupt
        return batch_id

    monkeypatch.setattr(cb, "send_chunk", lost_answer)
    first = _run(file, served, key, "--chunk", "3")
    assert first.exit_code == 130 and "run the same command again" in first.output
    state = json.loads((tmp_path / "big.jsonl.state.json").read_text())
    assert [c["batch_id"] for c in state["chunks"]] == [sent[0], None, None]

    monkeypatch.setattr(cb, "send_chunk", real_send)
    second = _run(file, served, key, "--chunk", "3")
    assert second.exit_code == 0, second.output
    assert "9 invoices: 9 accepted, 0 refused" in second.output and "certified 9" in second.output
    state = json.loads((tmp_path / "big.jsonl.state.json").read_text())
    # Chunk 2 went again with the same Idempotency-Key: the gateway replayed its first answer.
    assert state["chunks"][1]["batch_id"] == sent[1]
    assert _calls(fakes) == 9
    assert len(fakes["ci-fne"].simulators[0].certified) == 9


async def test_a_changed_file_starts_over_and_known_invoices_are_recognised(
    fake_app: FastAPI, served: str, fakes: dict[str, FakeDriver], tmp_path: Path
) -> None:
    key = await _key(fake_app)
    invoices = [sample_invoice(f"G-{n}") for n in range(3)]
    file = _jsonl(tmp_path / "grow.jsonl", invoices)
    assert _run(file, served, key).exit_code == 0
    _jsonl(file, [*invoices, sample_invoice("G-3")])
    result = _run(file, served, key)
    assert result.exit_code == 0, result.output
    assert "starting over" in result.output and "certified 4" in result.output
    assert _calls(fakes) == 4


async def test_csv_rows_make_invoices(
    fake_app: FastAPI, served: str, fakes: dict[str, FakeDriver], tmp_path: Path
) -> None:
    key = await _key(fake_app)
    file = tmp_path / "sales.csv"
    file.write_text(
        "number,currency,seller_name,seller_tax_id,buyer_kind,buyer_name,payment_method,"
        "line_description,line_quantity,line_unit_price,line_discount_percent,line_price_includes_tax\n"
        "V-1,XOF,Boutique,1234567A,individual,Ama,cash,Riz 25 kg,2,15000,,no\n"
        "V-1,,,,,,,Huile 5 l,3,6000,10,\n"
        "V-2,XOF,Boutique,1234567A,business,SARL Kofi,mobile_money,Savon,10,500,,yes\n",
        encoding="utf-8",
    )
    items = cb.read_csv(file, "ci-fne")
    assert items[0] == {
        "authority": "ci-fne",
        "invoice": {
            "number": "V-1",
            "currency": "XOF",
            "seller": {"name": "Boutique", "tax_id": "1234567A"},
            "buyer": {"kind": "individual", "name": "Ama"},
            "payments": [{"method": "cash"}],
            "lines": [
                {
                    "description": "Riz 25 kg",
                    "quantity": "2",
                    "unit_price": "15000",
                    "price_includes_tax": False,
                },
                {
                    "description": "Huile 5 l",
                    "quantity": "3",
                    "unit_price": "6000",
                    "discount": {"kind": "percent", "value": "10"},
                },
            ],
        },
    }
    assert items[1]["invoice"]["lines"][0]["price_includes_tax"] is True
    result = _run(file, served, key)
    assert result.exit_code == 0, result.output
    assert "2 invoices: 2 accepted" in result.output and "certified 2" in result.output


def test_unreadable_files_send_nothing(tmp_path: Path) -> None:
    url, key = "http://127.0.0.1:9", "fgk_x_y"  # nothing listens: nothing may be sent
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"number": "A"}\n{oops\n[1, 2]\n', encoding="utf-8")
    result = _run(bad, url, key)
    assert result.exit_code == 2
    assert "line 2: not JSON" in result.output and "line 3: a JSON object is expected" in result.output
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("number,colour\nA,red\n", encoding="utf-8")
    result = _run(csv_file, url, key)
    assert (
        result.exit_code == 2
        and "unknown columns colour" in result.output
        and "line_quantity" in result.output
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert _run(empty, url, key).exit_code == 2
    assert not (tmp_path / "bad.jsonl.state.json").exists()
