"""Freshness benchmark (issue 15): items PUT into a running server (two workers) after its model was trained with
item features, and how soon each is served.

A shop of 2,000 items in 20 categories, a GRU4Rec model with item features trained on sessions that stay in one
category, published; then ``--new`` (default 1,000) new items PUT in one request. For a sample of them, the time
from the PUT's reply until a request whose history ends with the item is answered by the model (``fallback`` null:
the worker knows the item and advanced the session with it), and until the item first shows in the top 50 of a
session of its category. Serving p50/p99 before and after (sequential requests, client side).

    .venv/bin/python tests/bench/bench_freshness.py [--new 1000] [--sample 100]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.gru4rec.params import Hyperparameters  # noqa: E402
from backend.publishing import publish_artifact  # noqa: E402
from backend.session_data import SessionData  # noqa: E402
from backend.simulation.server import ServerProcess  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.items import clean_item, save_items  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.training import train_bundle  # noqa: E402

ORIGIN = "http://127.0.0.1"
CATS, PER_CAT = 20, 100


def record(item_id: str, c: int, k: int) -> dict:
    return {"id": item_id, "title": f"{['red', 'blue', 'green'][k % 3]} thing {c} model {k}",
            "category": f"Shop > Dept{c % 4} > Cat{c}", "price": float(5 + 3 * c + k % 7),
            "attributes": {"brand": f"brand{c}-{k % 3}"}}


def latencies(client: httpx.Client, key: str, rng, n: int = 300) -> np.ndarray:
    out = []
    for _ in range(n):
        c = rng.integers(CATS)
        hist = ",".join(f"c{c}-{k}" for k in rng.integers(0, PER_CAT, 3))
        t0 = time.perf_counter()
        client.get("/v1/recommendations", params={"key": key, "placement": "next", "history": hist, "n": 10},
                   headers={"Origin": ORIGIN}).raise_for_status()
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'db.sqlite'}"
        migrate(url)
        engine = make_engine(url)
        keys = create_site(engine, "shop", [ORIGIN])
        catalogue = [record(f"c{c}-{k}", c, k) for c in range(CATS) for k in range(PER_CAT)]
        save_items(engine, keys.site_id, [clean_item(r) for r in catalogue])
        sessions = [[f"c{c}-{k}" for k in rng.integers(0, PER_CAT, rng.integers(3, 8))]
                    for c in rng.integers(0, CATS, 4000)]
        params = Hyperparameters(layers=(64,), batch_size=32, n_sample=256, n_epochs=3, learning_rate=0.1,
                                 item_features=True, id_dropout=0.5)
        t0 = time.perf_counter()
        train_bundle(SessionData.from_sessions(sessions), params, tmp / "model", feature_records=catalogue)
        print(f"trained in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        publish_artifact(engine, keys.site_id, tmp / "model", model_dir=tmp / "var" / "models")
        engine.dispose()
        with ServerProcess(url, workers=2, data_dir=tmp / "var", log_path=tmp / "server.log") as server, \
                httpx.Client(base_url=server.url, timeout=10) as client:
            before = latencies(client, keys.publishable_key, rng)
            new = [record(f"new-{i}", i % CATS, 1000 + i) for i in range(args.new)]
            body = "\n".join(json.dumps(r) for r in new)
            r = client.put("/v1/items", content=body, headers={"Authorization": f"Bearer {keys.secret_key}"})
            r.raise_for_status()
            t_reply = time.perf_counter()
            sample = [new[i] for i in rng.choice(len(new), min(args.sample, len(new)), replace=False)]
            known, shown = {}, {}
            while time.perf_counter() - t_reply < args.timeout and (len(known) < len(sample)
                                                                     or len(shown) < len(sample)):
                for rec in sample:
                    c = int(rec["category"].rsplit("Cat", 1)[1])
                    hist = f"c{c}-1,c{c}-2,{rec['id']}"
                    if rec["id"] not in known:
                        ans = client.get("/v1/recommendations", params={"key": keys.publishable_key,
                                                                        "placement": "next", "history": hist,
                                                                        "n": 5}, headers={"Origin": ORIGIN}).json()
                        if ans["fallback"] is None:
                            known[rec["id"]] = time.perf_counter() - t_reply
                    if rec["id"] not in shown:
                        ans = client.get("/v1/recommendations", params={"key": keys.publishable_key,
                                                                        "placement": "next", "n": 50,
                                                                        "history": f"c{c}-1,c{c}-2,c{c}-3"},
                                         headers={"Origin": ORIGIN}).json()
                        ids = {it["id"] for it in ans["items"]}
                        for other in sample:
                            if other["id"] in ids and other["id"] not in shown:
                                shown[other["id"]] = time.perf_counter() - t_reply
            after = latencies(client, keys.publishable_key, rng)
        for name, got in (("known to the model (clicked item advances the session)", known),
                          ("shown in its category's top 50", shown)):
            t = np.array(sorted(got.values()))
            print(f"{name}: {len(t)}/{len(sample)} sampled items"
                  + (f", p50 {np.percentile(t, 50):.2f} s, p99 {np.percentile(t, 99):.2f} s after the PUT's reply"
                     if len(t) else ""))
        for name, lat in (("before", before), ("after", after)):
            print(f"serving latency {name}: p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms")


if __name__ == "__main__":
    main()
