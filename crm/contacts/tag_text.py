"""How a tag is written: one text cleaned and checked, or several split from one line.

Plain functions (no database), so a command that only filters by a tag loads no models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crm.contacts.normalize import clean_text
from crm.core.errors import InputError

MAX_TAG_CHARS = 40
_SPACES = re.compile(r"\s+")
# Separators people type between tags; not allowed inside one.
_SEPARATORS = ",，、;；"
_SPLIT = re.compile(f"[{_SEPARATORS}]")


def clean_tag(raw: str) -> str:
    """A tag as stored: normalized, inner whitespace collapsed; InputError names what is wrong."""
    tag = _SPACES.sub(" ", clean_text(raw))
    if not tag:
        raise InputError("error.contacts.tag_empty")
    if len(tag) > MAX_TAG_CHARS:
        raise InputError("error.contacts.tag_too_long", tag=tag[:20], limit=MAX_TAG_CHARS)
    if any(ch in _SEPARATORS or not ch.isprintable() for ch in tag):
        raise InputError("error.contacts.tag_separator", tag=tag)
    return tag


def split_tags(raw: str) -> list[str]:
    """Tags from one text such as ``"高意向, 宝妈、VIP"`` (empty parts ignored)."""
    parts = _SPLIT.split(raw)
    return clean_tags(p for p in parts if p.strip())


def clean_tags(raw: Iterable[str]) -> list[str]:
    """Each tag cleaned, duplicates dropped, first spelling kept, order kept."""
    out: dict[str, None] = {}
    for tag in raw:
        out.setdefault(clean_tag(tag), None)
    return list(out)
