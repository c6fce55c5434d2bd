"""The algorithms a placement (or an experiment's arm) can serve with: one list, one name each.

The name is what placements and experiments store, what the admin page and the command line take, and what a
recommendation answer reports in ``algorithm``. A few older spellings are still accepted wherever a name is
read (``canonical``): ``gru4rec`` (the answer name of ``gru4rec_next`` before 2026-12) and the simulator's
hyphenated arm names.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Algorithm:
    name: str
    label: str                       # for the admin page
    aliases: tuple[str, ...] = ()    # other spellings accepted on input


ALGORITHMS = (
    Algorithm("gru4rec_next", "GRU4Rec next: what this visit goes on to", ("gru4rec", "gru4rec-next")),
    Algorithm("gru4rec_sequence", "GRU4Rec sequence: an up-next playlist, step by step", ("gru4rec-sequence",)),
    Algorithm("gru4rec_blend", "GRU4Rec + item-to-item blend: next items, nudged towards the neighbours of "
                               "the page item and the visit's last items", ("gru4rec-blend",)),
    Algorithm("item_to_item", "Item-to-item: neighbours of the page's item", ("item-to-item", "item-knn")),
    Algorithm("popular", "Popular: the most viewed items"),
)
NAMES = tuple(a.name for a in ALGORITHMS)
GRU4REC = ("gru4rec_next", "gru4rec_sequence", "gru4rec_blend")    # the ones that need the site's GRU4Rec model
FALLBACKS = ("item_to_item", "popular")           # what may fill a list the algorithm leaves short
HOLDOUT = "holdout"     # an experiment arm that shows no widget: the answer's list is empty
ARM_CHOICES = NAMES + (HOLDOUT,)                  # what an experiment's arm may be
LABELS = {a.name: a.label for a in ALGORITHMS}
_CANONICAL = {spelling: a.name for a in ALGORITHMS for spelling in (a.name, *a.aliases)} | {HOLDOUT: HOLDOUT}


def canonical(name: str) -> str | None:
    """The algorithm's name for ``name`` or one of its older spellings (``holdout`` included); None if unknown."""
    return _CANONICAL.get(name) if isinstance(name, str) else None


def spellings() -> tuple[str, ...]:
    """Every accepted spelling, names first."""
    return tuple(dict.fromkeys((*ARM_CHOICES, *_CANONICAL)))
