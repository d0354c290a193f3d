"""Prometheus metrics of the API (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

GRAPHQL_REQUESTS = Counter(
    "dangan_graphql_requests_total",
    "GraphQL requests by tenant, operation type and outcome (HTTP status)",
    ["tenant", "operation", "status"],
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "dangan_graphql_errors_total", "GraphQL errors by code", ["code"], registry=REGISTRY
)
GRAPHQL_LATENCY = Histogram(
    "dangan_graphql_request_seconds",
    "GraphQL request latency",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
