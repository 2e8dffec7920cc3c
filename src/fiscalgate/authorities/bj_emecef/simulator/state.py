"""The simulated e-MCF: its rules and its memory, without HTTP.

Written from SOURCES.md without looking at the client side: the totals are computed with exact
fractions and an explicit half-up rounding, per group, as §8 describes.
"""

from __future__ import annotations

import random
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import jwt

from fiscalgate.simkit import snapshot

# Defaults for `fiscalgate simulate bj-emecef` and for the mock environment (documented in README).
DEFAULT_IFU = "0202300000001"
DEFAULT_NIM = "TS01000001"
DEFAULT_TOKEN_SECRET = "fiscalgate-emecef-simulator-secret-not-for-production"
ISSUER = AUDIENCE = "impots.bj"

WAT = timezone(timedelta(hours=1))  # Bénin local time, the e-MCF's clock (§2)
MAX_PENDING = 10
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# The rates GET /api/info/taxGroups announces; percentages.
RATES = {"A": 0, "B": 18, "C": 0, "D": 18, "E": 0, "F": 0}
AIB_PERCENT = {"A": 1, "B": 5}
INVOICE_TYPES = {
    "FV": "Facture de vente",
    "FA": "Facture d'avoir",
    "EV": "Facture de vente à l'exportation",
    "EA": "Facture d'avoir à l'exportation",
}
ORIGINAL_OF = {"FA": "FV", "EA": "EV"}
PAYMENT_TYPES = [
    ("ESPECES", "ESPECES"),
    ("CHEQUES", "CHEQUES"),
    ("MOBILEMONEY", "MOBILE MONEY"),
    ("CARTEBANCAIRE", "CARTE BANCAIRE"),
    ("VIREMENT", "VIREMENT"),
    ("CREDIT", "CREDIT"),
    ("AUTRE", "AUTRE"),
]

# The API's own texts (DOC p.24), sic.
MESSAGES = {
    1: "Le nombre maximum de factures en attente est dépassé",
    3: "Type de facture n'est pas valide",
    4: "La référence de la facture originale est manquante",
    5: "La référence de la facture originale ne comporte pas 24 caractères",
    6: "La valeur de l'AIB n'est pas valide",
    7: "Le type de paiement n'est pas valide",
    8: "La facture doit contenu les articles",
    9: "La groupe de taxation au niveau des articles n'est pas valide",
    10: "La référence de la facture originale ne peut pas être validée, veuillez réessayer plus tard",
    11: "La référence de la facture originale n'est pas valide (la facture originale est introuvable)",
    12: "La référence de la facture originale n'est pas valide (le montant sur la facture d'avoir dépassé "
    "le montant de la facture originale)",
    20: "La facture n'existe pas ou elle est déjà finalisée / annulée",
    99: "Erreur lors du traitement de la demande",
}


class BusinessError(Exception):
    """An e-MCF refusal: answered as HTTP 200 with errorCode/errorDesc."""

    def __init__(self, code: int) -> None:
        super().__init__(MESSAGES[code])
        self.code = code


