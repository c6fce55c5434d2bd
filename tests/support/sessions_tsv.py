"""A small synthetic session file in the GRU4Rec TSV layout, for tests that tune or train in seconds."""
from __future__ import annotations

import random
from pathlib import Path

T0 = 1_700_000_000


def write_sessions_tsv(path: Path, *, sessions: int = 240, items: int = 30, seed: int = 0,
                       shuffle: bool = True) -> Path:
    """Sessions that mostly walk to the next item (learnable), with times one minute apart; the rows are written
    in shuffled session order when ``shuffle`` (readers order sessions by time, not by file position)."""
    rng = random.Random(seed)
    blocks = []
    for s in range(sessions):
        t = T0 + 60 * s
        item = rng.randrange(items)
        rows = []
        for k in range(rng.randrange(2, 7)):
            rows.append(f"{s}\t{item}\t{t + k}")
            item = (item + 1) % items if rng.random() < 0.8 else rng.randrange(items)
        blocks.append(rows)
    if shuffle:
        rng.shuffle(blocks)
    path.write_text("SessionId\tItemId\tTime\n" + "".join(r + "\n" for b in blocks for r in b), encoding="utf-8")
    return path
