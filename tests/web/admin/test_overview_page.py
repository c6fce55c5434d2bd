"""The overview: figures from the store (all processes), this process's latency, the live model."""
import time

from sqlalchemy import func, insert, select

from backend.clock import now_ms
from backend.store.tables import Event, ServedList


def test_the_overview_counts_recent_events_and_sessions(admin, shop, engine):
    t = now_ms() - 90_000
    with engine.begin() as conn:
        conn.execute(insert(Event), [{"site_id": shop.site_id, "session": f"s{k % 3}", "type": "view",
                                      "item": "a", "received_ms": t + k} for k in range(10)])
    html = admin.get(f"/admin/sites/{shop.site_id}/").text
    assert '<span class="value">2.0</span><span class="label">events per minute' in html      # 10 in 5 minutes
    assert '<span class="value">3</span><span class="label">active sessions' in html
    assert "this server process only" in html and '<svg class="chart"' in html
    assert "No live model" in html and "No recommendation requests in the last hour" in html


def test_the_overview_shows_fallbacks_and_latency_after_requests(admin, shop, engine):
    for _ in range(3):
        assert admin.get("/v1/recommendations", params={"key": shop.publishable_key,
                                                        "placement": "home"}).status_code == 200
    deadline = time.monotonic() + 10
    while _served(engine) < 3 and time.monotonic() < deadline:     # served lists are written in batches
        time.sleep(0.05)
    html = admin.get(f"/admin/sites/{shop.site_id}/").text
    assert "3 requests since it started" in html and " ms</span>" in html
    row = html.split('<th scope="row">home</th>')[1].split("</tr>")[0]
    assert "<td>3</td><td>100.0%</td>" in row and "no_model 3" in row


def _served(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ServedList)).scalar()
