"""Certification as named steps: claim -> prepare -> call the authority -> record the outcome.

`run.py` reads top to bottom; each step has its module (`claim.py`, `call.py`, `record.py`), the
failure classification is `outcome.py`, and a person's resolution is `by_hand.py`.
"""

from fiscalgate.gateway.certification.call import Certify, Reconcile, Request
from fiscalgate.gateway.certification.claim import Attempt, Claim, Prepared
from fiscalgate.gateway.certification.outcome import Outcome, classify
from fiscalgate.gateway.certification.run import certify_invoice, reconcile_invoice, run_attempt

__all__ = [
    "Attempt",
    "Certify",
    "Claim",
    "Outcome",
    "Prepared",
    "Reconcile",
    "Request",
    "certify_invoice",
    "classify",
    "reconcile_invoice",
    "run_attempt",
]
