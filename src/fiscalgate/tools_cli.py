"""`fiscalgate test-connection`, `fiscalgate info`, `fiscalgate report`: clients of a running
gateway (its `gateway/tools` routes), with the tenant's API key, like `certify-batch`.

Only httpx and click: this runs on an ERP's machine, without the gateway installed around it.

Exit codes (the same for the three): 0 done; 2 the gateway refused the request (settings missing
or invalid, no such capability, unknown authority / topic / invoice, invoice not certified, a bad
key); 3 the authority refused or failed (credentials refused, unreachable, its own refusal); 1 the
gateway cannot be reached or answered something unreadable.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
import httpx

_URL = click.option(
    "--url",
    envvar="FISCALGATE_URL",
    required=True,
    help="The gateway, e.g. http://127.0.0.1:8000 (env FISCALGATE_URL).",
)
_KEY = click.option(
    "--key", envvar="FISCALGATE_KEY", required=True, help="The tenant's API key (env FISCALGATE_KEY)."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the gateway's JSON answer as it is.")


def _call(url: str, key: str, method: str, path: str) -> dict[str, Any]:
    """One request; the answer's JSON on success, else the error printed and the exit code set."""
    try:
        with httpx.Client(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=330
        ) as c:
            response = c.request(method, path)
    except httpx.HTTPError as exc:
        _fail(1, f"cannot reach the gateway at {url}: {type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        _fail(1, f"the gateway answered HTTP {response.status_code} without JSON: {response.text[:300]}")
    if response.is_success and isinstance(body, dict):
        return body
    if not isinstance(body, dict):
        _fail(1, f"the gateway answered HTTP {response.status_code}: {str(body)[:300]}")
    _fail(_exit_code(response.status_code, body), _error_text(response.status_code, body))


def _exit_code(status: int, body: dict[str, Any]) -> int:
    if status >= 502 or body.get("authority_http_status") is not None:
        return 3
    return 2 if 400 <= status < 500 else 1


def _verdict(body: dict[str, Any]) -> str:
    kind = body.get("kind")
    if kind == "AuthorityAuthError":
        return "credentials refused by the authority"
    if kind == "AuthorityUnreachable":
        return "authority unreachable"
    if kind == "OutcomeUnknown":
        return "no answer from the authority"
    return "refused"


def _error_text(status: int, body: dict[str, Any]) -> str:
    text = f"{_verdict(body)}: HTTP {status} {body.get('code')}: {body.get('message')}"
    said = [str(v) for v in (body.get("authority_code"), body.get("authority_message")) if v]
    if said or body.get("authority_http_status") is not None:
        text += f"\n  {body.get('authority') or 'authority'} answered"
        if body.get("authority_http_status") is not None:
            text += f" HTTP {body['authority_http_status']}"
        if said:
            text += ": " + " — ".join(said)
    for p in body.get("problems") or []:
        text += f"\n  - {p.get('field')}: {p.get('message')}"
        if p.get("expected") is not None:
            text += f" [expected {p['expected']}]"
    return text


def _fail(code: int, message: str) -> NoReturn:
    click.secho(message, fg="red", err=True)
    sys.exit(code)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


@click.command("test-connection")
@click.argument("authority")
@_URL
@_KEY
@_JSON
def test_connection(authority: str, url: str, key: str, as_json: bool) -> None:
    """Test the tenant's saved AUTHORITY settings with the authority's one harmless call (nothing
    is certified); the call is in the gateway's audit log. Exit 0 ok, 3 credentials refused or
    authority unreachable, 2 no usable settings or no harmless call on that platform."""
    body = _call(url, key, "POST", f"/v1/settings/{authority}/test")
    if as_json:
        click.echo(_dump(body))
        return
    click.secho(f"ok: {body['summary']}", fg="green")
    click.echo(f"  {body['authority']} ({body['environment']}), {body['call']}, {body.get('duration_ms')} ms")


@click.command("info")
@click.argument("authority")
@click.argument("topic", required=False)
@_URL
@_KEY
@_JSON
def info(authority: str, topic: str | None, url: str, key: str, as_json: bool) -> None:
    """What AUTHORITY publishes (e-MECeF's information API), read with the tenant's credentials:
    every topic, or only TOPIC (e.g. taxGroups). Exit 2 for an authority without information or
    an unknown topic, 3 when the authority refuses the credentials or cannot be reached."""
    path = f"/v1/authorities/{authority}/info" + (f"/{topic}" if topic else "")
    body = _call(url, key, "GET", path)
    if as_json:
        click.echo(_dump(body))
        return
    for item in body["items"] if topic is None else [body]:
        click.secho(f"{item['topic']}: {item['title']}  ({item['call']})", bold=True)
        click.echo(_dump(item["data"]))


@click.command("report")
@click.argument("invoice_id")
@_URL
@_KEY
@_JSON
def report(invoice_id: str, url: str, key: str, as_json: bool) -> None:
    """Declare the certified invoice INVOICE_ID (the gateway's id) to its authority's report
    endpoint (SFEC). Exit 2 when it is not certified or its authority has no report, 3 when the
    authority refuses it (already reported: its own 409)."""
    body = _call(url, key, "POST", f"/v1/invoices/{invoice_id}/report")
    if as_json:
        click.echo(_dump(body))
        return
    ack = body["acknowledgement"]
    click.secho(f"reported: {body['authority']} acknowledged {ack.get('reference')}", fg="green")
    click.echo(f"  {body['call']} ({body['environment']}), certified at {ack.get('certified_at')}")


COMMANDS = (test_connection, info, report)
