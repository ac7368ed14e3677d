"""Assignment strategies as plain functions: pool items and each person's room → who gets what.

``room`` maps a person's id to how many more items they may receive now (their claim limits'
headroom); only people with room take part. Every strategy returns ``{user id: [item ids]}``
in the order the items came (the pool's claim order) and never exceeds anyone's room.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crm.sales.vocabulary import AssignStrategy

Picks = dict[int, list[int]]


@dataclass(frozen=True)
class PoolItem:
    """A pool item as the strategies see it."""

    item_id: int
    contact_id: int


def round_robin(items: Sequence[PoolItem], room: Mapping[int, int], *, last: int | None) -> Picks:
    """Deal items in id order of people, starting after ``last`` (who got the previous one)."""
    left = {uid: n for uid, n in room.items() if n > 0}
    order = sorted(left)
    if not order:
        return {}
    pos = next((k for k, uid in enumerate(order) if last is not None and uid > last), 0)
    picks: Picks = {}
    for item in items:
        for _ in range(len(order)):
            uid = order[pos % len(order)]
            pos += 1
            if left[uid] > 0:
                picks.setdefault(uid, []).append(item.item_id)
                left[uid] -= 1
                break
        else:
            break
    return picks


def by_owner(
    items: Sequence[PoolItem], room: Mapping[int, int], owners: Mapping[int, int]
) -> Picks:
    """Each item to the owner of its contact's first source (``owners``: contact → user)."""
    left = dict(room)
    picks: Picks = {}
    for item in items:
        uid = owners.get(item.contact_id)
        if uid is not None and left.get(uid, 0) > 0:
            picks.setdefault(uid, []).append(item.item_id)
            left[uid] -= 1
    return picks


def by_load(items: Sequence[PoolItem], room: Mapping[int, int], load: Mapping[int, int]) -> Picks:
    """Each item to whoever holds least right now (``load``: user → items held); ties by id."""
    left = {uid: n for uid, n in room.items() if n > 0}
    held = {uid: load.get(uid, 0) for uid in left}
    picks: Picks = {}
    for item in items:
        candidates = [uid for uid in left if left[uid] > 0]
        if not candidates:
            break
        uid = min(candidates, key=lambda u: (held[u], u))
        picks.setdefault(uid, []).append(item.item_id)
        left[uid] -= 1
        held[uid] += 1
    return picks


def items_to_consider(strategy: AssignStrategy, total_room: int) -> int:
    """How many pool items to read: owners may skip many items, so look further for them."""
    return total_room * 20 if strategy is AssignStrategy.OWNER else total_room
