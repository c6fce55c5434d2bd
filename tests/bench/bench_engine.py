"""Serving engine benchmark: one request = one GRU step + score all items + top-20 (5 items excluded).

For 10k, 100k and 1M items at layers 100 and 512 (random weights; timing does not depend on their values), side by
side in the same run: the Numba engine (float32 and float16 item matrix), plain numpy, plain PyTorch CPU.
- single request: p50/p99 latency, one request at a time;
- throughput with 32 concurrent sessions: Numba batched (32 sessions per pass over the item matrix, split over the
  cores' threads), Numba one request per thread in a pool, numpy and PyTorch batched (a (32, n) score matrix);
- memory-bandwidth bound: item-matrix bytes / copy bandwidth measured between the requests (STREAM convention: a
  copy of N bytes moves 2N), i.e. the time it takes just to read the float32 matrix once. At 10k items the matrix
  stays in the CPU caches, so the bound (from memory) does not apply there.
Ratios (x/bound, torch/numba) are medians over rounds of calls made moments apart (robust on a shared machine).
Timings of the implementations alternate round by round, so that load from other processes falls on all alike.

Run: .venv/bin/python tests/bench/bench_engine.py [--sizes 10000,100000,1000000] [--layers 100,512]
Prints a table; the whole run takes a few minutes on 2 cores and needs ~5 GB of memory at 1M x 512.

With ``--diversity D`` it compares instead, interleaved in the same run, a placement's request without diversity
(GRU step + top-20) and with diversity D (GRU step + top-50 + MMR re-ranking to 20 over the item vectors, what
``backend/serving/recommender.py`` does), e.g. ``--sizes 43097,100000 --layers 100 --diversity 0.5``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402  (the bench compares with PyTorch; serving never imports it)

from backend.artifact import Artifact  # noqa: E402
from backend.kernels import serving_reference as reference  # noqa: E402
from backend.serving.engine import GRU4RecEngine  # noqa: E402

K, N_EXCLUDE, CONCURRENT = 20, 5, 32
SPINNING = ("numpy", "torch")  # multi-threaded libraries (OpenMP / OpenBLAS thread pools)


def build(n_items: int, H: int, item_matrix: str, arrays: dict | None = None) -> tuple[GRU4RecEngine, dict]:
    rng = np.random.default_rng(0)
    if arrays is None:
        s = np.sqrt(6.0 / (4 * H))
        arrays = {"Wy": rng.standard_normal((n_items, H), dtype=np.float32) * np.float32(0.1),
                  "By": rng.standard_normal(n_items, dtype=np.float32) * np.float32(0.1),
                  "layer0.Wx": rng.uniform(-s, s, (H, 3 * H)).astype(np.float32),
                  "layer0.Wrz": rng.uniform(-s, s, (H, 2 * H)).astype(np.float32),
                  "layer0.Wh": rng.uniform(-s, s, (H, H)).astype(np.float32),
                  "layer0.b": np.zeros(3 * H, np.float32)}
    manifest = {"format": "upnext-gru4rec", "format_version": 1, "layers": [H], "embedding": "shared",
                "item_ids": [str(i) for i in range(n_items)]}
    engine = GRU4RecEngine(Artifact(Path("bench"), manifest, arrays), item_matrix=item_matrix)
    engine.prewarm()
    return engine, arrays


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict, requests: list, rounds: int, every: dict) -> dict[str, np.ndarray]:
    """Milliseconds per call of each function, measured in alternation (round after round) so that load from
    other processes on a shared machine falls on all of them alike; fns[name] runs every[name]-th round."""
    for fn in fns.values():
        fn(*requests[0])
    out = {name: np.full(rounds, np.nan) for name in fns}  # NaN: not measured in that round
    for i in range(rounds):
        r = requests[i % len(requests)]
        for name, fn in fns.items():
            if i % every.get(name, 1) == 0:
                out[name][i] = _timed(lambda: fn(*r)) * 1e3
                if name in SPINNING:
                    time.sleep(0.01)  # their idle worker threads spin for a while and would slow the next call
    return out


def paired_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """Median over the rounds that measured both of a / b: each ratio compares calls made moments apart."""
    both = ~np.isnan(a) & ~np.isnan(b)
    return float(np.median(a[both] / b[both]))


class Torch:
    """A plain PyTorch CPU implementation of the same request (what one would write without custom kernels)."""

    def __init__(self, a: dict) -> None:
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()}
        self.Wy, self.By, self.Wx, self.Wrz, self.Wh, self.b = (t["Wy"], t["By"], t["layer0.Wx"], t["layer0.Wrz"],
                                                                t["layer0.Wh"], t["layer0.b"])
        self.H = self.Wh.shape[0]

    def step(self, h, items):
        H = self.H
        a = self.Wy[items] @ self.Wx + self.b
        g = h @ self.Wrz
        r = torch.sigmoid(a[..., :H] + g[..., :H])
        z = torch.sigmoid(a[..., H:2 * H] + g[..., H:])
        n = torch.tanh(a[..., 2 * H:] + (r * h) @ self.Wh)
        return z * h + (1 - z) * n

    def request(self, h, item, exclude):
        with torch.inference_mode():
            h = self.step(torch.from_numpy(h), item)
            scores = torch.addmv(self.By, self.Wy, h)
            scores[torch.from_numpy(exclude)] = -torch.inf
            return torch.topk(scores, K)

    def batch(self, hs, items, excludes):
        with torch.inference_mode():
            hs = self.step(torch.from_numpy(hs), torch.from_numpy(items))
            scores = torch.addmm(self.By, hs, self.Wy.T)
            for row, ex in enumerate(excludes):
                scores[row, torch.from_numpy(ex)] = -torch.inf
            return torch.topk(scores, K, dim=1)


class Numpy:
    """The same request in plain numpy: matrix-vector product, then a partial selection (argpartition)."""

    def __init__(self, engine: GRU4RecEngine, a: dict) -> None:
        self.a = a
        self.gru = (a["Wy"], False, (a["layer0.Wx"],), (a["layer0.Wrz"],), (a["layer0.Wh"],), (a["layer0.b"],))

    def _topk(self, scores, exclude):
        scores[exclude] = -np.inf
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best], kind="stable")]

    def request(self, h, item, exclude):
        h = h.copy()
        reference.gru_step(h, item, *self.gru)
        return self._topk(self.a["Wy"] @ h + self.a["By"], exclude)

    def batch(self, hs, items, excludes):
        hs = hs.copy()
        reference.gru_step_batch(hs, items, *self.gru)
        scores = hs @ self.a["Wy"].T + self.a["By"]
        return [self._topk(row, ex) for row, ex in zip(scores, excludes)]


def run(n_items: int, H: int, threads: int) -> dict:
    rng = np.random.default_rng(1)
    engine, arrays = build(n_items, H, "float32")
    engine16, _ = build(n_items, H, "float16", arrays)
    histories = [rng.integers(0, n_items, N_EXCLUDE) for _ in range(64)]
    states = [engine.state_from_history(h[:-1]) for h in histories]
    requests = [(states[i], int(histories[i][-1]), histories[i].astype(np.int64)) for i in range(64)]
    repeat = max(10, min(1000, int(4e8 / (n_items * H))))

    def numba_request(eng):
        return lambda h, item, ex: eng.top_k(eng.advance(h, item), K, ex)

    tor, npy = Torch(arrays), Numpy(engine, arrays)
    # memory bandwidth, measured between the requests: a copy of N bytes reads N and writes N
    src = np.ones(max(16 << 20, min(arrays["Wy"].size, 128 << 20)), np.float32)
    dst = np.empty_like(src)
    copy = lambda *_: np.copyto(dst, src)  # noqa: E731
    slow = max(1, repeat // 50)
    lat = interleaved({"numba": numba_request(engine), "numba_f16": numba_request(engine16), "copy": copy,
                       "numpy": npy.request, "torch": tor.request}, requests, repeat,
                      {"numpy": slow, "torch": slow, "copy": slow})
    out = {"items": n_items, "H": H, "repeat": repeat}
    for name in ("numba", "numba_f16", "numpy", "torch"):
        out[name] = (float(np.nanpercentile(lat[name], 50)), float(np.nanpercentile(lat[name], 99)))
    bandwidth = 2 * src.nbytes / (np.nanmedian(lat["copy"]) / 1e3)
    out["bandwidth"] = bandwidth
    out["bound_ms"] = arrays["Wy"].nbytes / bandwidth * 1e3
    bound_per_round = lat["copy"] * arrays["Wy"].nbytes / (2 * src.nbytes)
    out["numba_vs_bound"] = paired_ratio(lat["numba"], bound_per_round)
    out["f16_vs_bound"] = paired_ratio(lat["numba_f16"], bound_per_round)
    out["torch_vs_numba"] = paired_ratio(lat["torch"], lat["numba"])
    del src, dst

    # throughput with 32 concurrent sessions (sessions answered per second)
    hs = np.stack([r[0] for r in requests[:CONCURRENT]])
    items = np.array([r[1] for r in requests[:CONCURRENT]], np.int64)
    excludes = [r[2] for r in requests[:CONCURRENT]]
    per = CONCURRENT // threads

    def numba_batched(eng, pool):
        def part(t):
            sl = slice(t * per, (t + 1) * per)
            return eng.top_k_many(eng.advance_many(hs[sl], items[sl]), K, excludes[sl])
        return lambda: list(pool.map(part, range(threads)))

    with ThreadPoolExecutor(threads) as pool:
        runs = {"numba_batched": numba_batched(engine, pool), "numba_f16_batched": numba_batched(engine16, pool),
                "numba_pool": lambda: list(pool.map(lambda r: numba_request(engine)(*r), requests[:CONCURRENT])),
                "numpy_batched": lambda: npy.batch(hs, items, excludes),
                "torch_batched": lambda: tor.batch(hs, items, excludes)}
        for name, fn in runs.items():
            fn()
            times = [_timed(fn) for _ in range(max(2, min(20, repeat // 10)))]
            out[name] = CONCURRENT / float(np.median(times))
    # agreement: float16 vs float32 top-20 (random weights have many near-ties; a trained model has fewer)
    same = [len(set(engine.top_k(s, K)[0]) & set(engine16.top_k(s, K)[0])) / K for s in states[:16]]
    out["f16_overlap"] = float(np.mean(same))
    return out


def run_diversity(n_items: int, H: int, diversity: float) -> dict:
    """p50/p99 ms of a request without and with diversity, interleaved round by round."""
    rng = np.random.default_rng(1)
    engine, _ = build(n_items, H, "float32")
    categories = rng.integers(-1, 200, n_items).astype(np.int32)
    histories = [rng.integers(0, n_items, N_EXCLUDE) for _ in range(64)]
    requests = [(engine.state_from_history(h[:-1]), int(h[-1]), h.astype(np.int64)) for h in histories]
    repeat = max(50, min(1000, int(4e8 / (n_items * H))))

    def plain(h, item, ex):
        return engine.top_k(engine.advance(h, item), K, ex)

    def diverse(h, item, ex):
        items, scores = engine.top_k(engine.advance(h, item), 50, ex)
        lo, hi = float(scores.min()), float(scores.max())
        return engine.rerank(items, (scores - lo) / (hi - lo), categories, diversity, K)

    lat = interleaved({"plain": plain, "diverse": diverse}, requests, repeat, {})
    return {name: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for name, v in lat.items()} | {
        "ratio": paired_ratio(lat["diverse"], lat["plain"]), "repeat": repeat}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--layers", default="100,512")
    p.add_argument("--diversity", type=float, help="compare requests with this diversity against none instead")
    args = p.parse_args()
    if args.diversity is not None:
        print(f"# bench_engine --diversity {args.diversity}: one request = GRU step + top-20 (5 excluded), against "
              f"GRU step + top-50 + MMR re-ranking to 20; interleaved, {os.cpu_count()} CPUs")
        print("items | H | diversity 0 p50/p99 ms | diversity %g p50/p99 ms | median ratio | rounds" % args.diversity)
        for n in map(int, args.sizes.split(",")):
            for H in map(int, args.layers.split(",")):
                r = run_diversity(n, H, args.diversity)
                print(f"{n:,} | {H} | {r['plain'][0]:.3f}/{r['plain'][1]:.3f} | {r['diverse'][0]:.3f}/"
                      f"{r['diverse'][1]:.3f} | {r['ratio']:.2f}x | {r['repeat']}", flush=True)
        return
    threads = os.cpu_count() or 1
    print(f"# bench_engine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads,"
          f" numba one thread per request; timings interleaved, medians of rounds")
    print(f"# command: .venv/bin/python tests/bench/bench_engine.py --sizes {args.sizes} --layers {args.layers}")
    head = ("items", "H", "numba p50/p99 ms", "f16 p50/p99", "numpy p50/p99", "torch p50/p99", "copy GB/s", "bound ms",
            "numba/bound", "f16/bound", "torch/numba", "torch/numba p99",
            "32 sessions/s: numba batched", "f16 batched", "numba pool", "numpy", "torch", "f16 top20 overlap")
    print(" | ".join(head))
    for n in map(int, args.sizes.split(",")):
        for H in map(int, args.layers.split(",")):
            r = run(n, H, threads)
            cells = [f"{n:,}", str(H)] + [f"{r[k][0]:.2f}/{r[k][1]:.2f}" for k in ("numba", "numba_f16", "numpy",
                                                                                   "torch")]
            cells += [f"{r['bandwidth'] / 1e9:.1f}", f"{r['bound_ms']:.2f}", f"{r['numba_vs_bound']:.2f}x",
                      f"{r['f16_vs_bound']:.2f}x", f"{r['torch_vs_numba']:.1f}x", f"{r['torch'][1] / r['numba'][1]:.1f}x"]
            cells += [f"{r[k]:,.0f}" for k in ("numba_batched", "numba_f16_batched", "numba_pool",
                                               "numpy_batched", "torch_batched")]
            cells.append(f"{r['f16_overlap']:.3f}")
            print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
