"""Session-parallel mini-batches (spec §1): per-slot resets, a shrinking final batch, nothing dropped."""
import numpy as np
import pytest

from backend.gru4rec.batches import session_parallel


def _offsets(lengths):
    off = np.zeros(len(lengths) + 1, np.int64)
    off[1:] = np.cumsum(lengths)
    return off


def test_crafted_dataset_resets_per_slot_and_shrinks():
    # sessions (event indices): s0 = 0 1 2, s1 = 3 4, s2 = 5 (too short: skipped), s3 = 6 7 8 9, s4 = 10 11
    sched = session_parallel(_offsets([3, 2, 1, 4, 2]), batch_size=2)
    steps = [(sched.event[sched.rows(t)].tolist(), sched.src[sched.rows(t)].tolist())
             for t in range(sched.n_steps)]
    assert steps == [
        ([0, 3], [-1, -1]),     # two fresh sessions
        ([1, 6], [0, -1]),      # slot 0 continues s0; slot 1 finished s1 and takes s3 (reset)
        ([10, 7], [-1, 1]),     # slot 0 finished s0 and takes s4 (reset); slot 1 continues s3
        ([8], [1]),             # no session left: slot 0 (s4 done) is removed, slot 1 continues
    ]
    assert sched.position.tolist() == [0, 0, 1, 0, 0, 1, 2]


def _naive(lengths, batch_size):
    """Every (input event, previous-step row or -1) pair, by simulating the slots one by one."""
    offsets = _offsets(lengths)
    queue = [s for s in range(len(lengths)) if lengths[s] >= 2]
    slots = []          # [current event, end]
    while queue and len(slots) < batch_size:
        s = queue.pop(0)
        slots.append([offsets[s], offsets[s + 1], -1])
    out = []
    while slots:
        out.append([(e, prev) for e, _, prev in slots])
        nxt = []
        for row, (e, end, _) in enumerate(slots):
            if e + 2 < end:
                nxt.append([e + 1, end, row])
            elif queue:
                s = queue.pop(0)
                nxt.append([offsets[s], offsets[s + 1], -1])
        slots = nxt
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 8, 50])
def test_matches_a_naive_simulation_and_uses_every_pair_once(batch_size):
    lengths = np.random.default_rng(batch_size).integers(0, 9, 40)
    sched = session_parallel(_offsets(lengths), batch_size)
    got = [list(zip(sched.event[sched.rows(t)].tolist(), sched.src[sched.rows(t)].tolist()))
           for t in range(sched.n_steps)]
    assert got == _naive(lengths, batch_size)
    assert sched.n_pairs == int(np.maximum(lengths - 1, 0).sum())
    assert len(set(sched.event.tolist())) == sched.n_pairs
    sizes = np.diff(sched.step_ptr)
    assert sizes.max() <= batch_size and (np.diff(sizes) <= 0).all()   # never grows once it shrinks


def test_empty_and_bad_input():
    sched = session_parallel(_offsets([1, 0, 1]), 4)
    assert sched.n_steps == 0 and sched.n_pairs == 0
    with pytest.raises(ValueError):
        session_parallel(_offsets([2]), 0)
