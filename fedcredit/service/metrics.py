"""Prometheus metrics of one service: requests, latency, refusals by cause, served version.

Each app gets its own ``CollectorRegistry`` (two services in one test process do not share
counters); ``GET /metrics`` serves it in Prometheus' text format.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The counters and histograms a service updates per request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fedcredit_service_requests", "Requests answered, by endpoint "
                                "and HTTP status.", ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("fedcredit_service_request_seconds", "Time from request to "
                                 "logged answer, by endpoint.", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.refusals = Counter("fedcredit_service_refusals", "Requests refused, by cause.",
                                ["cause"], registry=self.registry)
        self.rows = Counter("fedcredit_service_scored_rows", "Enterprises scored (batch rows "
                            "count one each).", registry=self.registry)
        self.model_version = Gauge("fedcredit_service_model_version", "Served model version.",
                                   ["model"], registry=self.registry)

    def observe(self, endpoint: str, status: int, cause: str, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.refusals.labels(cause).inc()

    def exposition(self) -> bytes:
        """The text format ``/metrics`` returns."""
        return generate_latest(self.registry)
