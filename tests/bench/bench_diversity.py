"""Diversity trade-off (issue 17): Recall@20 and intra-list diversity of GRU4Rec lists re-ranked by the serving
engine's diversity (maximal marginal relevance over the item vectors, ``GRU4RecEngine.rerank``) at several levels.

    nice -n 10 .venv/bin/python tests/bench/bench_diversity.py [--datasets beauty,diginetica-srgnn]
        [--levels 0,0.2,0.5,0.8] [--cases 5000] [--params diginetica,n_epochs=1] [--png diversity.png]

Per dataset: train GRU4Rec on the training sessions, then for each test case (a session prefix and its next
item) take the model's 50 best items and re-rank them to a list of 20 at each diversity level (what a placement
with that ``diversity`` serves). Reported: Recall@20 (the target in the list; seen items not removed, as in the
published tables), ILD = mean pairwise cosine distance of the list's item vectors (the model's output
embeddings), and distinct categories per list where the items have categories.

Datasets: ``beauty``: Amazon Beauty (S3-Rec's 5-core sequences), leave-one-out (train on each user's sequence
without its last two items, predict the last from the rest), an item's attribute ids (categories and brand) as its
category. ``diginetica-srgnn``: the SR-GNN split; its renumbered item ids cannot be joined to the raw
``product-categories.csv`` (see ../shared/data/diginetica-raw/README.md), so it has no category column.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.gru4rec.data import read_session_lines  # noqa: E402
from backend.gru4rec.params import parse_params  # noqa: E402
from backend.serving.engine import GRU4RecEngine  # noqa: E402
from backend.training import train_bundle  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
POOL, K = 50, 20


def intra_list_distance(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cosine) of the rows of ``vectors`` (a list's item vectors)."""
    v = vectors.astype(np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    m = len(v)
    if m < 2:
        return 0.0
    return float((1.0 - v @ v.T)[np.triu_indices(m, 1)].mean())


def _write_lines(path: Path, sessions) -> None:
    path.write_text("\n".join(" ".join(s) for s in sessions if len(s) >= 2) + "\n")


def load_beauty(tmp: Path):
    """(train file, test cases [(prefix ids, target id)], item id -> category key)."""
    root = SHARED / "amazon-s3rec"
    seqs = [line.split()[1:] for line in (root / "Beauty.txt").read_text().splitlines() if line.strip()]
    _write_lines(tmp / "beauty_train.txt", [s[:-2] for s in seqs])
    cases = [(s[:-1], s[-1]) for s in seqs]
    attrs = json.loads((root / "Beauty_item2attributes.json").read_text())
    return tmp / "beauty_train.txt", cases, {k: ",".join(map(str, sorted(v))) for k, v in attrs.items()}


def load_diginetica(tmp: Path):
    root = SHARED / "diginetica-srgnn"
    cases = []
    for line in (root / "test_prefixes.tsv").read_text().splitlines():
        prefix, _, target = line.partition("\t")
        if prefix.strip():
            cases.append((prefix.split(), target.strip()))
    return root / "train_sessions.txt", cases, None


DATASETS = {"beauty": (load_beauty, "amazon-s3rec/Beauty.txt"),
            "diginetica-srgnn": (load_diginetica, "diginetica-srgnn/train_sessions.txt")}


def run(name: str, levels: list[float], n_cases: int, params_text: str, seed: int) -> list[dict]:
    loader, probe = DATASETS[name]
    if not (SHARED / probe).exists():
        print(f"{name}: skipped, dataset not available: {SHARED / probe}", flush=True)
        return []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        train_file, cases, category_of = loader(tmp)
        data = read_session_lines(train_file)
        t0 = time.perf_counter()
        params = parse_params(params_text)
        train_bundle(data, params, tmp / "model", fallbacks=False)
        trained_s = time.perf_counter() - t0
        eng = GRU4RecEngine.load(tmp / "model", mmap=False)
    cases = [(eng.indices(p), eng.index(t)) for p, t in cases]
    cases = [(p, t) for p, t in cases if len(p) and t is not None]
    rng = np.random.default_rng(seed)
    if len(cases) > n_cases:
        cases = [cases[i] for i in sorted(rng.choice(len(cases), n_cases, replace=False))]
    codes: dict[str, int] = {}
    categories = np.full(eng.n_items, -1, np.int32)
    if category_of is not None:
        for i, item_id in enumerate(eng.item_ids):
            if item_id in category_of:
                categories[i] = codes.setdefault(category_of[item_id], len(codes))
    vectors = np.asarray(eng._vectors)
    hits = {d: 0 for d in levels}
    ild = {d: [] for d in levels}
    distinct = {d: [] for d in levels}
    t0 = time.perf_counter()
    for prefix, target in cases:
        state = eng.state_from_history(prefix)
        items, scores = eng.top_k(state, POOL)
        lo, hi = float(scores.min()), float(scores.max())
        relevance = (scores.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.ones(len(scores))
        for d in levels:
            top = eng.rerank(items, relevance, categories, d, K)
            hits[d] += int(target in top)
            ild[d].append(intra_list_distance(vectors[top]))
            cats = categories[top]
            distinct[d].append(len(set(cats[cats >= 0].tolist())))
    eval_s = time.perf_counter() - t0
    rows = []
    for d in levels:
        rows.append({"dataset": name, "diversity": d, "recall@20": hits[d] / len(cases), "ild": float(np.mean(ild[d])),
                     "distinct_categories": float(np.mean(distinct[d])) if category_of is not None else None,
                     "cases": len(cases), "items": eng.n_items, "train_s": round(trained_s, 1),
                     "eval_s": round(eval_s, 1), "params": params_text})
        r = rows[-1]
        cat = f"{r['distinct_categories']:.2f}" if r["distinct_categories"] is not None else "n/a"
        print(f"{name:18s} diversity {d:.1f}  Recall@20 {r['recall@20']:.4f}  ILD {r['ild']:.4f}  "
              f"distinct categories/list {cat}  ({len(cases):,} cases)", flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib  # lazy: optional, only for the picture
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: as above
    except ImportError:
        _svg(rows, path.with_suffix(".svg"))
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["dataset"] for r in rows):
        pts = [r for r in rows if r["dataset"] == name]
        ax.plot([r["ild"] for r in pts], [r["recall@20"] for r in pts], marker="o", label=name)
        for r in pts:
            ax.annotate(f"{r['diversity']:g}", (r["ild"], r["recall@20"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    ax.set_xlabel("intra-list diversity (mean pairwise cosine distance)")
    ax.set_ylabel("Recall@20")
    ax.set_title("Diversity trade-off (labels: the placement's diversity)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", flush=True)


def _svg(rows: list[dict], path: Path) -> None:
    W, H, pad = 480, 320, 40
    xs, ys = [r["ild"] for r in rows], [r["recall@20"] for r in rows]
    x0, x1, y0, y1 = min(xs), max(xs) or 1, min(ys), max(ys) or 1
    sx = lambda x: pad + (x - x0) / ((x1 - x0) or 1) * (W - 2 * pad)  # noqa: E731
    sy = lambda y: H - pad - (y - y0) / ((y1 - y0) or 1) * (H - 2 * pad)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}">']
    for name in dict.fromkeys(r["dataset"] for r in rows):
        pts = " ".join(f"{sx(r['ild']):.1f},{sy(r['recall@20']):.1f}" for r in rows if r["dataset"] == name)
        parts.append(f'<polyline fill="none" stroke="black" points="{pts}"><title>{name}</title></polyline>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))
    print(f"wrote {path}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--levels", default="0,0.2,0.5,0.8")
    ap.add_argument("--cases", type=int, default=5000, help="test cases drawn per dataset (default 5000)")
    ap.add_argument("--params", default="diginetica,n_epochs=1", help="GRU4Rec parameters (preset and changes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--png", type=Path, default=Path("diversity.png"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    levels = [float(x) for x in args.levels.split(",")]
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rows = [r for d in args.datasets.split(",") for r in run(d, levels, args.cases, args.params, args.seed)]
    print("\n| dataset | diversity | Recall@20 | ILD | distinct categories / list |\n|---|---|---|---|---|")
    for r in rows:
        cat = f"{r['distinct_categories']:.2f}" if r["distinct_categories"] is not None else "n/a"
        print(f"| {r['dataset']} | {r['diversity']:g} | {r['recall@20']:.4f} | {r['ild']:.4f} | {cat} |")
    if rows:
        plot(rows, args.png)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
