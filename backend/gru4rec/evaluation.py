"""Evaluation of a GRU4Rec model exactly as spec §6, with numpy and Numba only (no torch).

After each event of a test session all training items are ranked and only the immediate next item is
relevant. Test events whose item the model does not know are dropped beforehand (``data.align_to_items``).
Hidden states start at zero in each test session and are carried within it; no dropout, no logQ. Many test
sessions run side by side (the session-parallel layout of training), so each step scores a whole block of
sessions with one matrix product.

``served=True`` ranks in the served setting (ranking_metrics: the session's seen items left out, a target among
them a miss).
"""
from __future__ import annotations

import numpy as np

from backend.gru4rec.batches import session_parallel
from backend.gru4rec.ranking_metrics import (CUTOFFS, both_protocols, conservative_ranks, metrics_from_ranks,
                                            served_ranks)
from backend.gru4rec.weights import GRU4RecWeights, gru_step
from backend.session_data import SessionData


def prediction_mask(position: np.ndarray, first_target: int) -> np.ndarray:
    """Which pairs count: the target's 1-based position in its session (input position + 2) is at least
    ``first_target`` (2 = predict from the second item on; 3 = from the third, as retailrocket-cgenet asks)."""
    if first_target < 2:
        raise ValueError("first_target must be at least 2 (the first item of a session has no prefix)")
    return position + 2 >= first_target


def gru4rec_ranks(weights: GRU4RecWeights, test: SessionData, *, first_target: int = 2,
                  batch_size: int = 256, served: bool = False) -> np.ndarray:
    """(n_predictions,) int64 conservative rank of each target, in schedule order. ``test`` must be aligned
    to the model's items. ``served``: the served setting (module docstring)."""
    standard, in_served = gru4rec_rank_pairs(weights, test, first_target=first_target, batch_size=batch_size,
                                             standard=not served, served=served)
    return in_served if served else standard


def gru4rec_rank_pairs(weights: GRU4RecWeights, test: SessionData, *, first_target: int = 2,
                       batch_size: int = 256, standard: bool = True,
                       served: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(standard ranks, served ranks) from one pass over ``test`` (each None when not asked for)."""
    schedule = session_parallel(test.offsets, batch_size)
    counted = prediction_mask(schedule.position, first_target)
    ranks = np.empty(schedule.n_pairs, np.int64) if standard else None
    hidden = np.empty(schedule.n_pairs, np.int64) if served else None
    Wy, By = np.asarray(weights.Wy), np.asarray(weights.By)
    states = [np.zeros((0, h), np.float32) for h in weights.sizes]
    scores = np.empty((batch_size, weights.n_items), np.float32)
    session_start = np.repeat(test.offsets[:-1], test.lengths).astype(np.int64)
    for t in range(schedule.n_steps):
        rows = schedule.rows(t)
        events = schedule.event[rows]
        src = schedule.src[rows]
        states = [_carry(s, src) for s in states]
        states = gru_step(weights, test.items[events], states)
        M = len(events)
        block = scores[:M]
        np.matmul(states[-1], Wy.T, out=block)
        block += By
        if served:
            out = np.empty(M, np.int64)
            served_ranks(block, test.items[events + 1], test.items, session_start[events],
                         (events + 1).astype(np.int64), out)
            hidden[rows] = out
        if standard:
            out = np.empty(M, np.int64)
            conservative_ranks(block, test.items[events + 1], out)
            ranks[rows] = out
    return (ranks[counted] if standard else None), (hidden[counted] if served else None)


def _carry(prev: np.ndarray, src: np.ndarray) -> np.ndarray:
    h = np.zeros((len(src), prev.shape[1]), np.float32)
    keep = src >= 0
    h[keep] = prev[src[keep]]
    return h


def evaluate_gru4rec(weights: GRU4RecWeights, test: SessionData, *, first_target: int = 2,
                     batch_size: int = 256, cutoffs=CUTOFFS, served: bool = False) -> dict:
    return metrics_from_ranks(gru4rec_ranks(weights, test, first_target=first_target, batch_size=batch_size,
                                            served=served), cutoffs)


def evaluate_gru4rec_both(weights: GRU4RecWeights, test: SessionData, *, first_target: int = 2,
                          batch_size: int = 256, cutoffs=CUTOFFS) -> dict:
    """The standard protocol's metrics with the served setting's under "served" (one pass)."""
    standard, served = gru4rec_rank_pairs(weights, test, first_target=first_target, batch_size=batch_size)
    return both_protocols(standard, served, cutoffs)
