"""Grouping a batch's records into people: which existing or new contact each record is.

Records, their inviters, existing contacts and shared identities form a graph; each connected
component is one person. A component touching two or more existing contacts merges them: the
oldest (lowest id, created first) survives. Pure: the caller looks the identities up and
writes what this decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm.intake.prepare import Key

# Graph nodes: a record ("s", n), the inviter named by record n ("r", n), a contact ("c", id).
_Node = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Member:
    """What grouping needs of one record: its identities, its inviter's, its source's referrer."""

    keys: tuple[Key, ...]
    ref_keys: tuple[Key, ...] = ()
    source_referrer: int | None = None  # the contact whose invite code the source is


@dataclass(frozen=True, slots=True)
class People:
    """Who the records are. People are numbered; ``contact_ids[p]`` is person p's existing
    contact, or None for a new one (new people come after existing ones, in the order the
    records first name them)."""

    contact_ids: tuple[int | None, ...]
    person_of: tuple[int, ...]  # per record: its person
    referrer_of: tuple[int | None, ...]  # per record: the person who invited it, if another
    merges: tuple[tuple[int, int], ...]  # (loser, winner) contact ids, sorted

    @property
    def new_count(self) -> int:
        """How many people need a new contact."""
        return sum(1 for cid in self.contact_ids if cid is None)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        parent = self.parent.setdefault(node, node)
        if parent == node:
            return node
        root = self.find(parent)
        self.parent[node] = root
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def root(self, node: Any) -> Any:
        # A node never linked to anything is its own component, and costs nothing.
        return self.find(node) if node in self.parent else node


def group_people(members: Sequence[Member], known: Mapping[Key, int]) -> People:
    """Group records into people, given the contact owning each already known identity."""
    uf, has_ref = _link(members, known)
    contact_of, merges = _oldest_contacts(uf)
    persons: dict[Any, int] = {root: n for n, root in enumerate(contact_of)}
    contact_ids: list[int | None] = list(contact_of.values())

    def person(root: Any) -> int:
        found = persons.get(root)
        if found is None:  # a new contact, numbered in order of first appearance
            found = persons[root] = len(contact_ids)
            contact_ids.append(None)
        return found

    person_of: list[int] = []
    referrer_of: list[int | None] = []
    for n in range(len(members)):
        own = person(uf.root(("s", n)))
        ref = person(uf.root(("r", n))) if has_ref[n] else None
        person_of.append(own)
        referrer_of.append(ref if ref != own else None)
    return People(tuple(contact_ids), tuple(person_of), tuple(referrer_of), tuple(merges))


def _link(members: Sequence[Member], known: Mapping[Key, int]) -> tuple[_UnionFind, list[bool]]:
    """The graph's components, and which records name an inviter.

    Most records share nothing with the rest of the batch, so only identities seen twice (or
    already owned by a contact) cost a union; a lone record is its own component.
    """
    uf = _UnionFind()
    owner: dict[Key, _Node] = {}

    def link(node: _Node, key: Key) -> None:
        first = owner.setdefault(key, node)
        if first is not node and first != node:
            uf.union(first, node)

    has_ref: list[bool] = []
    for n, member in enumerate(members):
        for key in member.keys:
            link(("s", n), key)
        if member.ref_keys:
            for key in member.ref_keys:
                link(("r", n), key)
        elif member.source_referrer is not None:
            uf.union(("r", n), ("c", member.source_referrer))
        has_ref.append(bool(member.ref_keys) or member.source_referrer is not None)
    matchable = {key for m in members for key in (*m.keys, *m.ref_keys)}
    for key, cid in known.items():
        if key in matchable:
            link(("c", cid), key)
    return uf, has_ref


def _oldest_contacts(uf: _UnionFind) -> tuple[dict[Any, int], list[tuple[int, int]]]:
    """Each component's surviving contact (the oldest), and the merges of the others into it."""
    contacts_at: dict[Any, set[int]] = {}
    for node in list(uf.parent):
        if node[0] == "c":
            contacts_at.setdefault(uf.find(node), set()).add(node[1])
    contact_of: dict[Any, int] = {}
    merges: list[tuple[int, int]] = []
    for root, found in contacts_at.items():
        contacts = sorted(found)
        contact_of[root] = contacts[0]
        merges += [(loser, contacts[0]) for loser in contacts[1:]]
    merges.sort()
    return contact_of, merges
