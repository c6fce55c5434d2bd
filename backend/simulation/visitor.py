"""The simulator's visitor: replays one real session page by page, and a small stated model of what a visitor
does on a page besides moving on (the datasets hold clicks only).

Path. The visitor lands on the session's first item, then on every page asks the placement for recommendations
(with the session's history, as the widget does). The list is always seen (a viewable impression is reported).
If the session's true next item is in the list, the visitor clicks it (``rec_click`` with the list's ``rec``,
then the ``view`` of that item, as the widget and the next page send them); otherwise the visitor goes to the
true next item directly (a ``view``). The path never depends on the arm: arms change only *how* the visitor
reaches the next page, so every difference between arms comes from the recommendations.

On each page (every item of the session, the first included), independently:
- plays the item's video with probability ``play_p`` and watches ``U(0.1, 1)`` of its duration
  (``play`` + ``watch``; durations 30-300 s, fixed per item by a hash of its id);
- puts the item in the cart with probability ``cart_p``, and then buys it with probability ``buy_p`` at its
  price (5.00-200.00 EUR, fixed per item by a hash of its id). ``cart`` and ``purchase`` carry no ``rec``
  (a site's own tracking calls do not), so they are attributed by the last-click rule.
The model assumes recommendations do not change what a visitor does once on a page: attributed plays, watch
time, carts and revenue then scale with clicks, and session-wide purchases are the same for every arm in
expectation (a holdout shows no difference there by construction). Draws come from a generator seeded by the
session's number, so a session does the same things whichever arm serves it.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass

CURRENCY = "EUR"


@dataclass(frozen=True)
class VisitorModel:
    play_p: float = 0.3
    cart_p: float = 0.1
    buy_p: float = 0.5

    def describe(self) -> dict:
        return {**asdict(self), "watch_fraction": "U(0.1, 1) of the duration", "duration_s": "30-300 by item",
                "price": f"5.00-200.00 {CURRENCY} by item", "impressions": "every list is seen",
                "click": "the true next item when it is in the list"}


def _item_hash(item_id: str, purpose: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{purpose}:{item_id}".encode(), digest_size=8).digest(), "big")


def item_price(item_id: str) -> float:
    """The item's simulated price in EUR, 5.00-200.00, fixed by its id."""
    return 5.0 + (_item_hash(item_id, "price") % 19_501) / 100.0


def item_duration(item_id: str) -> int:
    """The item's simulated video length in seconds, 30-300, fixed by its id."""
    return 30 + _item_hash(item_id, "duration") % 271


def page_events(model: VisitorModel, rng: random.Random, item_id: str) -> list[dict]:
    """What the visitor does on the page of ``item_id`` after its view (module docstring); the draws are
    taken in a fixed order so that the same generator state gives the same events."""
    play, fraction, cart, buy = rng.random(), rng.uniform(0.1, 1.0), rng.random(), rng.random()
    events: list[dict] = []
    if play < model.play_p:
        events.append({"type": "play", "item": item_id})
        events.append({"type": "watch", "item": item_id, "seconds": round(fraction * item_duration(item_id), 1)})
    if cart < model.cart_p:
        events.append({"type": "cart", "item": item_id})
        if buy < model.buy_p:
            events.append({"type": "purchase", "item": item_id, "value": item_price(item_id),
                           "currency": CURRENCY})
    return events
