"""Why input was quarantined or skipped: a catalog key and its parameters, and the English sentence.

The quarantine stores all three (``quarantine.reason_key``, ``reason_params``, ``reason``).
Pages, the CLI and run summaries say the key in the reader's language; the English sentence
stays for logs, exports and SQL readers, and names the entry in its fingerprint, so it reads
exactly as it always has. Reports count quarantined rows by the key's :attr:`Why.code`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from crm.contacts.normalize import IdentityProblem


class Reason(StrEnum):
    """A quarantine or skip reason; the value is its key in the message catalog."""

    OVERSIZED_FIELD = "reason.oversized_field"
    OVERSIZED_FIELDS = "reason.oversized_fields"
    UNKNOWN_EVENT = "reason.unknown_event"
    NO_IDENTITY = "reason.no_identity"
    BAD_IDENTITY = "reason.bad_identity"
    UNREADABLE_TIME = "reason.unreadable_time"
    UNDECODABLE = "reason.undecodable"
    UNREADABLE_CSV = "reason.unreadable_csv"
    LINE_TOO_LONG = "reason.line_too_long"
    NOT_JSON = "reason.not_json"
    NOT_OBJECT = "reason.not_object"
    TOO_DEEP = "reason.too_deep"
    NUMBER_LONG = "reason.number_long"
    JSON_CONSTANT = "reason.json_constant"
    NUMBER_RANGE = "reason.number_range"
    NAN = "reason.nan"
    NO_PLATFORM = "reason.no_platform"
    PEER_MIXED = "reason.peer_mixed"
    NO_USERID = "reason.no_userid"
    FIELD_TOO_LONG = "reason.field_too_long"
    LEAD_NO_PLATFORM = "reason.lead_no_platform"
    LEAD_NO_POST = "reason.lead_no_post"
    POST_TOO_LONG = "reason.post_too_long"
    EVENT_NOT_KNOWN = "reason.event_not_known"
    TEXT_NUL = "reason.text_nul"
    TEXT_SURROGATE = "reason.text_surrogate"
    NAME_NUL = "reason.name_nul"
    NAME_SURROGATE = "reason.name_surrogate"


# The English sentences, as the quarantine has always stored them.
SENTENCES: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.OVERSIZED_FIELD: "oversized field: {field} ({size} characters, limit {limit})",
        Reason.OVERSIZED_FIELDS: "oversized field: {fields}",
        Reason.UNKNOWN_EVENT: "unknown event kind: {kind}",
        Reason.NO_IDENTITY: "no usable identity (no phone, WeChat id, email or handle)",
        Reason.BAD_IDENTITY: "no usable identity ({detail})",
        Reason.UNREADABLE_TIME: "unreadable time: {value!r}",
        Reason.UNDECODABLE: "undecodable bytes ({encoding})",
        Reason.UNREADABLE_CSV: "unreadable CSV row: {detail}",
        Reason.LINE_TOO_LONG: "line longer than {limit} characters",
        Reason.NOT_JSON: "invalid JSON: {detail}",
        Reason.NOT_OBJECT: "not a JSON object",
        Reason.TOO_DEEP: "nested deeper than {limit} levels",
        Reason.NUMBER_LONG: "number longer than {limit} digits",
        Reason.JSON_CONSTANT: "non-standard JSON number: {name}",
        Reason.NUMBER_RANGE: "number out of range (Infinity)",
        Reason.NAN: "non-standard JSON number (NaN or Infinity)",
        Reason.NO_PLATFORM: "self-media lead without a platform (give --platform or a 平台 column)",
        Reason.PEER_MIXED: "group {group} is not the peer group {peer} (--peer): the list mixes"
        " groups",
        Reason.NO_USERID: "member without userid",
        Reason.FIELD_TOO_LONG: "field too long: {fields}",
        Reason.LEAD_NO_PLATFORM: "lead without platform",
        Reason.LEAD_NO_POST: "lead without post (post, post_url or post_id)",
        Reason.POST_TOO_LONG: "post longer than {limit} characters",
        Reason.EVENT_NOT_KNOWN: "event must be one of {kinds}",
        Reason.TEXT_NUL: "text at {where} holds a NUL character (\\u0000), which cannot be stored",
        Reason.TEXT_SURROGATE: "text at {where} holds a lone surrogate ({code}), which is not a"
        " character",
        Reason.NAME_NUL: "field name {where} holds a NUL character (\\u0000), which cannot be"
        " stored",
        Reason.NAME_SURROGATE: "field name {where} holds a lone surrogate ({code}), which is not a"
        " character",
    }
)

# What reports count besides the reasons: a bad row read again, quarantined before.
ALREADY_QUARANTINED = "already_quarantined"


@dataclass(frozen=True)
class Why:
    """A reason with its parameters (plain JSON values) and its English sentence."""

    key: Reason
    text: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def code(self) -> str:
        """The reason's kind without its details, as import reports count it."""
        return self.key.value.removeprefix("reason.")

    @property
    def stored_params(self) -> dict[str, Any]:
        """What ``quarantine.reason_params`` keeps."""
        return dict(self.params)

    def __str__(self) -> str:
        return self.text


class Refusal(ValueError):
    """A ValueError that carries its reason (readers raise it deep and quarantine with it)."""

    def __init__(self, why: Why) -> None:
        super().__init__(why.text)
        self.why = why


def why(key: Reason, **params: Any) -> Why:
    """A reason with its parameters and English sentence."""
    return Why(key, SENTENCES[key].format(**params), params)


def bad_identity(problems: Sequence[IdentityProblem]) -> Why:
    """No matchable identity; each identity that was there is named with what is wrong."""
    if not problems:
        return why(Reason.NO_IDENTITY)
    return Why(
        Reason.BAD_IDENTITY,
        SENTENCES[Reason.BAD_IDENTITY].format(detail="; ".join(p.text for p in problems)),
        {
            "problems": [
                {"field": p.field, "kind": p.kind, "key": p.key, "value": p.value} for p in problems
            ]
        },
    )
