"""The audit page's details column in words: a label per known field, codes as their words,
moments in local time. A field this page does not know still shows, as ``field: value``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.i18n import keyed_text
from flows.web.breakdown import word_for

Words = Callable[[str], str]

# The catalog prefix that names the codes a field holds. "from" and "to" hold roles when a
# role changes and tiers everywhere else (see _prefix).
_CODES = {
    "tier": "tier",
    "from": "tier",
    "to": "tier",
    "status": "queue",
    "kind": "event",
    "kinds": "identity",
    "channel": "platform",
    "role": "role",
    "how": "claim_how",
    "via": "via",
    "theme": "theme",
}
_ROLE_CHANGES = frozenset({"user.role"})
_USERS = frozenset({"to_user_id", "from_user_id", "owner_user_ids"})
_TIMES = frozenset({"until", "at"})
# Mappings whose keys are themselves named in the catalog under this prefix.
_PARTS = {"counts": "erased", "before": "cap", "after": "cap"}
# Fields read in pairs, in this order (JSONB keeps no order); every other field after them,
# by name.
_FIRST = ("from", "to", "before", "after", "merged", "into", "from_user_id", "to_user_id")
MAX_LISTED = 10  # a dismissal may name a thousand rows: the first few and how many


@dataclass(frozen=True)
class Detail:
    """One field of an audit entry as a manager reads it."""

    label: str
    value: str


def detail_lines(
    t: Words,
    action: str,
    details: Mapping[str, Any],
    *,
    when: Callable[[datetime], str],
    users: Mapping[int, str],
) -> list[Detail]:
    """Every field of ``details``, in a stable order, labelled and worded."""
    details = dict(details)
    key, params = details.pop("reason_key", None), details.pop("reason_params", None)
    if isinstance(details.get("reason"), str):  # a tier move's why: the catalog's, or as typed
        details["reason"] = keyed_text(t, key, params, details["reason"])
    return [
        Detail(_label(t, name), _value(t, action, name, value, when, users))
        for name, value in sorted(details.items(), key=_reading_order)
    ]


def _reading_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (_FIRST.index(name), "") if name in _FIRST else (len(_FIRST), name)


def _label(t: Words, name: str) -> str:
    key = f"audit_detail.{name}"
    word = t(key)
    return name if word == key else word


def _prefix(action: str, name: str) -> str | None:
    if name in ("from", "to") and action in _ROLE_CHANGES:
        return "role"
    return _CODES.get(name)


def _value(
    t: Words,
    action: str,
    name: str,
    value: Any,
    when: Callable[[datetime], str],
    users: Mapping[int, str],
) -> str:
    if value is None and name == "contacts":
        return t("audit_value.whole_audience")  # a campaign started for all it reaches
    if value is None and name == "channel":
        return t("audit_value.all_channels")  # an opt-out from every channel
    if value is None or value == "" or value == []:
        return t("audit_value.none")
    if isinstance(value, bool):
        return t("audit_value.yes") if value else t("audit_value.no")
    if isinstance(value, list):
        shown = [_value(t, action, name, v, when, users) for v in value[:MAX_LISTED]]
        more = t("audit_value.more").format(n=len(value)) if len(value) > MAX_LISTED else ""
        return t("cli.list_sep").join(shown) + more
    if isinstance(value, Mapping):
        parts_prefix = _PARTS.get(name, "audit_detail")
        parts = [f"{word_for(t, parts_prefix, str(k))} {_plain(v)}" for k, v in value.items()]
        return t("cli.list_sep").join(parts)
    if name in _USERS and isinstance(value, int):
        return users.get(value, f"#{value}")
    if name in _TIMES and isinstance(value, str):
        return _moment(value, when)
    if name == "strategy" and isinstance(value, str):
        return t(value)  # the team page's own words for the strategies (round_robin → 轮流)
    if name == "source" and isinstance(value, str):
        return _optout_source(t, value)
    codes = _prefix(action, name)
    if codes is not None and isinstance(value, str):
        return word_for(t, codes, value)
    return _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return str(value)


def _moment(value: str, when: Callable[[datetime], str]) -> str:
    try:
        return when(datetime.fromisoformat(value))
    except ValueError:
        return value  # not a moment after all: as stored


def _optout_source(t: Words, value: str) -> str:
    # The opt-out records how it came: "unsubscribe link" or "reply <the words sent>".
    if value.startswith("reply "):
        return t("audit_value.reply").format(text=value.removeprefix("reply "))
    return word_for(t, "optout_source", value.replace(" ", "_"))
