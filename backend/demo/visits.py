"""Realistic demo visits, deterministically: shoppers wander within a category (close styles, popular items)
and now and then into a related one; viewers follow a series episode by episode or drift to related channels."""
from __future__ import annotations

import random
from collections import defaultdict

from backend.demo.inventory import RELATED, RELATED_CHANNELS, DemoItem


def _pick(rng: random.Random, items: list[DemoItem], exclude: str | None = None) -> DemoItem:
    pool = [it for it in items if it.id != exclude] or items
    return rng.choices(pool, weights=[it.popularity for it in pool])[0]


def shop_sessions(items: list[DemoItem], n_sessions: int, rng: random.Random) -> list[list[str]]:
    by_cat: dict[str, list[DemoItem]] = defaultdict(list)
    for it in items:
        by_cat[it.category].append(it)
    categories = list(by_cat)
    cat_weight = [sum(it.popularity for it in by_cat[c]) for c in categories]
    sessions = []
    for _ in range(n_sessions):
        length = min(30, 2 + int(rng.expovariate(1 / 4)))
        cur = _pick(rng, by_cat[rng.choices(categories, weights=cat_weight)[0]])
        visit = [cur]
        while len(visit) < length:
            u = rng.random()
            if u < 0.62:       # same category, similar style
                same = [it for it in by_cat[cur.category] if it.attributes["style"] == cur.attributes["style"]]
                cur = _pick(rng, same if rng.random() < 0.7 else by_cat[cur.category], exclude=cur.id)
            elif u < 0.85:     # a related category
                cur = _pick(rng, by_cat[rng.choice(RELATED[cur.category])])
            elif u < 0.93:     # back to something seen before
                cur = rng.choice(visit)
            else:              # anything popular
                cur = _pick(rng, items)
            if cur.id != visit[-1].id:
                visit.append(cur)
        sessions.append([it.id for it in visit])
    return sessions


def video_sessions(items: list[DemoItem], n_sessions: int, rng: random.Random) -> list[list[str]]:
    series: dict[str, list[DemoItem]] = defaultdict(list)
    by_channel: dict[str, list[DemoItem]] = defaultdict(list)
    for it in items:
        series[it.attributes["series"]].append(it)
        by_channel[it.category].append(it)
    firsts = [eps[0] for eps in series.values()]
    sessions = []
    for _ in range(n_sessions):
        length = min(25, 2 + int(rng.expovariate(1 / 3.5)))
        cur = _pick(rng, firsts) if rng.random() < 0.6 else _pick(rng, items)
        visit = [cur]
        while len(visit) < length:
            eps = series[cur.attributes["series"]]
            nxt = cur.attributes["episode"]          # index of the next episode
            u = rng.random()
            if u < 0.6 and nxt < len(eps):
                cur = eps[nxt]
            elif u < 0.8:
                cur = _pick(rng, [e for e in firsts if e.category == cur.category], exclude=cur.id)
            elif u < 0.92:
                cur = _pick(rng, by_channel[rng.choice(RELATED_CHANNELS[cur.category])])
            else:
                cur = _pick(rng, items)
            if cur.id != visit[-1].id:
                visit.append(cur)
        sessions.append([it.id for it in visit])
    return sessions


def demo_sessions(items: list[DemoItem], n_shop: int = 16_000, n_video: int = 8_000,
                  seed: int = 2024) -> list[list[str]]:
    """Shop and video visits interleaved as they would arrive (deterministic for a given seed)."""
    rng = random.Random(seed)
    shop = shop_sessions([it for it in items if it.kind == "product"], n_shop, rng) if n_shop else []
    video = video_sessions([it for it in items if it.kind == "video"], n_video, rng) if n_video else []
    merged = shop + video
    rng.shuffle(merged)
    return merged
