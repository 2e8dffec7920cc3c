"""The printed invoice: PDF (A4, 80 mm and 58 mm receipts) with the authority's QR code and mentions.

`render_invoice_pdf(invoice, certification, ...)` is the one entry point; see README.md here.
"""

from fiscalgate.printing.block import AuthorityBlock, QrPicture, QrText, TaxRow
from fiscalgate.printing.labels import LANGS, Lang
from fiscalgate.printing.render import LAYOUTS, Layout, SellerIdentity, authority_printing, render_invoice_pdf

__all__ = [
    "LANGS",
    "LAYOUTS",
    "AuthorityBlock",
    "Lang",
    "Layout",
    "QrPicture",
    "QrText",
    "SellerIdentity",
    "TaxRow",
    "authority_printing",
    "render_invoice_pdf",
]
