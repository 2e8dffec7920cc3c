"""The renderer's own words, in French (the legal language) and English (`lang=en`).

Only the generic labels are translated. What the authority or the law asks to print (titles,
security elements, mentions) stays in French whatever `lang` is: it comes from each authority's
printing.py.
"""

from __future__ import annotations

from typing import Literal

from fiscalgate.core.invoice import InvoiceKind, PaymentMethod

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "colon": " :",  # French typography: a space before the colon
        "seller": "Vendeur",
        "buyer": "Client",
        "number": "Facture nº",
        "date": "Date",
        "due_date": "Échéance",
        "operator": "Opérateur",
        "point_of_sale": "Point de vente",
        "establishment": "Établissement",
        "subject": "Objet",
        "rccm": "RCCM",
        "tax_id": "Nº contribuable",
        "phone": "Tél.",
        "email": "E-mail",
        "col_no": "#",
        "col_ref": "Réf.",
        "col_description": "Désignation",
        "col_quantity": "Qté",
        "col_unit_price": "P.U.",
        "col_discount": "Remise",
        "col_amount": "Montant",
        "ht": "HT",
        "ttc": "TTC",
        "global_discount": "Remise globale",
        "totals": "Totaux (tels que certifiés par l'autorité)",
        "tax_breakdown": "Ventilation des taxes",
        "col_group": "Groupe",
        "col_base": "Base HT",
        "col_tax": "Taxe",
        "col_total": "Total TTC",
        "payments": "Paiement",
        "credit_note_of": "Avoir sur la facture",
        "certified_by": "Certifiée par",
        "page": "Page",
        "duplicate": "DUPLICATA",
        "printed_at": "imprimé le",
        "proforma_banner": "PRO FORMA — FACTURE NON CERTIFIÉE",
        "proforma_note": "Document non certifié par l'administration fiscale : il ne porte ni référence "
        "officielle ni QR code et ne vaut pas facture normalisée.",
        "proforma_totals": "Les totaux officiels (taxes comprises) sont ceux que l'autorité fiscale "
        "renverra à la certification.",
        "not_certified": "non certifiée",
        "notes": "Notes",
    },
    "en": {
        "colon": ":",
        "seller": "Seller",
        "buyer": "Customer",
        "number": "Invoice no.",
        "date": "Date",
        "due_date": "Due date",
        "operator": "Operator",
        "point_of_sale": "Point of sale",
        "establishment": "Establishment",
        "subject": "Subject",
        "rccm": "RCCM",
        "tax_id": "Taxpayer no.",
        "phone": "Phone",
        "email": "E-mail",
        "col_no": "#",
        "col_ref": "Ref.",
        "col_description": "Description",
        "col_quantity": "Qty",
        "col_unit_price": "Unit price",
        "col_discount": "Discount",
        "col_amount": "Amount",
        "ht": "excl. tax",
        "ttc": "incl. tax",
        "global_discount": "Invoice discount",
        "totals": "Totals (as certified by the authority)",
        "tax_breakdown": "Tax breakdown",
        "col_group": "Group",
        "col_base": "Taxable base",
        "col_tax": "Tax",
        "col_total": "Total incl. tax",
        "payments": "Payment",
        "credit_note_of": "Credit note on invoice",
        "certified_by": "Certified by",
        "page": "Page",
        "duplicate": "DUPLICATA (COPY)",
        "printed_at": "printed on",
        "proforma_banner": "PRO FORMA — NOT CERTIFIED (NON CERTIFIÉE)",
        "proforma_note": "Not certified by the tax administration: this document carries no official "
        "reference and no QR code, and is not a standardised invoice.",
        "proforma_totals": "The official totals (taxes included) are the ones the tax authority returns "
        "on certification.",
        "not_certified": "not certified",
        "notes": "Notes",
    },
}

PROFORMA_TITLES: dict[Lang, dict[InvoiceKind, str]] = {
    "fr": {
        InvoiceKind.SALE: "FACTURE PRO FORMA",
        InvoiceKind.CREDIT_NOTE: "AVOIR PRO FORMA",
        InvoiceKind.PURCHASE: "BORDEREAU D'ACHAT PRO FORMA",
    },
    "en": {
        InvoiceKind.SALE: "PRO FORMA INVOICE",
        InvoiceKind.CREDIT_NOTE: "PRO FORMA CREDIT NOTE",
        InvoiceKind.PURCHASE: "PRO FORMA PURCHASE SLIP",
    },
}

# Under the authority's French title when lang=en.
KIND_IN_ENGLISH: dict[InvoiceKind, str] = {
    InvoiceKind.SALE: "Sales invoice",
    InvoiceKind.CREDIT_NOTE: "Credit note",
    InvoiceKind.PURCHASE: "Purchase slip",
}

PAYMENT_METHODS: dict[Lang, dict[PaymentMethod, str]] = {
    "fr": {
        PaymentMethod.CASH: "Espèces",
        PaymentMethod.CARD: "Carte bancaire",
        PaymentMethod.CHECK: "Chèque",
        PaymentMethod.MOBILE_MONEY: "Mobile money",
        PaymentMethod.TRANSFER: "Virement",
        PaymentMethod.DEFERRED: "À terme (crédit)",
        PaymentMethod.OTHER: "Autre",
    },
    "en": {
        PaymentMethod.CASH: "Cash",
        PaymentMethod.CARD: "Card",
        PaymentMethod.CHECK: "Cheque",
        PaymentMethod.MOBILE_MONEY: "Mobile money",
        PaymentMethod.TRANSFER: "Bank transfer",
        PaymentMethod.DEFERRED: "Deferred (on credit)",
        PaymentMethod.OTHER: "Other",
    },
}
