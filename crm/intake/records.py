"""The contract between source adapters and the ingestion service.

An adapter turns a file, an API or a web form into :class:`RawItem` objects, each with a
stable ``record_key`` (re-reading the same input yields the same keys), attached to one
:class:`SourceSpec`. :func:`crm.intake.pipeline.ingest_items` stores them in the append-only
raw log and resolves them into contacts, identities, touches and events.

Payload keys the resolver understands (all optional, strings unless noted):

    name / nickname          the contact's display name (kept verbatim, emoji included)
    phone, wechat_id, wecom_external_userid, email, handle (platform handle)
    platform                 self-media platform of the handle
    occurred_at              ISO-8601 time of the record (joined, posted, signed up)
    message                  text the contact wrote (intent keywords are scored later)
    note                     free text from the operator
    answers                  dict: screening question -> answer (门槛)
    consent                  bool: explicit marketing consent given on a sign-up form
    consent_channel          the one channel the consent covers (default: all channels)
    consent_via              how it was given, kept as the consent's source (default: form)
    event                    for activity records: message | share | referral | activity_attended
                             | answer | purchase | violation | opt_out
    referrer_*               for referrals: the inviter's phone / wechat_id / … (prefixed keys)
    community                for activity in one of our groups: the group's name
    amount, product, activity, violation, channel   event details
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm.core.vocabulary import SourceKind
from crm.intake.reasons import Reason, Why, why


@dataclass(frozen=True)
class SourceSpec:
    """Which source instance records belong to; created on first use, keyed by (kind, key)."""

    kind: SourceKind
    key: str
    name: str
    group_name: str | None = None
    platform: str | None = None
    post: str | None = None
    promoter: str | None = None
    location: str | None = None
    campaign: str | None = None
    operator_handle: str | None = None
    referrer_contact_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawItem:
    """One record from a source. ``row_number`` points back into a file for quarantine."""

    record_key: str
    payload: dict[str, Any]
    row_number: int | None = None
    source: SourceSpec | None = None  # overrides the batch's source (e.g. one file, many groups)
    payload_json: str | None = None  # the payload already encoded as JSON, if the adapter has it


# Why a record holding NaN or Infinity is refused: no JSON column may receive them.
NOT_STANDARD_JSON = why(Reason.NAN)


@dataclass(frozen=True)
class RejectedRow:
    """Input that could not even become a raw record (undecodable, wrong shape)."""

    row_number: int | None
    raw_content: str
    reason: Why


class SourceAdapter(Protocol):
    """Anything that yields raw items (and rows it had to reject) for one source."""

    def source(self) -> SourceSpec: ...

    def items(self) -> Iterator[RawItem | RejectedRow]: ...


@dataclass
class IngestReport:
    """Counts for one import. Invariant: read == new_contacts + matched + quarantined."""

    read: int = 0
    new_contacts: int = 0
    matched: int = 0
    merged: int = 0
    quarantined: int = 0
    events: int = 0
    skipped_duplicates: int = 0  # already in the raw log: re-imports add nothing
    corrected: int = 0  # quarantined records this import corrected (also new or matched)
    # Quarantined rows by the code of their reason (Why.code), or ``already_quarantined``.
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestReport) -> None:
        """Fold another batch's counts into this one."""
        for name in (
            "read",
            "new_contacts",
            "matched",
            "merged",
            "quarantined",
            "events",
            "skipped_duplicates",
            "corrected",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI and the flows print."""
        return {
            "read": self.read,
            "new_contacts": self.new_contacts,
            "matched": self.matched,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "events": self.events,
            "skipped_duplicates": self.skipped_duplicates,
            "corrected": self.corrected,
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1])),
        }


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Chunks of at most ``size`` items, streaming (never the whole input in memory)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
