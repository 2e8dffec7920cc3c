"""SFEC totals: the builder (neutral amounts -> every amount the payload carries) and the
validator (a payload built anywhere -> every inconsistency, with field path and expected value).

Rules: spec §5 (lines 1-5, invoice 6-14), pure functions on Decimal.

Rounding (spec §5 "Rounding"; decision): every product (unit price x quantity, a percentage
discount, a line's VAT, the centimes additionnels) is rounded half-up to the currency's unit -
whole francs for XAF, cents for USD - and every total is the exact sum of rounded line amounts,
never recomputed from the header.

The validator accepts amounts written with up to 2 decimals (the seed's own example has
2390.4 XAF): a product must equal its exact value rounded half-up to the decimals it is written
with (at least the currency's), a sum must be exact. No other tolerance (T-CONNECTOR allows 1 XAF;
a builder that sums rounded lines never needs it, and a tolerance would hide real mistakes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from fiscalgate.authorities.cg_sfec import regime
from fiscalgate.core.errors import Problem
from fiscalgate.core.money import round_to, wire_number

ZERO = Decimal(0)
HUNDRED = Decimal(100)

DiscountType = Literal["fixed", "percentage"]


@dataclass(frozen=True)
class LineInput:
    """What defines a line: HT unit price, quantity, SFEC rate and its own discount."""

    unit_price: Decimal
    quantity: Decimal
    rate: str  # "18" | "5" | "0"
    discount_type: DiscountType = "fixed"
    discount_value: Decimal = ZERO  # an amount (fixed) or a percentage (percentage)


@dataclass(frozen=True)
class LineAmounts:
    unit_price: Decimal
    quantity: Decimal
    rate: str
    discount_type: DiscountType
    discount_value: Decimal  # what goes in the line's `discount_amount`
    subtotal: Decimal
    discount: Decimal  # resolved amount of money
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class Totals:
    currency: str
    lines: tuple[LineAmounts, ...]
    subtotal: Decimal
    total_tax_t: Decimal
    total_tax_r: Decimal
    total_exempt: Decimal
    total_tax: Decimal
    discount: Decimal  # invoice-level `discount_amount`: always 0, pushed into the lines
    total_line_discount: Decimal
    additional_cent_tax: Decimal
    electronic_stamp_duty: Decimal
    total: Decimal
    amount_due: Decimal

    def header(self) -> dict[str, Decimal]:
        """The invoice-level amounts under their wire names."""
        return {
            "subtotal": self.subtotal,
            "total_tax_t_amount": self.total_tax_t,
            "total_tax_r_amount": self.total_tax_r,
            "total_exempt_amount": self.total_exempt,
            "total_tax_amount": self.total_tax,
            "discount_amount": self.discount,
            "total_line_discount_amount": self.total_line_discount,
            "additional_cent_tax": self.additional_cent_tax,
            "electronic_stamp_duty": self.electronic_stamp_duty,
            "total_amount": self.total,
            "amount_due": self.amount_due,
        }


def line_amounts(line: LineInput, currency: str) -> LineAmounts:
    """Spec §5 rules 1-5 for one line."""
    subtotal = regime.round_amount(line.unit_price * line.quantity, currency)
    if line.discount_type == "percentage":
        # the net is what gets rounded (so a half-unit discount rounds the same way the
        # platform's check does: round(subtotal - subtotal x % / 100))
        percent = min(max(line.discount_value, ZERO), HUNDRED)
        net = regime.round_amount(subtotal - subtotal * percent / HUNDRED, currency)
    else:
        # clamp to [0, subtotal] (rule 2), in whole units of the currency like every other amount
        net = subtotal - regime.round_amount(min(max(line.discount_value, ZERO), subtotal), currency)
    discount = subtotal - net
    tax = regime.round_amount(net * regime.RATES[line.rate] / HUNDRED, currency)
    return LineAmounts(
        unit_price=line.unit_price,
        quantity=line.quantity,
        rate=line.rate,
        discount_type=line.discount_type,
        discount_value=line.discount_value if line.discount_type == "percentage" else discount,
        subtotal=subtotal,
        discount=discount,
        net=net,
        tax=tax,
        total=net + tax,
    )


def push_down_discount(lines: Sequence[LineInput], amount: Decimal, currency: str) -> list[LineInput]:
    """Spread an invoice-level discount over the lines in proportion to their net amounts
    (spec §5.13: VAT must be computed after it, and SFEC's own treatment of a global
    `discount_amount` is unknown). Each line gets a fixed discount = its own + its share; the
    rounding remainder goes to the largest line so the shares add up exactly."""
    computed = [line_amounts(line, currency) for line in lines]
    base = sum((c.net for c in computed), ZERO)
    amount = regime.round_amount(min(max(amount, ZERO), base), currency)
    if amount == ZERO or base == ZERO:
        return list(lines)
    shares = [regime.round_amount(amount * c.net / base, currency) for c in computed]
    largest = max(range(len(computed)), key=lambda i: computed[i].net)
    shares[largest] += amount - sum(shares, ZERO)
    return [
        LineInput(line.unit_price, line.quantity, line.rate, "fixed", c.discount + share)
        for line, c, share in zip(lines, computed, shares, strict=True)
    ]


def build_totals(
    lines: Sequence[LineInput],
    currency: str,
    *,
    paid: Decimal = ZERO,
    additional_cent_tax: Literal["computed", "zero"] = "computed",
) -> Totals:
    """Spec §5 rules 6-14 from the lines."""
    amounts = tuple(line_amounts(line, currency) for line in lines)

    def total_of(values: Sequence[Decimal]) -> Decimal:
        return sum(values, ZERO)

    subtotal = total_of([a.net for a in amounts])
    tax_t = total_of([a.tax for a in amounts if a.rate == regime.RATE_NORMAL])
    tax_r = total_of([a.tax for a in amounts if a.rate == regime.RATE_REDUCED])
    exempt = total_of([a.net for a in amounts if a.rate == regime.RATE_EXEMPT])
    total_tax = tax_t + tax_r
    cac = (
        regime.round_amount(total_tax * regime.ADDITIONAL_CENT_RATE / HUNDRED, currency)
        if additional_cent_tax == "computed"
        else ZERO
    )
    stamp = ZERO  # SFEC/ARPCE adds the stamp itself (spec §5.12)
    total = subtotal + total_tax + cac + stamp
    return Totals(
        currency=currency,
        lines=amounts,
        subtotal=subtotal,
        total_tax_t=tax_t,
        total_tax_r=tax_r,
        total_exempt=exempt,
        total_tax=total_tax,
        discount=ZERO,
        total_line_discount=total_of([a.discount for a in amounts]),
        additional_cent_tax=cac,
        electronic_stamp_duty=stamp,
        total=total,
        amount_due=max(total - paid, ZERO),
    )


# --- the validator ------------------------------------------------------------------------------
def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _fmt(value: Decimal) -> str:
    return str(wire_number(value))


class _Checker:
    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload
        self.problems: list[Problem] = []
        currency = payload.get("currency")
        self.unit = regime.decimals_for(currency) if isinstance(currency, str) else 0

    def add(self, path: str, rule: str, message: str, expected: Decimal | str | None = None) -> None:
        shown = _fmt(expected) if isinstance(expected, Decimal) else expected
        self.problems.append(Problem(field=path, rule=rule, message=message, expected=shown))

    def number(self, data: Mapping[str, Any], key: str, path: str, *, amount: bool = True) -> Decimal | None:
        raw = data.get(key)
        if raw is None:
            self.add(path, "required", "is required")
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            self.add(path, "type", f"must be a number, got {type(raw).__name__}")
            return None
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(repr(raw) if isinstance(raw, float) else raw)
        except InvalidOperation:
            self.add(path, "type", f"must be a number, got {raw!r}")
            return None
        if not value.is_finite():
            self.add(path, "type", "must be a finite number")
            return None
        if value < 0:
            self.add(path, "negative", "must not be negative")
        if amount and _decimals(value) > regime.MAX_AMOUNT_DECIMALS:
            self.add(path, "decimals", f"at most {regime.MAX_AMOUNT_DECIMALS} decimals")
        return value

    def precision(self, declared: Decimal) -> int:
        return min(max(self.unit, _decimals(declared)), 6)

    def product(self, path: str, rule: str, declared: Decimal, exact: Decimal, how: str) -> Decimal:
        """A product, rounded half-up to the precision it is written with; returns the expected."""
        expected = round_to(exact, self.precision(declared), ROUND_HALF_UP)
        if declared != expected:
            self.add(path, rule, f"must be {how} = {_fmt(expected)}, got {_fmt(declared)}", expected)
        return expected

    def exact(self, path: str, rule: str, declared: Decimal, expected: Decimal, how: str) -> Decimal:
        if declared != expected:
            self.add(path, rule, f"must be {how} = {_fmt(expected)}, got {_fmt(declared)}", expected)
        return expected


def check_totals(payload: Mapping[str, Any], *, paid: Decimal | None = None) -> list[Problem]:
    """Every amount inconsistency in an SFEC payload (spec §5), each with its field path and the
    expected value. Every amount is compared with the value recomputed from the line inputs
    (unit price, quantity, line discount, rate), so one wrong amount is reported once, under its
    own name, with the value it should have. `paid`: amounts already paid, when known, to check
    `amount_due` exactly (otherwise only 0 <= amount_due <= total_amount)."""
    c = _Checker(payload)
    items = payload.get("items")
    if not isinstance(items, list) or not items:
        c.add("items", "required", "at least one item is required")
        items = []
    nets: dict[str, Decimal] = {r: ZERO for r in regime.RATES}
    taxes: dict[str, Decimal] = {r: ZERO for r in regime.RATES}
    line_discounts = ZERO
    complete = bool(items)
    for i, item in enumerate(items):
        p = f"items[{i}]"
        if not isinstance(item, Mapping):
            c.add(p, "type", "must be an object")
            complete = False
            continue
        price = c.number(item, "unit_price", f"{p}.unit_price", amount=False)
        quantity = c.number(item, "quantity", f"{p}.quantity", amount=False)
        declared = {k: c.number(item, k, f"{p}.{k}") for k in _LINE_AMOUNTS}
        rate = item.get("tax_rate")
        rate_key = str(rate).strip() if isinstance(rate, str | int) and not isinstance(rate, bool) else None
        if rate_key not in regime.RATES:
            c.add(f"{p}.tax_rate", "tax_rate", "must be one of the SFEC rates '18', '5', '0'")
        if quantity is not None and quantity <= 0:
            c.add(f"{p}.quantity", "positive", "must be greater than 0")
        kind = item.get("discount_type")
        if kind not in ("fixed", "percentage") and not (kind is None and declared["discount_amount"] == 0):
            c.add(f"{p}.discount_type", "discount_type", "must be 'fixed' or 'percentage'")
        if price is None or quantity is None or rate_key not in regime.RATES or None in declared.values():
            complete = False
            continue
        sub_d, disc_d, net_d, tax_d, tot_d = (declared[k] or ZERO for k in _LINE_AMOUNTS)
        sub = c.product(f"{p}.subtotal", "line_subtotal", sub_d, price * quantity, "unit_price × quantity")
        net_exact = sub - disc_d
        if kind == "percentage":
            # The doc is silent on whether `discount_amount` carries the percentage or the resolved
            # amount (spec §5.2); both are read, the one that agrees with `net_amount` wins.
            as_percent = round_to(sub - sub * disc_d / HUNDRED, c.precision(net_d), ROUND_HALF_UP)
            if disc_d <= HUNDRED and (as_percent == net_d or sub - disc_d != net_d):
                net_exact = sub - sub * disc_d / HUNDRED
            how = "subtotal − discount"
        else:
            how = "subtotal − discount_amount"
        if net_exact < 0:
            c.add(
                f"{p}.discount_amount", "discount_exceeds", f"must not exceed the subtotal {_fmt(sub)}", sub
            )
            net_exact = ZERO
        net = c.product(f"{p}.net_amount", "line_net", net_d, net_exact, how)
        if item.get("amount_after_discount") is not None:  # another name for the net (spec §3)
            after = c.number(item, "amount_after_discount", f"{p}.amount_after_discount")
            if after is not None:
                c.exact(f"{p}.amount_after_discount", "line_net", after, net, "net_amount")
        rate_value = regime.RATES[rate_key]
        tax = c.product(
            f"{p}.tax_amount", "line_tax", tax_d, net * rate_value / HUNDRED, f"net_amount × {rate_key} %"
        )
        c.exact(f"{p}.total_amount", "line_total", tot_d, net + tax, "net_amount + tax_amount")
        nets[rate_key] += net
        taxes[rate_key] += tax
        line_discounts += sub - net
    header = {k: c.number(payload, k, k) for k in _HEADER_AMOUNTS}
    if not complete or None in header.values():
        return c.problems  # amounts are missing or unreadable: recomputing would only add noise
    h = {k: v or ZERO for k, v in header.items()}
    subtotal = c.exact("subtotal", "subtotal", h["subtotal"], sum(nets.values(), ZERO), "Σ items.net_amount")
    tax_t = c.exact(
        "total_tax_t_amount", "tax_t", h["total_tax_t_amount"], taxes["18"], "Σ tax_amount of the 18 % items"
    )
    tax_r = c.exact(
        "total_tax_r_amount", "tax_r", h["total_tax_r_amount"], taxes["5"], "Σ tax_amount of the 5 % items"
    )
    c.exact(
        "total_exempt_amount", "exempt", h["total_exempt_amount"], nets["0"], "Σ net_amount of the 0 % items"
    )
    total_tax = c.exact(
        "total_tax_amount", "total_tax", h["total_tax_amount"], tax_t + tax_r, "total_tax_t + total_tax_r"
    )
    c.exact(
        "total_line_discount_amount",
        "line_discounts",
        h["total_line_discount_amount"],
        line_discounts,
        "Σ (items.subtotal − items.net_amount)",
    )
    discount = h["discount_amount"]
    if discount > subtotal:
        c.add(
            "discount_amount", "discount_exceeds", f"must not exceed the subtotal {_fmt(subtotal)}", subtotal
        )
    cac_d = h["additional_cent_tax"]
    cac = ZERO
    if cac_d != 0:  # 0 = left for SFEC to compute (what most implementers send, spec §5.11)
        cac = c.product(
            "additional_cent_tax",
            "additional_cent_tax",
            cac_d,
            total_tax * regime.ADDITIONAL_CENT_RATE / HUNDRED,
            "0 or 5 % × total_tax_amount",
        )
    stamp = c.exact(
        "electronic_stamp_duty", "stamp_duty", h["electronic_stamp_duty"], ZERO, "0 (SFEC adds the stamp)"
    )
    total = c.exact(
        "total_amount",
        "total",
        h["total_amount"],
        subtotal - discount + total_tax + cac + stamp,
        "subtotal − discount_amount + total_tax_amount + additional_cent_tax + electronic_stamp_duty",
    )
    due = h["amount_due"]
    if paid is not None:
        c.exact(
            "amount_due", "amount_due", due, max(total - paid, ZERO), f"total_amount − paid ({_fmt(paid)})"
        )
    elif due > total:
        c.add("amount_due", "amount_due", f"must not exceed total_amount {_fmt(total)}", total)
    return c.problems


_LINE_AMOUNTS = ("subtotal", "discount_amount", "net_amount", "tax_amount", "total_amount")
_HEADER_AMOUNTS = (
    "subtotal",
    "total_tax_t_amount",
    "total_tax_r_amount",
    "total_exempt_amount",
    "total_tax_amount",
    "discount_amount",
    "total_line_discount_amount",
    "additional_cent_tax",
    "electronic_stamp_duty",
    "total_amount",
    "amount_due",
)
