"""The e-MCF's tax computation (spec §8): what the platform must answer for a request, computed on
our side and compared with its answer before anything is confirmed. The rounding rule is
regime.round_franc (see regime.py for why halves go up)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from fiscalgate.authorities.bj_emecef.regime import (
    AIB_RATES,
    GROUP_RATES,
    VAT_GROUPS,
    Aib,
    TaxGroup,
    round_franc,
)


@dataclass(frozen=True)
class EngineLine:
    """What the computation needs from one item: TTC unit price, quantity, group, specific tax
    (an amount for the whole line, excluding VAT)."""

    price: Decimal
    quantity: Decimal
    group: TaxGroup
    tax_specific: Decimal = Decimal(0)


def compute_totals(lines: Iterable[EngineLine], aib: Aib | None) -> dict[str, Decimal]:
    """The e-MCF's totals for these items (spec §8, which reproduces the 20 DGI test cases):

    1. T_g = Σ price x quantity + Σ taxSpecific x (100 + r_g)/100 over the lines of group g,
       rounded once per group (the spec rounds the group sum, not each line: §15.2 is open);
    2. B and D: HT_g = round(T_g x 100/(100 + r_g)), VAT_g = T_g - HT_g (VAT is the remainder);
    3. ts = Σ taxSpecific; 4. aib = round(ΣHT x rate/100) with ΣHT = Σ T_g - vab - vad;
    5. total = Σ T_g + aib.
    """
    raw: dict[TaxGroup, Decimal] = dict.fromkeys(TaxGroup, Decimal(0))
    specific = Decimal(0)
    for line in lines:
        rate = GROUP_RATES[line.group]
        raw[line.group] += line.price * line.quantity + line.tax_specific * (100 + rate) / 100
        specific += line.tax_specific
    group_total = {g: round_franc(v) for g, v in raw.items()}
    out: dict[str, Decimal] = {
        "ta": GROUP_RATES[TaxGroup.A],
        "tb": GROUP_RATES[TaxGroup.B],
        "tc": GROUP_RATES[TaxGroup.C],
        "td": GROUP_RATES[TaxGroup.D],
    }
    for g in TaxGroup:
        out[f"ta{g.value.lower()}"] = group_total[g]
    for g in VAT_GROUPS:
        ht = round_franc(group_total[g] * 100 / (100 + GROUP_RATES[g]))
        out[f"ha{g.value.lower()}"] = ht
        out[f"va{g.value.lower()}"] = group_total[g] - ht
    all_groups = sum(group_total.values(), Decimal(0))
    total_ht = all_groups - out["vab"] - out["vad"]
    out["aib"] = round_franc(total_ht * AIB_RATES[aib] / 100) if aib is not None else Decimal(0)
    out["ts"] = specific
    out["total"] = all_groups + out["aib"]
    return out


def neutral_totals(totals: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The neutral keys every Certification carries, from e-MCF totals. `total_tax` is VAT (B, D)
    plus AIB, so that total_excl_tax + total_tax == total; the specific tax stays in the HT, as the
    e-MCF's own AIB base does (§8.5)."""
    vat = totals["vab"] + totals["vad"]
    return {
        "total_excl_tax": totals["total"] - totals["aib"] - vat,
        "total_vat": vat,
        "total_tax": vat + totals["aib"],
        "total": totals["total"],
    }
