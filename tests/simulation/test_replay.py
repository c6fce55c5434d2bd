"""The simulator's visitor plans and visitor model: paired plans put every session in every arm exactly once,
plain plans leave the split to the hash; the stated page model draws what it says."""
import random
from collections import Counter

import pytest

from backend.experiments.assignment import RunningExperiment
from backend.simulation.replay import plan_visits, session_id
from backend.simulation.visitor import VisitorModel, item_duration, item_price, page_events
from backend.store.experiments import Arm
from backend.web.event_schema import SESSION_RE, check_events

SESSIONS = [[f"i{k}", f"i{k + 1}", f"i{k + 2}"] for k in range(300)]
EXP = RunningExperiment(1, "plan-salt", (Arm("a", "popular"), Arm("b", "item_to_item"), Arm("c", "holdout", 2)))


def test_plain_plan_is_one_visit_per_session_with_widget_like_ids():
    visits = plan_visits(SESSIONS, seed=3)
    assert [v.items for v in visits] == SESSIONS and [v.number for v in visits] == list(range(300))
    assert len({v.session for v in visits}) == 300 and all(SESSION_RE.match(v.session) for v in visits)
    assert visits == plan_visits(SESSIONS, seed=3) and visits != plan_visits(SESSIONS, seed=4)


def test_paired_plan_puts_every_session_in_every_arm_once():
    visits = plan_visits(SESSIONS, seed=3, paired=EXP)
    assert len(visits) == 3 * len(SESSIONS)
    arms_of = Counter((v.number, EXP.assign(v.session).name) for v in visits)
    assert set(arms_of.values()) == {1} and len(arms_of) == 3 * len(SESSIONS)
    assert all(v.items == SESSIONS[v.number] for v in visits)
    assert len({v.session for v in visits}) == len(visits)
    first_arms = [EXP.assign(v.session).name for v in visits[:60]]
    assert len(set(first_arms)) == 3                      # shuffled: arms interleave in time


def test_session_ids_are_reproducible_and_distinct():
    assert session_id(1, 2) == session_id(1, 2, 0) != session_id(1, 2, 1) != session_id(2, 2)


def test_page_model_draws_what_it_states():
    model = VisitorModel()
    rng = random.Random(5)
    counts = Counter()
    pages = 20_000
    for k in range(pages):
        events = page_events(model, rng, f"item-{k % 50}")
        counts.update(e["type"] for e in events)
        check_events(events, now_ms=0)                   # every event is one the API accepts
        for e in events:
            if e["type"] == "watch":
                assert 0.1 * item_duration(e["item"]) - 0.05 <= e["seconds"] <= item_duration(e["item"]) + 0.05
            if e["type"] == "purchase":
                assert e["value"] == item_price(e["item"]) and e["currency"] == "EUR"
    # 3 standard deviations of a binomial count either side of the stated probabilities
    for kind, p in (("play", 0.3), ("watch", 0.3), ("cart", 0.1), ("purchase", 0.05)):
        sd = (pages * p * (1 - p)) ** 0.5
        assert abs(counts[kind] - pages * p) <= 3 * sd, (kind, counts[kind])


def test_same_draws_give_the_same_visitor():
    a = [page_events(VisitorModel(), random.Random("1:7"), "x") for _ in range(3)]
    b = [page_events(VisitorModel(), random.Random("1:7"), "x") for _ in range(3)]
    assert a == b


@pytest.mark.parametrize("item", ["1", "214536502", "SKU-123"])
def test_item_price_and_duration_ranges(item):
    assert 5.0 <= item_price(item) <= 200.0 and round(item_price(item), 2) == item_price(item)
    assert 30 <= item_duration(item) <= 300
