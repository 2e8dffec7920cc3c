"""`fiscalgate certify-batch FILE`: send a file of neutral invoices to a running gateway in
batches, follow them to the end with a progress bar, print a summary; resumable.

Resuming (after Ctrl-C, a crash, a lost connection): the state file `FILE.state.json`, next to
FILE, records for each chunk of the file the `Idempotency-Key` it is sent with and, once the
gateway answered, its batch id. A rerun sends only the chunks without a batch id, with the same
key (a chunk whose answer was lost is replayed by the gateway, not created twice) and then
follows every batch. Even without the state file nothing is certified twice: the gateway answers
an invoice number it already holds with the same content as that invoice (`existing`), and never
certifies a certified invoice again.

Only the standard library, httpx and click: this runs on an ERP's machine, without the gateway.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import httpx

STATE_SUFFIX = ".state.json"
MAX_CHUNK = 1000

# CSV: one row per invoice line; rows with the same `number` make one invoice (its other columns
# are read from its first row). Empty cells are left out. Column -> (level, path in the invoice).
CSV_INVOICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("number",),
    "kind": ("kind",),
    "issued_at": ("issued_at",),
    "currency": ("currency",),
    "seller_name": ("seller", "name"),
    "seller_tax_id": ("seller", "tax_id"),
    "seller_regime": ("seller", "regime"),
    "buyer_kind": ("buyer", "kind"),
    "buyer_name": ("buyer", "name"),
    "buyer_tax_id": ("buyer", "tax_id"),
    "buyer_phone": ("buyer", "phone"),
    "buyer_email": ("buyer", "email"),
    "buyer_address": ("buyer", "address"),
    "operator_name": ("operator", "name"),
    "point_of_sale": ("point_of_sale",),
    "establishment": ("establishment",),
    "payment_method": ("payments", "method"),
    "notes": ("notes",),
}
CSV_LINE_COLUMNS: dict[str, tuple[str, ...]] = {
    "line_description": ("description",),
    "line_quantity": ("quantity",),
    "line_unit_price": ("unit_price",),
    "line_tax_category": ("tax_category",),
    "line_tax_code": ("tax_code",),
    "line_price_includes_tax": ("price_includes_tax",),
    "line_discount_percent": ("discount", "percent"),
    "line_discount_amount": ("discount", "amount"),
    "line_unit": ("unit",),
    "line_reference": ("reference",),
}
CSV_COLUMNS = ("authority", *CSV_INVOICE_COLUMNS, *CSV_LINE_COLUMNS)


class FileProblem(click.ClickException):
    exit_code = 2


# --- reading the file -----------------------------------------------------------------------------
def _item(data: dict[str, Any], authority: str | None) -> dict[str, Any]:
    if "invoice" in data:  # already {"authority": ..., "invoice": {...}}
        item = dict(data)
        if authority and not item.get("authority"):
            item["authority"] = authority
        return item
    return {"invoice": data, **({"authority": authority} if authority else {})}


def read_jsonl(path: Path, authority: str | None) -> list[dict[str, Any]]:
    items = []
    problems = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg})")
                continue
            if not isinstance(data, dict):
                problems.append(f"line {number}: a JSON object is expected")
                continue
            items.append(_item(data, authority))
    if problems:
        raise FileProblem(f"{path}: nothing sent, fix these lines first:\n  " + "\n  ".join(problems[:20]))
    return items


def _bool(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "oui", "vrai"):
        return True
    if lowered in ("false", "no", "0", "non", "faux"):
        return False
    return text  # the gateway will say why it is not a boolean


def read_csv(path: Path, authority: str | None) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if unknown or "number" not in header:
            raise FileProblem(
                f"{path}: "
                + (f"unknown columns {', '.join(unknown)}; " if unknown else "")
                + ("a `number` column is required; " if "number" not in header else "")
                + f"known columns: {', '.join(CSV_COLUMNS)}"
            )
        invoices: dict[str, dict[str, Any]] = {}
        authorities: dict[str, str | None] = {}
        for row in reader:
            cells = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            number = cells.get("number", "")
            if not number:
                raise FileProblem(f"{path}, line {reader.line_num}: the `number` cell is empty")
            invoice = invoices.get(number)
            if invoice is None:
                invoice = invoices[number] = {"lines": []}
                authorities[number] = cells.get("authority") or authority
                for column, where in CSV_INVOICE_COLUMNS.items():
                    value = cells.get(column)
                    if not value:
                        continue
                    if where == ("payments", "method"):
                        invoice["payments"] = [{"method": value}]
                    elif len(where) == 2:
                        invoice.setdefault(where[0], {})[where[1]] = value
                    else:
                        invoice[where[0]] = value
            line: dict[str, Any] = {}
            for column, where in CSV_LINE_COLUMNS.items():
                value = cells.get(column)
                if not value:
                    continue
                if where[0] == "discount":
                    line["discount"] = {"kind": where[1], "value": value}
                elif where[0] == "price_includes_tax":
                    line["price_includes_tax"] = _bool(value)
                else:
                    line[where[0]] = value
            if line:
                invoice["lines"].append(line)
    out = []
    for number, invoice in invoices.items():
        code = authorities[number]
        out.append({"invoice": invoice, **({"authority": code} if code else {})})
    return out


def read_items(path: Path, authority: str | None) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        return read_csv(path, authority)
    return read_jsonl(path, authority)


# --- state --------------------------------------------------------------------------------------
def state_path(path: Path) -> Path:
    return path.with_name(path.name + STATE_SUFFIX)


def _digest(items: Iterable[dict[str, Any]], *extra: Any) -> str:
    h = hashlib.sha256()
    for part in (*items, *extra):
        h.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def plan(items: list[dict[str, Any]], chunk: int, certify: bool) -> dict[str, Any]:
    chunks = []
    for index, start in enumerate(range(0, len(items), chunk)):
        part = items[start : start + chunk]
        chunks.append(
            {
                "index": index,
                "first": start,
                "count": len(part),
                # Derived from the content, so a rerun sends the same key for the same chunk.
                "idempotency_key": "certify-batch-" + _digest(part, index, certify)[:40],
                "batch_id": None,
            }
        )
    return {"version": 1, "digest": _digest(items, chunk, certify), "certify": certify, "chunks": chunks}


def save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(tmp, path)  # atomic: an interruption leaves the old state or the new, never half


def load_state(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    if not path.exists():
        return fresh
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        click.secho(f"ignoring the unreadable state file {path}", fg="yellow", err=True)
        return fresh
    if old.get("digest") != fresh["digest"]:
        click.secho(
            f"{path} describes another version of the file (or other options): starting over; invoices "
            "the gateway already holds are recognised by their number and not certified twice",
            fg="yellow",
            err=True,
        )
        return fresh
    return dict(old)


# --- talking to the gateway -----------------------------------------------------------------------
def _request(client: httpx.Client, method: str, url: str, *, attempts: int = 6, **kw: Any) -> httpx.Response:
    """One call, retried on what says "not now" (connection errors, 409 in progress, 429, 5xx)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            response = client.request(method, url, **kw)
        except httpx.TransportError as exc:
            if attempt == attempts - 1:
                raise click.ClickException(f"cannot reach the gateway: {exc}") from None
        else:
            if response.status_code not in (409, 429) and response.status_code < 500:
                return response
            if attempt == attempts - 1:
                return response
        time.sleep(delay)
        delay = min(delay * 2, 8)
    raise AssertionError("unreachable")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    text = f"HTTP {response.status_code} {body.get('code')}: {body.get('message')}"
    for p in body.get("problems") or []:
        text += f"\n  - {p.get('field')}: {p.get('message')}"
    return text


