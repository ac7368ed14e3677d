"""File sources: member lists, self-media lead exports, QR sign-ups and activity events.

A file is read one row at a time (:mod:`crm.intake.file_reader`). Each row becomes a
:class:`RawItem` whose record key is a hash of its normalized content (or the export's own id),
so importing a file twice adds nothing, attached to the source its kind and columns name (a
group, a post, a promoter's campaign); a row that cannot be read becomes a :class:`RejectedRow`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crm.contacts.normalize import clean_text, normalize_platform
from crm.core.errors import InputError
from crm.core.vocabulary import SourceKind
from crm.intake.columns import RAW_KEEP
from crm.intake.file_reader import FileReader
from crm.intake.reasons import Reason, Why, why
from crm.intake.records import NOT_STANDARD_JSON, RawItem, RejectedRow, SourceSpec

_NATURAL_KEYS = ("record_id", "lead_id", "event_id", "id", "submission_id")


def _record_key(payload: dict[str, Any]) -> tuple[str, str]:
    """The record key of a row and its payload as JSON (encoded once, for the raw log too).

    ValueError for NaN or Infinity: no JSON column may receive them (see rawlog.strict_json).
    """
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
    for key in _NATURAL_KEYS:
        value = payload.get(key)
        if value not in (None, ""):
            return f"id:{value}"[:300], blob
    return "h:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40], blob


class FileAdapter:
    """One export file of one kind; ``items()`` streams it (call again to re-read)."""

    def __init__(
        self,
        kind: str,
        path: Path,
        *,
        group: str | None = None,
        account: str | None = None,
        platform: str | None = None,
        peer: bool = False,
    ) -> None:
        self.kind = kind
        # A list imported for one peer group (--peer): every row belongs to that group's join.
        self.peer = peer
        self.path = path
        self.group = clean_text(group) or None
        self.account = clean_text(account) or None
        self.platform = normalize_platform(platform) or None
        self.reader = FileReader(path)
        self.reader.check()

    def source(self) -> SourceSpec:
        """The default source of the file's rows (rows may name their own group or post)."""
        if self.kind == "peer-group":
            group = self.group or self.path.stem
            return SourceSpec(
                kind=SourceKind.PEER_GROUP,
                key=group,
                name=group,
                group_name=group,
                operator_handle=self.account,
            )
        if self.kind == "self-media":
            plat = self.platform or "unknown"
            return SourceSpec(
                kind=SourceKind.SELF_MEDIA,
                key=f"{plat}:(no post)",
                name=f"{plat} (no post)",
                platform=plat,
            )
        if self.kind == "qr-signups":
            return SourceSpec(kind=SourceKind.QR_SIGNUP, key="qr:(file)", name="QR sign-ups")
        return SourceSpec(kind=SourceKind.API, key="events", name="activity events")

    def items(self) -> Iterator[RawItem | RejectedRow]:
        """Every row of the file as a raw item (or a rejected row), streamed."""
        default = self.source()
        specs: dict[tuple[Any, ...], SourceSpec] = {}
        for item in self.reader.rows():
            if isinstance(item, RejectedRow):
                yield item
                continue
            n, payload = item
            spec = self._spec_for(payload, default, specs)
            if isinstance(spec, Why):
                yield RejectedRow(n, json.dumps(payload, ensure_ascii=False)[:RAW_KEEP], spec)
                continue
            try:
                key, blob = _record_key(payload)
            except ValueError:
                raw = json.dumps(payload, ensure_ascii=False, default=str)[:RAW_KEEP]
                yield RejectedRow(n, raw, NOT_STANDARD_JSON)
                continue
            yield RawItem(
                record_key=key,
                payload=payload,
                row_number=n,
                source=None if spec is default else spec,
                payload_json=blob,
            )

    def _spec_for(
        self,
        payload: dict[str, Any],
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec | Why:
        if self.kind == "peer-group" and self.peer:
            return self._peer_row(payload.get("group"), default)
        if self.kind == "peer-group":
            raw_group, raw_operator = payload.get("group"), payload.get("operator")
            if isinstance(raw_group, str | None) and isinstance(raw_operator, str | None):
                # A member list names a handful of groups over thousands of rows.
                hit = cache.get(("pg-raw", raw_group, raw_operator))
                if hit is None:
                    hit = self._group_spec(raw_group, raw_operator, default, cache)
                    cache[("pg-raw", raw_group, raw_operator)] = hit
                return hit
            return self._group_spec(raw_group, raw_operator, default, cache)
        return self._other_spec(payload, default, cache)

    def _peer_row(self, raw_group: Any, default: SourceSpec) -> SourceSpec | Why:
        # The group column may repeat the peer group's name; naming another group means the
        # list mixes groups, and that row's member was not harvested in this join.
        group = clean_text(raw_group) if isinstance(raw_group, str) else raw_group
        if not group or group == default.key:
            return default
        return peer_mismatch(str(group), default.key)

    def _group_spec(
        self,
        raw_group: Any,
        raw_operator: Any,
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec:
        group = clean_text(raw_group) or None
        operator = clean_text(raw_operator) or None
        if group is None and operator is None:
            return default
        group = group or default.key
        operator = operator or self.account
        if group == default.key and operator == self.account:
            return default
        key = ("pg", group, operator)
        if key not in cache:
            cache[key] = SourceSpec(
                kind=SourceKind.PEER_GROUP,
                key=group,
                name=group,
                group_name=group,
                operator_handle=operator,
            )
        return cache[key]

    def _other_spec(
        self,
        payload: dict[str, Any],
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec | Why:
        if self.kind == "self-media":
            plat = normalize_platform(payload.get("platform")) or self.platform
            if not plat:
                return why(Reason.NO_PLATFORM)
            payload["platform"] = plat
            post = clean_text(payload.get("post")) or None
            if post is None and plat == default.platform:
                return default
            key = ("sm", plat, post)
            if key not in cache:
                cache[key] = SourceSpec(
                    kind=SourceKind.SELF_MEDIA,
                    key=f"{plat}:{post or '(no post)'}"[:300],
                    name=post or f"{plat} (no post)",
                    platform=plat,
                    post=post,
                )
            return cache[key]
        if self.kind == "qr-signups":
            promoter = clean_text(payload.get("promoter")) or None
            location = clean_text(payload.get("location")) or None
            campaign = clean_text(payload.get("campaign")) or None
            if not (promoter or location or campaign):
                return default
            qkey = ("qr", campaign, promoter, location)
            if qkey not in cache:
                label = " / ".join(x for x in (campaign, promoter, location) if x)
                cache[qkey] = SourceSpec(
                    kind=SourceKind.QR_SIGNUP,
                    key=f"qr:{campaign or ''}:{promoter or ''}:{location or ''}"[:300],
                    name=label,
                    promoter=promoter,
                    location=location,
                    campaign=campaign,
                )
            return cache[qkey]
        if clean_text(payload.get("event")).lower() == "referral":
            if ("ref",) not in cache:
                cache[("ref",)] = SourceSpec(
                    kind=SourceKind.REFERRAL, key="referrals", name="裂变 referrals"
                )
            return cache[("ref",)]
        return default


FILE_KINDS = ("peer-group", "self-media", "events", "qr-signups")


def peer_mismatch(group: str, peer: str) -> Why:
    """The quarantine reason of a row of a --peer list that names another group."""
    return why(Reason.PEER_MIXED, group=group[:200], peer=peer)


def open_adapter(
    kind: str,
    path: Path,
    *,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
    peer: bool = False,
) -> FileAdapter:
    """An adapter for a file of a kind; raises InputError if the file is not what it claims."""
    if kind not in FILE_KINDS:
        raise InputError("error.intake.kind_unknown", kind=kind, known=", ".join(FILE_KINDS))
    return FileAdapter(kind, path, group=group, account=account, platform=platform, peer=peer)
