"""What the rest of fiscalgate knows about an authority, declared as data by the authority itself.

Each authority folder has a `descriptor.py` holding one frozen `DESCRIPTOR`. The registry
(`fiscalgate.authorities`), the gateway (tenant modules, countries, the demo, the mock pages), the
CLI and the shared contract tests read it; nothing outside the folder repeats these facts.

A descriptor module imports nothing heavy (no driver, no simulator, no HTTP stack), so listing
the authorities or validating a tenant's modules never depends on an authority package importing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from fiscalgate.authorities.base import AuthorityDriver

# When an onboarding step counts as done, from what the gateway can see of a tenant:
#   registered             never derivable (paperwork with the authority): shown as a to-do
#   mock_tried             an invoice certified in mock
#   sandbox_configured     settings saved for the sandbox
#   sandbox_certified      an invoice certified in the sandbox
#   production_configured  settings saved for production
#   active                 production settings switched on (active=true)
DoneWhen = Literal[
    "registered", "mock_tried", "sandbox_configured", "sandbox_certified", "production_configured", "active"
]
DONE_WHEN: tuple[str, ...] = get_args(DoneWhen)
LANGUAGES = ("fr", "en")

_CODE = re.compile(r"[a-z]{2}-[a-z][a-z0-9]{1,30}")
_SLUG = re.compile(r"[a-z][a-z0-9-]{1,30}")


@dataclass(frozen=True)
class OnboardingStep:
    """One step from "nothing" to "certifying live invoices", as the console shows it."""

    key: str
    title: Mapping[str, str]  # {"fr": ..., "en": ...}
    text: Mapping[str, str]
    link: str | None
    done_when: DoneWhen

    def __post_init__(self) -> None:
        for name in ("title", "text"):
            value: Mapping[str, str] = getattr(self, name)
            missing = [lang for lang in LANGUAGES if not value.get(lang, "").strip()]
            if missing:
                raise ValueError(f"onboarding step {self.key!r}: {name} lacks {', '.join(missing)}")
            object.__setattr__(self, name, MappingProxyType(dict(value)))
        if self.done_when not in DONE_WHEN:
            raise ValueError(
                f"onboarding step {self.key!r}: done_when {self.done_when!r} is not one of {DONE_WHEN}"
            )
        if self.link is not None and not self.link.startswith(("https://", "http://", "mailto:")):
            raise ValueError(f"onboarding step {self.key!r}: link {self.link!r} is not a URL")


@dataclass(frozen=True)
class CreditNoteRules:
    """How the authority takes credit notes (the gateway refuses early what it would refuse late)."""

    partial: bool = True  # some lines or quantities of the original, not only all of it
    one_per_invoice: bool = False  # at most one credit note against a given original


# How an `unknown` outcome (sent, no answer) can be settled:
#   confirm          ask the authority what became of the call (and finalise it where it waits)
#   cancel           ask the authority to drop the call's pending request (e-MECeF)
#   record_reference a person found the invoice on the authority's portal and types its reference
#   not_certified    a person checked: the authority has no trace of it, it may be certified again
ReconcileAction = Literal["confirm", "cancel", "record_reference", "not_certified"]
RECONCILE_ACTIONS: tuple[str, ...] = get_args(ReconcileAction)
BY_HAND: tuple[ReconcileAction, ...] = ("record_reference", "not_certified")


@dataclass(frozen=True)
class ReconcileRules:
    """How the authority lets an uncertain call be settled. The default is an authority with no
    look-up: only a person, checking its portal, can tell."""

    # What the console offers a person on an `unknown` invoice, in that order.
    actions: tuple[ReconcileAction, ...] = BY_HAND
    # The queue settles `unknown` outcomes by itself (a `confirm` reconciliation, promptly) instead
    # of leaving them to a person. Needs `confirm` among the actions.
    automatic: bool = False

    def __post_init__(self) -> None:
        unknown = [a for a in self.actions if a not in RECONCILE_ACTIONS]
        if unknown:
            raise ValueError(f"reconcile actions {unknown} are not among {RECONCILE_ACTIONS}")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"reconcile actions repeat: {self.actions}")
        if self.automatic and "confirm" not in self.actions:
            raise ValueError("automatic reconciliation needs the 'confirm' action (a look-up)")


@dataclass(frozen=True)
class PendingCap:
    """The platform keeps at most `limit` submitted-but-unfinalised requests per taxpayer and
    environment; the gateway holds a slot per call in flight (see gateway/limits/pending.py)."""

    limit: int
    expiry: timedelta  # how long the platform keeps an unfinalised request pending
    hold: timedelta  # longest a live call holds its slot (a crashed worker's slot frees itself)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a pending cap needs a limit of at least 1")


@dataclass(frozen=True)
class AuthorityDescriptor:
    code: str  # "ci-fne": country code + name, as in URLs and settings
    name: str  # "DGI — FNE"
    module: str  # the tenant-module slug: "fne"
    aliases: tuple[str, ...]  # other names accepted for the code and the module ("emecef")
    country: str  # ISO 3166 alpha-2
    country_names: tuple[str, ...]  # French first (the display name), then other spellings
    currencies: tuple[str, ...]  # currencies invoice amounts may be in; the first is the default
    onboarding: tuple[OnboardingStep, ...]
    driver: str  # "package.module:DriverClass", imported on first use
    # Settings that work against the authority's simulator; keyword hints override values.
    mock_credentials: Callable[..., dict[str, Any]]
    # A neutral invoice (JSON form) the simulator certifies with `mock_credentials`: the demo and
    # the shared contract tests send it.
    sample_invoice: Mapping[str, Any]
    credit_notes: CreditNoteRules = field(default_factory=CreditNoteRules)
    # Public pages of the simulator (regular expressions over the path relative to its root) that
    # the gateway forwards under /mock/{tenant}/{code}/ — the pages printed QR codes point at.
    simulator_pages: tuple[str, ...] = ()
    reconcile: ReconcileRules = field(default_factory=ReconcileRules)
    # The platform's cap on unfinalised requests, if it has one (the gateway waits for a free slot).
    pending_cap: PendingCap | None = None
    # Its certifications carry `sticker_balance` (stamps left on the account): the console's
    # dashboard shows the last one.
    sticker_balance: bool = False
    # What the console calls it, per language ({"fr": ..., "en": ...}); missing languages read
    # "<name> (<country name>)".
    labels: Mapping[str, str] = field(default_factory=dict)
    # Console labels of its own settings fields, per field and language ({"taxpayer_id": {"fr":
    # ..., "en": ...}}), for fields the console's catalog does not already name (`field.<name>`).
    setting_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The simulator request that creates a certification, (method, path suffix): where the fault
    # tests and benchmarks/chaos_batch.py inject faults. None: not measured that way.
    submission: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        problems = []
        if not _CODE.fullmatch(self.code):
            problems.append(f"code {self.code!r} is not 'cc-name' (lower case)")
        elif self.code[:2] != self.country.lower():
            problems.append(f"code {self.code!r} does not start with its country {self.country!r}")
        if not _SLUG.fullmatch(self.module):
            problems.append(f"module {self.module!r} is not a lower-case slug")
        if not re.fullmatch(r"[A-Z]{2}", self.country):
            problems.append(f"country {self.country!r} is not an ISO 3166 alpha-2 code")
        if not self.country_names:
            problems.append("country_names is empty")
        if not self.currencies or any(not re.fullmatch(r"[A-Z]{3}", c) for c in self.currencies):
            problems.append(f"currencies {self.currencies!r} are not ISO 4217 codes")
        if ":" not in self.driver:
            problems.append(f"driver {self.driver!r} is not 'module:Class'")
        keys = [step.key for step in self.onboarding]
        if len(set(keys)) != len(keys):
            problems.append(f"onboarding keys repeat: {keys}")
        for page in self.simulator_pages:
            re.compile(page)
        problems += [
            f"labels: {lang!r} is not one of {LANGUAGES}" for lang in self.labels if lang not in LANGUAGES
        ]
        for name, by_lang in self.setting_labels.items():
            missing = [lang for lang in LANGUAGES if not by_lang.get(lang, "").strip()]
            if missing:
                problems.append(f"setting_labels[{name!r}] lacks {', '.join(missing)}")
        if self.submission is not None and (
            len(self.submission) != 2 or not self.submission[1].startswith("/")
        ):
            problems.append(f"submission {self.submission!r} is not (method, '/path suffix')")
        if problems:
            raise ValueError(f"authority descriptor {self.code!r}: " + "; ".join(problems))
        object.__setattr__(self, "sample_invoice", MappingProxyType(copy.deepcopy(dict(self.sample_invoice))))
        object.__setattr__(self, "aliases", tuple(a.lower() for a in self.aliases))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(
            self,
            "setting_labels",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.setting_labels.items()}),
        )

    @property
    def package(self) -> str:
        """The authority's package (`fiscalgate.authorities.ci_fne`)."""
        return self.driver.partition(":")[0].rsplit(".", 1)[0]

    @property
    def country_name(self) -> str:
        return self.country_names[0]

    def label(self, lang: str) -> str:
        """The console's name for it in `lang` ("FNE (Côte d'Ivoire)")."""
        return self.labels.get(lang) or f"{self.name} ({self.country_name})"

    def setting_label(self, name: str, lang: str) -> str | None:
        """Its own label for a settings field in `lang`, if it declares one."""
        by_lang = self.setting_labels.get(name)
        return None if by_lang is None else by_lang.get(lang)

    def names(self) -> tuple[str, ...]:
        """Every name the authority answers to: code, module, aliases (lower case)."""
        return (self.code, self.module, *self.aliases)

    def sample(self, number: str | None = None) -> dict[str, Any]:
        """A fresh, mutable copy of the sample invoice, with another number if given."""
        data = copy.deepcopy(dict(self.sample_invoice))
        data = {k: _thaw(v) for k, v in data.items()}
        if number is not None:
            data["number"] = number
        return data

    def page_patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(page) for page in self.simulator_pages)

    def load_driver(self) -> AuthorityDriver:
        """A new instance of the authority's driver (the registry keeps one per authority)."""
        module_name, _, class_name = self.driver.partition(":")
        driver_class = getattr(import_module(module_name), class_name)
        driver: AuthorityDriver = driver_class()
        return driver


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def step(
    key: str,
    done_when: DoneWhen,
    *,
    fr: tuple[str, str],
    en: tuple[str, str],
    link: str | None = None,
) -> OnboardingStep:
    """An onboarding step from its (title, text) pairs in French and English."""
    return OnboardingStep(
        key=key,
        title={"fr": fr[0], "en": en[0]},
        text={"fr": fr[1], "en": en[1]},
        link=link,
        done_when=done_when,
    )


def counter_sale(number: str, currency: str) -> dict[str, Any]:
    """The demo's sample invoice: a counter sale to an individual, paid in cash. It carries the
    buyer's phone and e-mail, which FNE wants even for B2C, so it certifies with every authority."""
    return {
        "number": number,
        "currency": currency,
        "seller": {"name": "Boutique Demo"},
        "buyer": {
            "kind": "individual",
            "name": "Client Comptoir",
            "phone": "0709080765",
            "email": "client@example.ci",
        },
        "operator": {"name": "Caisse 1"},
        "lines": [
            {"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"},
            {"description": "Huile 5 l", "quantity": "3", "unit_price": "6000"},
        ],
        "payments": [{"method": "cash"}],
    }
