"""The Prometheus metrics of one server process and what the admin overview reads from them."""
from backend.server_metrics import Metrics, histogram_quantile


def test_the_latency_quantile_interpolates_in_the_histogram_bucket():
    metrics = Metrics()
    hist = metrics.request_seconds.labels("/v1/recommendations", "GET", "200")
    assert histogram_quantile(metrics, "/v1/recommendations", 0.95) == (None, 0)
    for _ in range(90):
        hist.observe(0.002)          # bucket (0.001, 0.0025]
    for _ in range(10):
        hist.observe(0.008)          # bucket (0.005, 0.01]
    metrics.request_seconds.labels("/v1/events", "POST", "202").observe(3.0)   # another route: ignored
    p95, n = histogram_quantile(metrics, "/v1/recommendations", 0.95)
    assert n == 100
    assert abs(p95 - (0.005 + 0.005 * 0.5)) < 1e-9      # rank 95: half-way through the 10 in (0.005, 0.01]
    p50, _ = histogram_quantile(metrics, "/v1/recommendations", 0.5)
    assert abs(p50 - (0.001 + 0.0015 * 50 / 90)) < 1e-9
