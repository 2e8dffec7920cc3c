"""The durable certification queue: jobs in the gateway's own database, workers that run the
certification steps on them, retries decided by the error's kind, automatic reconciliation, and
crash healing (heartbeats, claims with a holder and an expiry)."""

from fiscalgate.gateway.queue.jobs import enqueue_certification
from fiscalgate.gateway.queue.policy import RetryPolicy
from fiscalgate.gateway.queue.worker import Worker, run_background

__all__ = ["RetryPolicy", "Worker", "enqueue_certification", "run_background"]
