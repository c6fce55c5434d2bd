"""A deterministic demo catalogue: a storefront (products in categories, with styles and prices) and a video
site (channels, series of episodes). Real datasets cannot ship in the repository, so the demo makes its own."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

SHOP_CATEGORIES = {
    # category: (nouns, price range in EUR)
    "Shoes": (["Runner", "Sneaker", "Loafer", "Hiking Boot", "Sandal", "Trail Shoe"], (39, 189)),
    "Jackets": (["Parka", "Rain Jacket", "Bomber", "Fleece", "Down Vest", "Softshell"], (59, 349)),
    "Bags": (["Backpack", "Tote", "Duffel", "Messenger Bag", "Sling", "Weekender"], (25, 220)),
    "Watches": (["Field Watch", "Diver", "Chronograph", "Smartwatch", "Dress Watch", "Pilot Watch"], (79, 690)),
    "Headphones": (["Earbuds", "Over-Ear", "On-Ear", "Studio Monitor", "Sport Buds", "Noise Canceller"], (29, 399)),
    "Coffee": (["Espresso Blend", "Pour-Over Kit", "Grinder", "Moka Pot", "Single Origin", "Cold Brew Set"], (9, 249)),
    "Books": (["Cookbook", "Field Guide", "Novel", "Atlas", "Sketchbook", "Travel Journal"], (12, 59)),
    "Plants": (["Monstera", "Fern", "Cactus", "Olive Tree", "Snake Plant", "Herb Garden"], (8, 120)),
}
RELATED = {"Shoes": ["Jackets", "Bags"], "Jackets": ["Shoes", "Bags"], "Bags": ["Watches", "Jackets"],
           "Watches": ["Bags", "Headphones"], "Headphones": ["Books", "Watches"], "Coffee": ["Books", "Plants"],
           "Books": ["Coffee", "Plants"], "Plants": ["Coffee", "Books"]}
STYLES = ["Alpine", "Urban", "Classic", "Nordic", "Coastal", "Studio"]
MATERIALS = ["Merino", "Canvas", "Leather", "Recycled", "Bamboo", "Linen", "Titanium", "Cork"]
COLORS = ["black", "sand", "forest", "navy", "rust", "slate", "ivory", "olive"]

VIDEO_CHANNELS = {
    "Cooking": ["Weeknight Pasta", "Bread from Scratch", "Street Food Tour", "One-Pot Dinners", "Vegan Basics"],
    "Travel": ["Rail Across Europe", "Island Hopping", "Mountain Huts", "Night Markets", "Slow Cities"],
    "Science": ["Tiny Physics", "Deep Ocean", "Space Weather", "Brain Tricks", "Chemistry at Home"],
    "Music": ["Guitar in 30 Days", "Synth Lab", "Rhythm Basics", "Studio Sessions", "Choir Stories"],
    "Fitness": ["Morning Mobility", "Kettlebell Club", "Run Your First 10K", "Yoga for Desks", "Strength 101"],
    "Gaming": ["Speedrun Secrets", "Indie Gems", "Retro Rewind", "Strategy School", "Cozy Builds"],
}
RELATED_CHANNELS = {"Cooking": ["Travel"], "Travel": ["Cooking", "Music"], "Science": ["Gaming", "Fitness"],
                    "Music": ["Travel", "Gaming"], "Fitness": ["Cooking", "Science"], "Gaming": ["Science", "Music"]}
EPISODE_WORDS = ["Getting Started", "The Basics", "Going Further", "Common Mistakes", "A Day In",
                 "Behind the Scenes", "Questions Answered", "The Finale"]
EPISODES_PER_SERIES = 8
PRODUCTS_PER_CATEGORY = 36


@dataclass(frozen=True)
class DemoItem:
    id: str
    title: str
    url: str
    image: str
    price: float | None
    currency: str | None
    category: str
    kind: str                      # "product" or "video"
    popularity: float              # relative, drives the session generator
    attributes: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The catalogue record (api.md) the demo imports."""
        return {"id": self.id, "title": self.title, "url": self.url, "image": self.image, "price": self.price,
                "currency": self.currency, "category": self.category, "available": True,
                "attributes": dict(self.attributes, kind=self.kind)}


def shop_catalog(seed: int = 7) -> list[DemoItem]:
    rng = random.Random(seed)
    items = []
    for c, (category, (nouns, (lo, hi))) in enumerate(SHOP_CATEGORIES.items()):
        for k in range(PRODUCTS_PER_CATEGORY):
            style = k % len(STYLES)
            noun = nouns[(k // len(STYLES)) % len(nouns)]
            material = MATERIALS[rng.randrange(len(MATERIALS))]
            item_id = f"SKU-{100 * (c + 1) + k}"
            price = round(lo * (hi / lo) ** rng.random(), 0) - 0.1
            items.append(DemoItem(
                id=item_id, title=f"{STYLES[style]} {material} {noun}", url=f"/demo/shop/p/{item_id}",
                image=f"/demo/img/{item_id}.svg", price=price, currency="EUR", category=category, kind="product",
                popularity=1.0 / (1 + k) ** 0.8 * rng.uniform(0.5, 1.5),
                attributes={"style": STYLES[style], "color": COLORS[rng.randrange(len(COLORS))]}))
    return items


def video_catalog(seed: int = 11) -> list[DemoItem]:
    rng = random.Random(seed)
    items, n = [], 0
    for channel, series_list in VIDEO_CHANNELS.items():
        for s, series in enumerate(series_list):
            for e in range(EPISODES_PER_SERIES):
                n += 1
                item_id = f"V-{n:03d}"
                items.append(DemoItem(
                    id=item_id, title=f"{series} · {e + 1}. {EPISODE_WORDS[e]}", url=f"/demo/video/watch/{item_id}",
                    image=f"/demo/img/{item_id}.svg", price=None, currency=None, category=channel, kind="video",
                    popularity=(1.0 / (1 + s) ** 0.6) * (0.85 ** e) * rng.uniform(0.6, 1.4),
                    attributes={"series": series, "episode": e + 1, "duration_s": rng.randrange(240, 1500)}))
    return items


def demo_catalog() -> list[DemoItem]:
    return shop_catalog() + video_catalog()
