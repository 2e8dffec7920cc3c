"""Reading a rendered PDF back: its text (pypdf) and the QR codes a camera would see (pypdfium2 +
zxing-cpp), so the tests check what is on the page, not what the renderer meant to draw."""

from __future__ import annotations

import base64
import io
import re

import pypdfium2 as pdfium
import zxingcpp
from PIL import Image
from pypdf import PdfReader


def normalised(text: str) -> str:
    """Whitespace (line breaks from wrapping, no-break spaces) collapsed to single spaces."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def page_texts(pdf: bytes) -> list[str]:
    return [normalised(page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages]


def all_text(pdf: bytes) -> str:
    return " ".join(page_texts(pdf))


def page_images(pdf: bytes, dpi: int = 150, pages: slice = slice(None)) -> list[Image.Image]:
    doc = pdfium.PdfDocument(pdf)
    try:
        chosen = range(len(doc))[pages]
        return [doc[i].render(scale=dpi / 72).to_pil().convert("L") for i in chosen]
    finally:
        doc.close()


def qr_texts(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def qr_codes_per_page(pdf: bytes, dpi: int = 150, pages: slice = slice(None)) -> list[list[str]]:
    return [qr_texts(image) for image in page_images(pdf, dpi, pages)]


def qr_of_data_uri(uri: str) -> str:
    """What the authority's own QR picture encodes (SFEC), read the same way."""
    png = base64.b64decode(uri.partition(",")[2])
    texts = qr_texts(Image.open(io.BytesIO(png)).convert("L"))
    assert len(texts) == 1, texts
    return texts[0]