def send_chunk(
    client: httpx.Client, chunk: dict[str, Any], items: list[dict[str, Any]], certify: bool
) -> str:
    body = {"invoices": items, "approve": True, "certify": certify}
    response = _request(
        client, "POST", "/v1/invoices/batch", json=body, headers={"Idempotency-Key": chunk["idempotency_key"]}
    )
    if response.status_code != 201:
        raise click.ClickException(f"chunk {chunk['index'] + 1} was refused: {_error_text(response)}")
    batch_id: str = response.json()["id"]
    return batch_id


def fetch(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    response = _request(client, "GET", f"/v1/batches/{batch_id}")
    if response.status_code != 200:
        raise click.ClickException(f"cannot read batch {batch_id}: {_error_text(response)}")
    body: dict[str, Any] = response.json()
    return body


def _settled(batch: dict[str, Any]) -> int:
    c = batch["counts"]
    return int(c["refused"] + c["final"] + c["waiting_for_person"])


def follow(
    client: httpx.Client, batch_ids: list[str], total: int, poll: float, timeout: float | None
) -> list[dict[str, Any]]:
    """Poll every batch until done, with a progress bar of the invoices settled."""
    latest: dict[str, dict[str, Any]] = {}
    end = None if timeout is None else time.monotonic() + timeout
    with click.progressbar(length=total, label="certifying", show_pos=True, file=sys.stderr) as bar:
        shown = 0
        while True:
            for batch_id in batch_ids:
                if latest.get(batch_id, {}).get("status") != "done":
                    latest[batch_id] = fetch(client, batch_id)
            settled = sum(_settled(b) for b in latest.values())
            bar.update(settled - shown)
            shown = settled
            if all(b["status"] == "done" for b in latest.values()):
                break
            if end is not None and time.monotonic() > end:
                click.echo("", err=True)
                click.secho(
                    "stopped waiting (--timeout): run the same command again to follow up",
                    fg="yellow",
                    err=True,
                )
                break
            time.sleep(poll)
    return [latest[b] for b in batch_ids]


# --- the summary ----------------------------------------------------------------------------------
def summarise(batches: list[dict[str, Any]], certify: bool) -> bool:
    """Print the summary; True when every invoice got where it was sent (certified, or accepted)."""
    totals: dict[str, int] = {}
    attention: list[str] = []
    for batch in batches:
        for key, value in batch["counts"].items():
            totals[key] = totals.get(key, 0) + value
        for item in batch["items"]:
            label = f"#{item['position'] + 1 + batch.get('_first', 0)} {item.get('number') or '(no number)'}"
            error = item.get("error") or {}
            why = error.get("message") or item.get("status_detail") or ""
            problems = "; ".join(f"{p['field']}: {p['message']}" for p in error.get("problems") or [])
            if item["outcome"] == "refused":
                attention.append(f"{label}: refused: {problems or why}")
            elif certify and item.get("status") in ("rejected", "failed", "unknown"):
                attention.append(f"{label}: {item['status']}: {problems or why}")
            elif certify and item.get("status") not in ("certified", None):
                attention.append(f"{label}: still {item['status']}")
    click.echo(
        f"{totals.get('total', 0)} invoices: {totals.get('accepted', 0)} accepted, "
        f"{totals.get('refused', 0)} refused"
    )
    if certify:
        click.echo(
            f"  certified {totals.get('certified', 0)}, rejected {totals.get('rejected', 0)}, "
            f"failed {totals.get('failed', 0)}, unknown {totals.get('unknown', 0)} (reconcile), "
            f"in progress {totals.get('in_progress', 0)}"
        )
    for line in attention[:50]:
        click.echo(f"  {line}")
    if len(attention) > 50:
        click.echo(f"  ... and {len(attention) - 50} more (GET /v1/batches/<id> lists every one)")
    if certify:
        return totals.get("certified", 0) == totals.get("total", 0)
    return totals.get("accepted", 0) == totals.get("total", 0)


@click.command("certify-batch")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--url",
    envvar="FISCALGATE_URL",
    required=True,
    help="The gateway, e.g. http://127.0.0.1:8000 (env FISCALGATE_URL).",
)
@click.option(
    "--key", envvar="FISCALGATE_KEY", required=True, help="The tenant's API key (env FISCALGATE_KEY)."
)
@click.option(
    "-a",
    "--authority",
    default=None,
    help="For invoices that do not name theirs (else inferred by the gateway).",
)
@click.option(
    "--chunk", default=200, show_default=True, type=click.IntRange(1, MAX_CHUNK), help="Invoices per request."
)
@click.option(
    "--certify/--no-certify", default=True, show_default=True, help="Certify, or only create them approved."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the batches until every invoice is settled.",
)
@click.option("--poll", default=1.0, show_default=True, type=float, help="Seconds between progress reads.")
@click.option(
    "--timeout", default=None, type=float, help="Stop following after this many seconds (resume later)."
)
def certify_batch(
    file: Path,
    url: str,
    key: str,
    authority: str | None,
    chunk: int,
    certify: bool,
    wait: bool,
    poll: float,
    timeout: float | None,
) -> None:
    """Certify every invoice of FILE (JSON Lines, or CSV: see the README for its columns) through
    a running gateway. Interrupted? Run the same command again: it resumes from FILE.state.json.

    Exit codes: 0 every invoice certified (accepted with --no-certify), 1 some need attention (the
    summary lists them), 2 the file cannot be read (nothing sent)."""
    try:
        items = read_items(file, authority)
    except OSError as exc:
        raise FileProblem(f"cannot read {file}: {exc.strerror}") from None
    if not items:
        raise FileProblem(f"{file} holds no invoice")
    where = state_path(file)
    state = load_state(where, plan(items, chunk, certify))
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=300) as client:
            pending = [c for c in state["chunks"] if not c["batch_id"]]
            if len(pending) < len(state["chunks"]):
                click.echo(
                    f"resuming: {len(state['chunks']) - len(pending)} of {len(state['chunks'])} "
                    "chunks already sent",
                    err=True,
                )
            for c in pending:
                c["batch_id"] = send_chunk(client, c, items[c["first"] : c["first"] + c["count"]], certify)
                save_state(where, state)
                click.echo(
                    f"sent chunk {c['index'] + 1}/{len(state['chunks'])} ({c['count']} invoices): "
                    f"batch {c['batch_id']}",
                    err=True,
                )
            if not wait:
                click.echo(f"sent; follow up with the same command (state in {where})")
                return
            batch_ids = [c["batch_id"] for c in state["chunks"]]
            batches = follow(client, batch_ids, len(items), poll, timeout)
    except KeyboardInterrupt:
        click.secho(
            f"\ninterrupted: run the same command again to resume (state in {where})", fg="yellow", err=True
        )
        raise SystemExit(130) from None
    for c, batch in zip(state["chunks"], batches, strict=True):
        batch["_first"] = c["first"]
    ok = summarise(batches, certify)
    raise SystemExit(0 if ok else 1)
