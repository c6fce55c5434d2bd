"""Prometheus metrics of one server process (``GET /metrics``), owned by the app, not global."""
from __future__ import annotations

import time

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.events_accepted = Counter("upnext_events_accepted", "Events stored (202 replies)", registry=r)
        self.events_rejected = Counter("upnext_events_rejected", "Events refused, by reason", ["reason"],
                                       registry=r)
        self.request_seconds = Histogram("upnext_http_request_duration_seconds", "HTTP request latency",
                                         ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.commit_events = Histogram("upnext_event_commit_batch_events", "Events per group commit",
                                       buckets=(1, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000), registry=r)
        self.commit_seconds = Histogram("upnext_event_commit_seconds", "Time of one group commit",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.pending_events = Gauge("upnext_events_pending", "Events waiting for their commit", registry=r)
        self.items_written = Counter("upnext_catalog_items_written", "Items upserted through the API",
                                     registry=r)
        self.events_purged = Counter("upnext_events_purged", "Events deleted by retention", registry=r)
        self.served_purged = Counter("upnext_served_lists_purged", "Served recommendation lists deleted by "
                                     "retention", registry=r)
        self.served_dropped = Counter("upnext_served_lists_dropped", "Served recommendation lists not recorded "
                                      "(their writer's queue was full: the database is slow or down)", registry=r)
        self.recommendations_limited = Counter("upnext_recommendations_rate_limited", "Recommendation requests "
                                               "refused with 429 (UPNEXT_RATE_KEY_RECOMMENDATIONS)", registry=r)
        self.database_unavailable = Counter("upnext_database_unavailable", "Requests answered 503 because the "
                                            "database could not answer", ["route"], registry=r)
        self.recommendations = Counter("upnext_recommendations", "Answers of GET /v1/recommendations, by "
                                       "placement, algorithm and fallback reason ('none': the algorithm alone)",
                                       ["placement", "algorithm", "fallback"], registry=r)

    def on_commit(self, rows: int, seconds: float) -> None:
        self.commit_events.observe(rows)
        self.commit_seconds.observe(seconds)
        self.events_accepted.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: latency per route template (bounded label set), method and status."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(path, scope["method"], str(status)).observe(
                time.perf_counter() - start)


def histogram_quantile(metrics: "Metrics", route: str, q: float) -> tuple[float | None, int]:
    """(the q-quantile in seconds, number of observations) of this process's request latency for ``route``,
    interpolated within the histogram bucket as Prometheus does; (None, 0) before the first request."""
    bounds: dict[float, float] = {}
    for family in metrics.registry.collect():
        if family.name != "upnext_http_request_duration_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_bucket") and s.labels.get("route") == route:
                le = float(s.labels["le"])
                bounds[le] = bounds.get(le, 0.0) + s.value
    if not bounds:
        return None, 0
    les = np.array(sorted(bounds))
    cum = np.array([bounds[b] for b in les])
    total = cum[-1]
    if total <= 0:
        return None, 0
    rank = q * total
    i = int(np.searchsorted(cum, rank))
    if les[i] == float("inf"):
        return float(les[i - 1]) if i > 0 else None, int(total)
    lo, below = (les[i - 1], cum[i - 1]) if i > 0 else (0.0, 0.0)
    in_bucket = cum[i] - below
    frac = (rank - below) / in_bucket if in_bucket > 0 else 1.0
    return float(lo + (les[i] - lo) * frac), int(total)
