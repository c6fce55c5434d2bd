"""The promotion gate of scheduled retraining: a new model goes live only if its served Recall@20 on the newest
held-out day is no worse than the live model's on the same day. Served: ranked as a placement shows it (the
page's item and the session's earlier items left out, a target among them a miss; ranking_metrics), since that
is what visitors get; the standard protocol's Recall@20 rewards repeats the default filters never show.

Both models are scored on exactly the same predictions: the day's events whose items both models know (a model
cannot rank an item it has never seen, and dropping such events for one model only would compare two different
tests). Without a live GRU4Rec model the new one passes; without any prediction to compare on, it does not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from backend.retraining.holdout import gru4rec_metrics, model_data_end, model_item_ids, restrict_to_items
from backend.session_data import SessionData

METRIC = "recall@20"           # of the served setting (metrics["served"])
METRIC_NAME = "served recall@20"


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    metric: str = METRIC_NAME
    new: float | None = None
    live: float | None = None
    live_model_id: int | None = None
    predictions: int = 0
    live_saw_day: bool = False       # the live model's training data reaches into the held-out day

    def as_json(self) -> dict:
        return asdict(self)


def decide(new: float, live: float | None) -> bool:
    """The rule itself: no worse than the live model (ties pass)."""
    return live is None or new >= live


def compare_on_day(new_path: str | Path, live_path: str | Path | None, live_model_id: int | None,
                   test: SessionData) -> GateDecision:
    if live_path is None:
        return GateDecision(True, "no live model to compare with")
    try:
        live_items = model_item_ids(live_path)
    except Exception as exc:  # an unreadable live artifact cannot be beaten or matched: say so, do not promote
        return GateDecision(False, f"the live model cannot be read ({exc})", live_model_id=live_model_id)
    common = set(model_item_ids(new_path)) & set(live_items)
    day = restrict_to_items(test, common)
    span = test.time_range()
    saw_day = span is not None and (model_data_end(live_path) or float("-inf")) >= span[0]
    new_m, live_m = gru4rec_metrics(new_path, day), gru4rec_metrics(live_path, day)
    n = int(new_m["predictions"])
    if n == 0:
        return GateDecision(False, "no prediction on the held-out day to compare on", new=None, live=None,
                            live_model_id=live_model_id)
    new, live = new_m["served"][METRIC], live_m["served"][METRIC]
    passed = decide(new, live)
    verb = "no worse than" if passed else "worse than"
    note = ("; the live model was trained on data of this day, so its score is optimistic" if saw_day else "")
    return GateDecision(passed, f"{METRIC_NAME} {new:.4f} is {verb} the live model's {live:.4f} "
                                f"on the same {n} predictions (seen items not shown, as a placement serves; "
                                f"standard recall@20 {new_m[METRIC]:.4f} against {live_m[METRIC]:.4f}){note}",
                        new=new, live=live,
                        live_model_id=live_model_id, predictions=n, live_saw_day=saw_day)
