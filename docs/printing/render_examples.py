"""Render the example pages shown in the README: each authority's example invoice, certified by its
in-process simulator (mock), in every layout, as small PNGs in this folder.

    .venv/bin/python docs/printing/render_examples.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from fiscalgate import authorities
from fiscalgate.authorities.base import Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import parse_invoice
from fiscalgate.printing import LAYOUTS, SellerIdentity, render_invoice_pdf

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "src" / "fiscalgate" / "authorities"
INVOICES = {
    "ci-fne": "ci_fne/examples/b2b_invoice.json",
    "bj-emecef": "bj_emecef/examples/fv_with_aib.json",
    "cg-sfec": "cg_sfec/examples/invoice.json",
}
DPI = {"a4": 96, "receipt": 150, "receipt58": 150}


def logo() -> bytes:
    image = Image.new("RGB", (240, 90), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 236, 86), radius=18, fill=(16, 86, 140))
    draw.text((120, 45), "ACME", fill="white", anchor="mm", font_size=44)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def certify(code: str, data: dict[str, Any]) -> Certification:
    driver = authorities.get_driver(code)
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    connection = Connection(
        base_url=driver.base_url(settings),
        environment=settings.environment,
        transport=httpx.ASGITransport(app=driver.mock_app(settings)),
        timeout=30,
    )
    return await driver.certify(parse_invoice(data), settings, connection)


def png(pdf: bytes, dpi: int) -> bytes:
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        doc.close()
    out = io.BytesIO()
    # 24 colours keep text and QR crisp at a fraction of the size.
    image.quantize(24).save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> None:
    mark = logo()
    for code, path in INVOICES.items():
        data = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))
        invoice = parse_invoice(data)
        cert = anyio.run(certify, code, data)
        seller = SellerIdentity(logo=mark)  # name and ids from the invoice; a logo from a profile
        for layout in LAYOUTS:
            pdf = render_invoice_pdf(invoice, cert, seller=seller, layout=layout)
            target = HERE / f"{code}-{layout}.png"
            target.write_bytes(png(pdf, DPI[layout]))
            print(f"{target.name}: {target.stat().st_size // 1024} KiB")
        if code == "ci-fne":
            pro = render_invoice_pdf(invoice, None, authority=code, seller=seller)
            (HERE / "pro-forma-a4.png").write_bytes(png(pro, DPI["a4"]))
            copy = render_invoice_pdf(
                invoice, cert, seller=seller, layout="receipt", lang="en", duplicate=True
            )
            (HERE / "duplicata-receipt-en.png").write_bytes(png(copy, DPI["receipt"]))


if __name__ == "__main__":
    main()
