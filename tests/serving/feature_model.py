"""A tiny GRU4Rec bundle trained with item features (shoes follow shoes, hats follow hats), for serving tests."""
from pathlib import Path

import numpy as np

from backend.gru4rec.params import Hyperparameters
from backend.session_data import SessionData
from backend.training import train_bundle


def catalogue(extra: int = 0) -> list[dict]:
    rows = [{"id": f"{kind}-{k}", "title": f"{kind} model {k}", "category": f"Wear > {kind}", "price": 20.0 + k,
             "attributes": {"brand": f"{kind}-maker"}} for kind in ("shoe", "hat") for k in range(12)]
    rows += [{"id": f"new-shoe-{k}", "title": f"shoe model new {k}", "category": "Wear > shoe", "price": 25.0,
              "attributes": {"brand": "shoe-maker"}} for k in range(extra)]
    return rows


def train_feature_bundle(out: Path) -> Path:
    rng = np.random.default_rng(0)
    sessions = [[f"{kind}-{k}" for k in rng.integers(0, 12, 5)] for kind in rng.choice(["shoe", "hat"], 300)]
    p = Hyperparameters(layers=(16,), batch_size=16, n_sample=32, sample_store_size=3200, n_epochs=3,
                        learning_rate=0.1, item_features=True, id_dropout=0.5, feature_min_count=1)
    train_bundle(SessionData.from_sessions(sessions), p, out, feature_records=catalogue())
    return out