def half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero for the non-negative amounts the e-MCF handles."""
    return int((value + Fraction(1, 2)).__floor__())


def mint_token(
    ifu: str, nim: str, secret: str, *, lifetime: timedelta = timedelta(days=365), now: datetime | None = None
) -> str:
    """A token shaped like the DGI's (§11): HS256, unique_name IFU|NIM, role Taxpayer, iss/aud impots.bj."""
    issued = now or datetime.now(UTC)
    claims = {
        "unique_name": f"{ifu}|{nim}",
        "role": "Taxpayer",
        "nbf": int(issued.timestamp()),
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    with _short_secrets_allowed():
        return jwt.encode(claims, secret, algorithm="HS256")


@contextmanager
def _short_secrets_allowed() -> Iterator[None]:
    # PyJWT warns about HMAC keys under 32 bytes. The simulator's tokens protect nothing (they only
    # make the client send the platform's token format), so `--token-secret S` is the user's call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        yield


@dataclass
class Pending:
    uid: str
    received: datetime
    request: dict[str, Any]  # as received (wire names), echoed by GET /api/invoice/{uid}
    totals: dict[str, int]


@dataclass
class Confirmed:
    code: str
    type: str
    total: int
    credited: int = 0  # sum of the totals of confirmed credit notes against it


@dataclass
class Platform:
    ifu: str = DEFAULT_IFU
    nim: str = DEFAULT_NIM
    token_secret: str = DEFAULT_TOKEN_SECRET
    test_mode: bool = True
    pending_ttl: timedelta = timedelta(minutes=2)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    seed: int | None = None
    shop_name: str = "Simulateur fiscalgate"

    pending: dict[str, Pending] = field(default_factory=dict)
    finalised: dict[str, str] = field(default_factory=dict)  # uid -> confirmed | cancelled | expired
    invoices: dict[str, Confirmed] = field(default_factory=dict)  # code (undashed) -> invoice
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVOICE_TYPES, 0))
    total_counter: int = 0
    # Test controls: an errorCode for the next credit note(s) (e.g. 10), for the next POST, and
    # offsets added to the next POST answer's totals (to make the SFE's comparison fail).
    next_credit_errors: list[int] = field(default_factory=list)
    next_submit_errors: list[int] = field(default_factory=list)
    next_totals_skew: dict[str, int] = field(default_factory=dict)
    token_expiry: datetime | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # What a restart must not forget (simkit.snapshot). The identity (IFU, NIM, token secret) and
    # the test controls come from the configuration in force at start.
    MEMORY = ("pending", "finalised", "invoices", "counters", "total_counter")

    def export_state(self) -> dict[str, Any]:
        return snapshot.capture(self, self.MEMORY)

    def import_state(self, data: dict[str, Any]) -> None:
        snapshot.restore(self, data, self.MEMORY, (Pending, Confirmed))

    # --- authentication ---------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> bool:
        """True when the header carries a token of this e-MCF signed with the platform's secret."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        try:
            with _short_secrets_allowed():
                claims = jwt.decode(
                    authorization.removeprefix("Bearer ").strip(),
                    self.token_secret,
                    algorithms=["HS256"],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"require": ["exp", "unique_name", "role"]},
                )
        except jwt.PyJWTError:
            return False
        if claims.get("unique_name") != f"{self.ifu}|{self.nim}" or claims.get("role") != "Taxpayer":
            return False
        self.token_expiry = datetime.fromtimestamp(claims["exp"], tz=UTC)
        return True

    # --- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(WAT)

    def expire(self) -> None:
        """Drop the requests nobody finalised within the TTL (§5.4)."""
        limit = self.now() - self.pending_ttl
        for uid in [u for u, p in self.pending.items() if p.received <= limit]:
            del self.pending[uid]
            self.finalised[uid] = "expired"

    # --- the computation (§8) ---------------------------------------------------------------------
    @staticmethod
    def compute(items: list[dict[str, Any]], aib: str | None) -> dict[str, int]:
        per_group: dict[str, Fraction] = {g: Fraction(0) for g in RATES}
        specific_total = Fraction(0)
        for item in items:
            group = item["taxGroup"]
            line = Fraction(str(item["price"])) * Fraction(str(item["quantity"]))
            specific = Fraction(str(item.get("taxSpecific") or 0))
            per_group[group] += line + specific * Fraction(100 + RATES[group], 100)
            specific_total += specific
        t = {g: half_up(v) for g, v in per_group.items()}
        hab = half_up(Fraction(t["B"] * 100, 118))
        had = half_up(Fraction(t["D"] * 100, 118))
        vab, vad = t["B"] - hab, t["D"] - had
        base = sum(t.values()) - vab - vad
        aib_amount = half_up(Fraction(base * AIB_PERCENT[aib], 100)) if aib else 0
        return {
            "ta": RATES["A"],
            "tb": RATES["B"],
            "tc": RATES["C"],
            "td": RATES["D"],
            "taa": t["A"],
            "tab": t["B"],
            "tac": t["C"],
            "tad": t["D"],
            "tae": t["E"],
            "taf": t["F"],
            "hab": hab,
            "had": had,
            "vab": vab,
            "vad": vad,
            "aib": aib_amount,
            "ts": half_up(specific_total),
            "total": sum(t.values()) + aib_amount,
        }

    # --- POST /api/invoice ------------------------------------------------------------------------
    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Check a request in the platform's order, record it as pending, answer its totals."""
        self.expire()
        if self.next_submit_errors:
            raise BusinessError(self.next_submit_errors.pop(0))
        if len(self.pending) >= MAX_PENDING:
            raise BusinessError(1)
        # Decision (README): an `ifu` other than the token's taxpayer gets the generic code 99.
        if request.get("ifu") != self.ifu:
            raise BusinessError(99)
        kind = request.get("type")
        if kind not in INVOICE_TYPES:
            raise BusinessError(3)
        aib = request.get("aib")
        if aib not in (None, "") and aib not in AIB_PERCENT:
            raise BusinessError(6)
        items = request.get("items") or []
        if not items:
            raise BusinessError(8)
        if any(item.get("taxGroup") not in RATES for item in items):
            raise BusinessError(9)
        # Decision (README, spec §15.9 open): negative amounts and non-positive quantities are refused
        # with the generic code; credit notes carry positive amounts (the live FA samples do).
        if any(
            Fraction(str(item["price"])) < 0
            or Fraction(str(item["quantity"])) <= 0
            or Fraction(str(item.get("taxSpecific") or 0)) < 0
            for item in items
        ):
            raise BusinessError(99)
        if any(p.get("name") not in dict(PAYMENT_TYPES) for p in request.get("payment") or []):
            raise BusinessError(7)
        operator = request.get("operator") or {}
        if not operator.get("name"):
            raise BusinessError(99)  # the operator's name is required (DOC p.10); no code of its own
        totals = self.compute(items, aib or None)
        if kind in ORIGINAL_OF:
            self._check_credit(kind, request.get("reference"), totals["total"])
        for name, delta in self.next_totals_skew.items():
            totals[name] += delta
        self.next_totals_skew = {}
        uid = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        self.pending[uid] = Pending(uid, self.now(), request, totals)
        return {"uid": uid, **totals}

    def _check_credit(self, kind: str, reference: Any, total: int) -> None:
        if self.next_credit_errors:
            raise BusinessError(self.next_credit_errors.pop(0))
        if not reference:
            raise BusinessError(4)
        if len(str(reference)) != 24:
            raise BusinessError(5)
        original = self.invoices.get(str(reference).upper())
        if original is None or original.type != ORIGINAL_OF[kind]:
            raise BusinessError(11)
        # Decision (README): only confirmed credit notes count against the original's amount.
        if total > original.total - original.credited:
            raise BusinessError(12)

    # --- finalisation -----------------------------------------------------------------------------
    def finalise(self, uid: str, action: str) -> dict[str, Any]:
        self.expire()
        pending = self.pending.pop(uid.lower(), None)
        if pending is None:
            raise BusinessError(20)
        now = self.now()
        stamp = now.strftime("%d/%m/%Y %H:%M:%S")
        kind = pending.request["type"]
        if action == "cancel":
            # Decision (README): a cancelled request consumes no counter number.
            self.finalised[pending.uid] = "cancelled"
            return {
                "dateTime": stamp,
                "qrCode": "",
                "codeMECeFDGI": "",
                "counters": f"{self.counters[kind]}/{self.total_counter} {kind}",
                "nim": self.nim,
                # Not in the v1.0 DOC; the live test platform adds it to every finalisation
                # answer, false in every one of the DGI's self-declaration cases.
                "refundWithAibPayment": False,
            }
        if kind in ORIGINAL_OF:
            # The remaining amount may have shrunk since the POST (another credit note confirmed).
            original = self.invoices.get(str(pending.request.get("reference")).upper())
            if original is None or pending.totals["total"] > original.total - original.credited:
                self.finalised[pending.uid] = "cancelled"
                raise BusinessError(12)
            original.credited += pending.totals["total"]
        self.counters[kind] += 1
        self.total_counter += 1
        code = self._new_code()
        self.invoices[code] = Confirmed(code, kind, pending.totals["total"])
        self.finalised[pending.uid] = "confirmed"
        return {
            "dateTime": stamp,
            "qrCode": f"F;{self.nim};{code};{self.ifu};{now:%Y%m%d%H%M%S}",
            "codeMECeFDGI": "-".join(code[i : i + 4] for i in range(0, 24, 4)),
            "counters": f"{self.counters[kind]}/{self.total_counter} {kind}",
            "nim": self.nim,
            "refundWithAibPayment": False,
        }

    def _new_code(self) -> str:
        while True:
            head = "TEST" if self.test_mode else "".join(self._random.choice(BASE32) for _ in range(4))
            code = head + "".join(self._random.choice(BASE32) for _ in range(20))
            if code not in self.invoices:
                return code

    def details(self, uid: str) -> dict[str, Any]:
        self.expire()
        pending = self.pending.get(uid.lower())
        if pending is None:
            raise BusinessError(20)
        return dict(pending.request)

    # --- status and information -------------------------------------------------------------------
    def _iso(self, when: datetime) -> str:
        return when.astimezone(WAT).isoformat()

    def status(self) -> dict[str, Any]:
        self.expire()
        return {
            "status": True,
            "version": "1.0",
            "ifu": self.ifu,
            "nim": self.nim,
            "tokenValid": self._iso(self.token_expiry) if self.token_expiry else None,
            "serverDateTime": self._iso(self.now()),
            "pendingRequestsCount": len(self.pending),
            "pendingRequestsList": [
                {"date": self._iso(p.received), "uid": p.uid} for p in self.pending.values()
            ],
        }

    def info(self) -> dict[str, Any]:
        return {
            "status": True,
            "version": "1.0",
            "ifu": self.ifu,
            "nim": self.nim,
            "tokenValid": self._iso(self.token_expiry) if self.token_expiry else None,
            "serverDateTime": self._iso(self.now()),
            "emcfList": [
                {
                    "nim": self.nim,
                    "status": "Actif",
                    "shopName": self.shop_name,
                    "address1": "Boulevard de la Marina",
                    "address2": None,
                    "address3": "Cotonou",
                    "contact1": "00000000",
                    "contact2": None,
                    "contact3": None,
                }
            ],
        }
