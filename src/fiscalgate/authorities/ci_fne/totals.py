"""The FNE totals (spec §8.5): the cascade the platform applies, computed on unrounded bases and
rounded to the franc, halves up. convert.py builds requests with it; the simulator computes the same
rule on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.schemas import SignRequest


@dataclass(frozen=True)
class TotalsLine:
    quantity: Decimal
    unit_price: Decimal  # HT
    discount: Decimal = Decimal(0)  # %
    vat_code: str | None = None  # None on a purchase slip
    custom_taxes: tuple[tuple[str, Decimal], ...] = ()  # (name, rate %)


@dataclass(frozen=True)
class FneTotals:
    total_excl_tax: Decimal  # net HT after line and global discounts
    vat: Decimal
    total_incl_vat: Decimal  # what the API calls `amount` (HT + VAT)
    other_taxes: Decimal  # custom taxes ("AUTRES TAXES" on the PDF)
    total_to_pay: Decimal  # TTC + other taxes ("TOTAL A PAYER")
    vat_by_code: dict[str, Decimal] = field(default_factory=dict)
    other_by_tax: dict[str, Decimal] = field(default_factory=dict)  # "NAME rate%" -> amount

    def as_dict(self) -> dict[str, Decimal]:
        return {
            "total_excl_tax": self.total_excl_tax,
            "total_tax": self.vat + self.other_taxes,
            "total": self.total_to_pay,
            "vat": self.vat,
            "total_incl_vat": self.total_incl_vat,
            "other_taxes": self.other_taxes,
            "total_to_pay": self.total_to_pay,
        }


def compute_totals(
    lines: Sequence[TotalsLine],
    global_discount: Decimal = Decimal(0),
    invoice_custom_taxes: Sequence[tuple[str, Decimal]] = (),
) -> FneTotals:
    """The FNE cascade (spec §8.5): line HT = qty x price x (1 - line%), net HT = sum x (1 - global%).

    Each tax is computed on unrounded bases grouped per code (VAT) or per name and rate (custom taxes)
    and rounded to the franc, halves up, as the PDF's per-category summary shows. Invoice-level custom
    taxes apply to the whole net HT, line-level ones to that line's net HT.
    """
    with localcontext() as ctx:
        ctx.prec = 80  # exact for any realistic invoice: no intermediate rounding
        keep = 1 - global_discount / regime.HUNDRED
        vat_bases: dict[str, Decimal] = {}
        other_bases: dict[tuple[str, Decimal], Decimal] = {}
        net = Decimal(0)
        for line in lines:
            base = line.quantity * line.unit_price * (1 - line.discount / regime.HUNDRED) * keep
            net += base
            if line.vat_code is not None:
                vat_bases[line.vat_code] = vat_bases.get(line.vat_code, Decimal(0)) + base
            for name, rate in line.custom_taxes:
                key = (name, plain_number(rate))
                other_bases[key] = other_bases.get(key, Decimal(0)) + base
        for name, rate in invoice_custom_taxes:
            key = (name, plain_number(rate))
            other_bases[key] = other_bases.get(key, Decimal(0)) + net
        vat_by_code = {
            code: regime.round_franc(base * regime.VAT_RATES[code] / regime.HUNDRED)
            for code, base in sorted(vat_bases.items())
        }
        other_by_tax = {
            f"{name} {rate}%": regime.round_franc(base * rate / regime.HUNDRED)
            for (name, rate), base in sorted(other_bases.items())
        }
        total_excl_tax = regime.round_franc(net)
        vat = sum(vat_by_code.values(), Decimal(0))
        other = sum(other_by_tax.values(), Decimal(0))
    return FneTotals(
        total_excl_tax=total_excl_tax,
        vat=vat,
        total_incl_vat=total_excl_tax + vat,
        other_taxes=other,
        total_to_pay=total_excl_tax + vat + other,
        vat_by_code=vat_by_code,
        other_by_tax=other_by_tax,
    )


def totals_of_request(request: SignRequest) -> FneTotals:
    lines = [
        TotalsLine(
            quantity=item.quantity,
            unit_price=item.amount,
            discount=item.discount or Decimal(0),
            vat_code=item.taxes[0] if item.taxes else None,
            custom_taxes=tuple((t.name, t.amount) for t in item.custom_taxes or ()),
        )
        for item in request.items
    ]
    return compute_totals(
        lines, request.discount or Decimal(0), [(t.name, t.amount) for t in request.custom_taxes or ()]
    )


def plain_number(value: Decimal) -> Decimal:
    """Without trailing zeros, and without an exponent: 10.00 -> 10, not 1E+1 (stored as text)."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


__all__ = ["FneTotals", "TotalsLine", "compute_totals", "plain_number", "totals_of_request"]
