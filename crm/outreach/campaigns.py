"""Campaigns as data (TOML, pydantic-validated) and planning them into the outbox.

Planning selects the audience in one query (tier, source, group and segment filters, with
opt-out, consent and channel-address flags computed in SQL), computes each step's due time in
the contact's time zone (crm.core.clock), and inserts the rows in chunks with
``INSERT … ON CONFLICT (campaign, step, contact_id) DO NOTHING``: planning twice plans nothing
twice. Opted-out contacts, contacts without consent for a marketing campaign and contacts
without an address on the step's channel are not planned; the report counts them per reason.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Engine, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from crm.compliance.optout import lacks_marketing_consent_clause, opted_out_clause
from crm.contacts.tags import clean_tags, tagged_clause
from crm.core.clock import (
    WEEKDAYS,
    at_local,
    fit_window,
    parse_duration,
    weekly_occurrences,
)
from crm.core.db import dialect_insert, transaction
from crm.core.errors import ConfigError, InputError, NotFound
from crm.core.settings import Settings, get_settings
from crm.core.vocabulary import SourceKind, Tier
from crm.models import (
    Community,
    Contact,
    Identity,
    Membership,
    OperatorAccount,
    OutboxMessage,
    SourceInstance,
    TierChange,
    Touch,
    utcnow,
)

Anchor = Literal["tier_entered", "signup", "event", "weekly", "last_active"]
# The identity a channel needs to reach a contact; channels absent here reach everyone.
CHANNEL_IDENTITY = {"email": "email", "wecom": "wecom_external_userid", "wechat": "wechat_id"}
CHANNEL_PLATFORM = {"email": "email", "wecom": "wecom", "webhook": "webhook", "wechat": "wechat"}
CHANNELS = ("wecom", "wechat", "email", "webhook", "file", "console", "null")
CHUNK = 1000
GROUP_ANCHORS = ("weekly", "event")
# Channels that can post in a group: WeCom (a group mass-message task for the group's chat id)
# and the ones that just record or forward the text (an operator posts it by hand).
GROUP_CHANNELS = ("wecom", "wechat", "webhook", "file", "console", "null")


class Span(BaseModel):
    """A daily span of local wall-clock time; may wrap past midnight (quiet hours)."""

    model_config = ConfigDict(extra="forbid")
    start: time
    end: time

    def pair(self) -> tuple[time, time]:
        """As a (start, end) tuple."""
        return (self.start, self.end)


class Step(BaseModel):
    """One message of a campaign: when (relative to the anchor), how and with which template."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,60}$")
    template: str
    channel: str = "wecom"
    action: Literal["message", "group_join", "friend_add"] = "message"
    offset: str | None = None
    day_offset: int | None = None
    at: time | None = None
    weekdays: list[str] | None = None
    account: str | None = None  # an operator account handle; default: spread over accounts
    subject: str | None = None
    # Channels to use, in order, for contacts without an address on `channel` (e.g. a
    # WeChat id only: no WeCom external user id yet).
    fallback: list[str] = Field(default_factory=list)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
        return value

    @field_validator("fallback")
    @classmethod
    def _known_fallbacks(cls, value: list[str]) -> list[str]:
        for name in value:
            cls._known_channel(name)
        return value

    @property
    def channels(self) -> list[str]:
        """The step's channels in order of preference."""
        return [self.channel, *(c for c in self.fallback if c != self.channel)]

    @field_validator("offset")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        for day in value or []:
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (mon … sun)")
        return value

    @model_validator(mode="after")
    def _timing(self) -> Step:
        if self.offset is None and self.at is None:
            raise ValueError(f"step {self.name}: give offset, or at (with day_offset/weekdays)")
        return self

    def due(self, anchor: datetime, zone: ZoneInfo) -> datetime:
        """When this step is due for an anchor instant, in the contact's zone."""
        if self.at is not None:
            base = at_local(anchor, self.day_offset or 0, self.at, zone)
        else:
            base = anchor
        if self.offset is not None and (self.at is None or self.day_offset is None):
            base = base + parse_duration(self.offset)
        return base


class Audience(BaseModel):
    """Who a campaign is for; every filter given must hold."""

    model_config = ConfigDict(extra="forbid")
    tiers: list[Tier] = Field(default_factory=list)
    sources: list[SourceKind] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)  # community ids or names
    min_score: int | None = None
    max_score: int | None = None
    inactive_days: int | None = Field(default=None, ge=1)
    locales: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)  # any of these contact tags

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        try:
            return clean_tags(value)
        except InputError as exc:
            raise ValueError(str(exc)) from exc


class EventSpec(BaseModel):
    """The event an event-anchored campaign announces (or give it as parameters)."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = None
    name: str
    start: datetime
    location: str | None = None
    link: str | None = None

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("event start needs a UTC offset, e.g. 2026-12-01T19:30:00+08:00")
        return value.astimezone(UTC)


class Campaign(BaseModel):
    """A named follow-up: audience, anchor, steps, send window and quiet hours."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,60}$")
    description: str = ""
    purpose: Literal["service", "marketing"] = "service"
    anchor: Anchor
    audience: Audience = Field(default_factory=Audience)
    window: Span | None = None
    quiet_hours: Span | None = None
    max_late: str = "1d"
    horizon: str = "2d"
    event: EventSpec | None = None
    # contacts: one message per person; groups: one post in each of our groups of the audience
    # (rules reminders and event notices go to the group, not to every member one by one).
    target: Literal["contacts", "groups"] = "contacts"
    steps: list[Step] = Field(min_length=1)

    @field_validator("max_late", "horizon")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _unique_steps(self) -> Campaign:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"campaign {self.name}: step names repeat")
        if self.anchor == "weekly" and any(not s.weekdays or s.at is None for s in self.steps):
            raise ValueError(f"campaign {self.name}: weekly steps need weekdays and at")
        if self.target == "groups":
            self._check_group_target()
        return self

    def _check_group_target(self) -> None:
        if self.anchor not in GROUP_ANCHORS:
            raise ValueError(
                f"campaign {self.name}: a group post is anchored to "
                f"{' or '.join(GROUP_ANCHORS)}, not to one contact's {self.anchor}"
            )
        aud = self.audience
        per_person = [
            name
            for name, value in (
                ("sources", aud.sources),
                ("min_score", aud.min_score),
                ("max_score", aud.max_score),
                ("inactive_days", aud.inactive_days),
                ("locales", aud.locales),
                ("tags", aud.tags),
            )
            if value not in (None, [])
        ]
        if per_person:
            raise ValueError(
                f"campaign {self.name}: {', '.join(per_person)} select contacts, "
                "a group campaign selects groups by tiers and groups"
            )
        for step in self.steps:
            wrong = [c for c in step.channels if c not in GROUP_CHANNELS]
            if wrong or step.action != "message":
                raise ValueError(
                    f"campaign {self.name}: step {step.name}: a group post is an action "
                    f"'message' on {', '.join(GROUP_CHANNELS)}"
                )


class CampaignFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: list[Campaign]


def bundled_path() -> Path:
    """The bundled campaigns file."""
    return Path(str(files("crm.outreach") / "campaigns.toml"))


def load_campaigns(path: Path | None = None) -> dict[str, Campaign]:
    """Read and validate campaigns (settings.campaigns_path, else the bundled file)."""
    path = path or bundled_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = CampaignFile.model_validate(data)
    except FileNotFoundError as exc:
        raise ConfigError(f"campaigns file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
    out: dict[str, Campaign] = {}
    for c in parsed.campaign:
        if c.name in out:
            raise ConfigError(f"{path}: campaign {c.name} defined twice")
        out[c.name] = c
    return out


def campaign_names(settings: Settings | None = None) -> list[str]:
    """Names of the defined campaigns."""
    return sorted(load_campaigns((settings or get_settings()).campaigns_path))


def triggerable_names(settings: Settings | None = None) -> list[str]:
    """Campaigns that can be started without parameters (event campaigns need their event)."""
    defined = load_campaigns((settings or get_settings()).campaigns_path)
    return sorted(n for n, c in defined.items() if c.anchor != "event" or c.event is not None)


def idempotency_key(campaign: str, step: str, recipient: int | str) -> str:
    """The key providers dedupe on: stable for (campaign, step, contact or ``group:ID``)."""
    digest = hashlib.sha256(f"{campaign}\x1f{step}\x1f{recipient}".encode()).hexdigest()
    return f"qf-{digest[:40]}"


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def _event_from(campaign: Campaign, params: dict[str, Any]) -> EventSpec:
    if "event_start" in params or "event_name" in params:
        try:
            return EventSpec(
                key=params.get("event_key"),
                name=params.get("event_name") or (campaign.event.name if campaign.event else ""),
                start=params["event_start"],
                location=params.get("event_location"),
                link=params.get("event_link"),
            )
        except (ValidationError, KeyError) as exc:
            raise InputError(f"event parameters: {exc}") from exc
    if campaign.event is None:
        raise InputError(
            f"campaign {campaign.name} needs an event: pass event_start and event_name"
        )
    return campaign.event


def _audience_query(
    session: Session, campaign: Campaign, channels: Sequence[str], contact_ids: Iterable[int] | None
) -> Any:
    c = Contact.__table__.c
    aud = campaign.audience
    first_touch = (
        select(func.min(Touch.touched_at)).where(Touch.contact_id == c.id).scalar_subquery()
    )
    tier_since = (
        select(func.max(TierChange.changed_at))
        .where(TierChange.contact_id == c.id, TierChange.to_tier == c.tier)
        .scalar_subquery()
    )
    anchor: Any = {
        "tier_entered": func.coalesce(c.tier_entered_at, tier_since),
        "signup": func.coalesce(first_touch, c.first_seen_at),
        "last_active": func.coalesce(c.last_active_at, c.first_seen_at),
    }.get(campaign.anchor, literal(None))
    cols: list[Any] = [
        c.id,
        c.timezone,
        c.locale,
        anchor.label("anchor"),
    ]
    for ch in channels:
        cols.append(opted_out_clause(c.id, ch).label(f"out_{ch}"))
        if campaign.purpose == "marketing":
            cols.append(lacks_marketing_consent_clause(c.id, ch).label(f"noconsent_{ch}"))
        kind = CHANNEL_IDENTITY.get(ch)
        if kind is not None:
            has = exists().where(Identity.contact_id == c.id, Identity.kind == kind)
            cols.append(has.label(f"has_{ch}"))
    stmt = select(*cols).where(c.status == "active", c.merged_into_id.is_(None))
    if aud.tiers:
        stmt = stmt.where(c.tier.in_([t.value for t in aud.tiers]))
    if aud.min_score is not None:
        stmt = stmt.where(c.score >= aud.min_score)
    if aud.max_score is not None:
        stmt = stmt.where(c.score <= aud.max_score)
    if aud.locales:
        stmt = stmt.where(c.locale.in_(aud.locales))
    if aud.tags:
        stmt = stmt.where(tagged_clause(c.id, aud.tags))
    if aud.sources:
        stmt = stmt.where(
            exists().where(
                Touch.contact_id == c.id,
                SourceInstance.id == Touch.source_instance_id,
                SourceInstance.kind.in_([s.value for s in aud.sources]),
            )
        )
    if aud.groups:
        ids = [int(g) for g in aud.groups if g.isdigit()]
        names = [g for g in aud.groups if not g.isdigit()]
        stmt = stmt.where(
            exists().where(
                Membership.contact_id == c.id,
                Membership.left_at.is_(None),
                Community.id == Membership.community_id,
                or_(Community.id.in_(ids), Community.name.in_(names)),
            )
        )
    if contact_ids is not None:
        stmt = stmt.where(c.id.in_(list(contact_ids)))
    return stmt.order_by(c.id)


def _groups_query(campaign: Campaign, contact_ids: Iterable[int] | None) -> Any:
    """Our live groups a group campaign posts in (tier and group filters)."""
    g = Community.__table__.c
    stmt = select(g.id, g.name, g.platform, g.external_id, g.owner_account_id).where(
        g.archived.is_(False)
    )
    aud = campaign.audience
    if aud.tiers:
        stmt = stmt.where(g.tier.in_([t.value for t in aud.tiers]))
    if aud.groups:
        ids = [int(x) for x in aud.groups if x.isdigit()]
        names = [x for x in aud.groups if not x.isdigit()]
        stmt = stmt.where(or_(g.id.in_(ids), g.name.in_(names)))
    if contact_ids is not None:  # the groups these contacts are in
        stmt = stmt.where(
            exists().where(
                Membership.community_id == g.id,
                Membership.left_at.is_(None),
                Membership.contact_id.in_(list(contact_ids)),
            )
        )
    return stmt.order_by(g.id)


def _group_channel(group: Any, step: Step) -> str | None:
    """The first of the step's channels that can post in this group (WeCom needs its chat id)."""
    for channel in step.channels:
        if channel != "wecom" or (group.platform == "wecom" and group.external_id):
            return channel
    return None


def _accounts(session: Session, campaign: Campaign) -> dict[tuple[str, str], list[int]]:
    """Per step and channel: the operator accounts messages are spread over (empty: none)."""
    out: dict[tuple[str, str], list[int]] = {}
    for step in campaign.steps:
        for channel in step.channels:
            platform = CHANNEL_PLATFORM.get(channel)
            stmt = select(OperatorAccount.id).where(OperatorAccount.active.is_(True))
            if step.account and channel == step.channel:
                stmt = stmt.where(OperatorAccount.handle == step.account)
            elif platform is not None:
                stmt = stmt.where(OperatorAccount.platform == platform)
            else:
                out[step.name, channel] = []
                continue
            ids = list(session.scalars(stmt.order_by(OperatorAccount.id)))
            if step.account and channel == step.channel and not ids:
                raise InputError(f"step {step.name}: no active operator account {step.account!r}")
            out[step.name, channel] = ids
    return out


def _pick_channel(m: Any, step: Step, purpose: str) -> tuple[str | None, str]:
    """The first of the step's channels this contact can be reached on, or why none."""
    refusal = "no_channel"
    for position, channel in enumerate(step.channels):
        if m[f"out_{channel}"]:
            reason = "opted_out"
        elif purpose == "marketing" and m[f"noconsent_{channel}"]:
            reason = "no_consent"
        elif f"has_{channel}" in m and not m[f"has_{channel}"]:
            reason = "no_channel"
        else:
            return channel, ""
        if position == 0:
            refusal = reason  # report why the preferred channel was refused
    return None, refusal


def _occurrences(
    campaign: Campaign,
    step: Step,
    anchor: datetime | None,
    zone: ZoneInfo,
    now: datetime,
    event: EventSpec | None,
) -> list[tuple[str, datetime, datetime]]:
    """(step key, anchor instant, raw due instant) for one contact and step."""
    late, horizon = parse_duration(campaign.max_late), parse_duration(campaign.horizon)
    if campaign.anchor == "weekly":
        assert step.weekdays is not None and step.at is not None
        return [
            (f"{step.name}@{t.astimezone(zone).date().isoformat()}", t, t)
            for t in weekly_occurrences(now - late, now + horizon, step.weekdays, step.at, zone)
        ]
    if campaign.anchor == "event":
        assert event is not None
        key = event.key or event.start.strftime("%Y%m%dT%H%M")
        return [(f"{step.name}@{key}", event.start, step.due(event.start, zone))]
    if anchor is None:
        return []
    due = step.due(anchor, zone)
    if campaign.anchor == "last_active":
        return [(f"{step.name}@{anchor.date().isoformat()}", anchor, due)]
    return [(step.name, anchor, due)]


def plan_campaign(
    engine: Engine,
    name: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    contact_ids: Iterable[int] | None = None,
    params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Plan a campaign's due messages into the outbox (idempotent); returns counts per reason."""
    settings = settings or get_settings()
    campaigns = load_campaigns(settings.campaigns_path)
    if name not in campaigns:
        raise NotFound(f"no campaign {name!r} (defined: {', '.join(sorted(campaigns))})")
    campaign = campaigns[name]
    params = dict(params or {})
    plan = _Plan(
        campaign,
        now=(now or utcnow()).astimezone(UTC),
        zone=settings.zone,
        params=params,
        event=_event_from(campaign, params) if campaign.anchor == "event" else None,
    )
    report = plan.report
    report["dry_run"] = dry_run
    with transaction(engine, dry_run=dry_run) as session:
        accounts = _accounts(session, campaign)
        if campaign.target == "groups":
            rows = plan.group_rows(session, accounts, contact_ids)
        else:
            rows = plan.contact_rows(session, accounts, contact_ids)
        inserted = _insert_rows(session, rows, by_group=campaign.target == "groups")
        report["planned"] = sum(inserted.values())
        report["already_planned"] = len(rows) - report["planned"]
        report["by_step"] = inserted
    return report


class _Plan:
    """One planning pass of a campaign: due times per recipient and the rows to insert."""

    def __init__(
        self,
        campaign: Campaign,
        *,
        now: datetime,
        zone: ZoneInfo,
        params: dict[str, Any],
        event: EventSpec | None,
    ) -> None:
        self.campaign, self.now, self.zone, self.params, self.event = (
            campaign,
            now,
            zone,
            params,
            event,
        )
        self.late = parse_duration(campaign.max_late)
        self.horizon = parse_duration(campaign.horizon)
        self.window = campaign.window.pair() if campaign.window else None
        self.quiet = campaign.quiet_hours.pair() if campaign.quiet_hours else None
        self.report: dict[str, Any] = {
            "campaign": campaign.name,
            "target": campaign.target,
            "audience": 0,
            "planned": 0,
            "already_planned": 0,
            "excluded": {"opted_out": 0, "no_consent": 0, "no_channel": 0, "too_late": 0},
            "not_yet_due": 0,
            "by_step": {},
        }

    def contact_rows(
        self,
        session: Session,
        accounts: dict[tuple[str, str], list[int]],
        contact_ids: Iterable[int] | None,
    ) -> list[dict[str, Any]]:
        """One row per contact of the audience, step and due occurrence."""
        campaign, report = self.campaign, self.report
        channels = sorted({c for s in campaign.steps for c in s.channels})
        rows: list[dict[str, Any]] = []
        for rec in session.execute(_audience_query(session, campaign, channels, contact_ids)):
            report["audience"] += 1
            zone = _zone(rec.timezone, self.zone)
            anchor = rec.anchor
            if isinstance(anchor, str):  # SQLite hands back MIN()/COALESCE() as text
                anchor = datetime.fromisoformat(anchor)
            if anchor is not None and anchor.tzinfo is None:
                anchor = anchor.replace(tzinfo=UTC)
            for step in campaign.steps:
                channel, refusal = _pick_channel(rec._mapping, step, campaign.purpose)
                if channel is None:
                    report["excluded"][refusal] += 1
                    continue
                accts = accounts[step.name, channel]
                account_id = accts[rec.id % len(accts)] if accts else None
                for key, due in self._due(step, anchor, zone):
                    context = self._context(step, rec.locale, zone)
                    rows.append(self._row(step, key, due, channel, account_id, context, rec.id))
        return rows

    def group_rows(
        self,
        session: Session,
        accounts: dict[tuple[str, str], list[int]],
        contact_ids: Iterable[int] | None,
    ) -> list[dict[str, Any]]:
        """One post per group of the audience, step and due occurrence, from the group's owner
        account (or the step's account), at the configured zone's local times."""
        rows: list[dict[str, Any]] = []
        for group in session.execute(_groups_query(self.campaign, contact_ids)):
            self.report["audience"] += 1
            for step in self.campaign.steps:
                channel = _group_channel(group, step)
                if channel is None:
                    self.report["excluded"]["no_channel"] += 1
                    continue
                named = accounts[step.name, channel] if step.account else []
                account_id = named[0] if named else group.owner_account_id
                for key, due in self._due(step, None, self.zone):
                    context = self._context(step, None, self.zone)
                    rows.append(
                        self._row(step, key, due, channel, account_id, context, group=group.id)
                    )
        return rows

    def _due(
        self, step: Step, anchor: datetime | None, zone: ZoneInfo
    ) -> Iterator[tuple[str, datetime]]:
        """The step's (key, due) for one recipient; counts the ones left out and why."""
        campaign, now = self.campaign, self.now
        for key, anchor_at, raw_due in _occurrences(campaign, step, anchor, zone, now, self.event):
            due = fit_window(raw_due, zone, window=self.window, quiet=self.quiet)
            # An event notice pushed past the event by the window is pointless: too late.
            if due < now - self.late or (campaign.anchor == "event" and raw_due < anchor_at <= due):
                self.report["excluded"]["too_late"] += 1
            elif campaign.anchor != "event" and due > now + self.horizon:
                self.report["not_yet_due"] += 1
            else:
                yield key, due

    def _context(self, step: Step, locale: str | None, zone: ZoneInfo) -> dict[str, Any]:
        return _context(
            self.campaign, step, locale, zone, self.event, self.params, self.window, self.quiet
        )

    def _row(
        self,
        step: Step,
        key: str,
        due: datetime,
        channel: str,
        account_id: int | None,
        context: dict[str, Any],
        contact_id: int | None = None,
        *,
        group: int | None = None,
    ) -> dict[str, Any]:
        name = self.campaign.name
        recipient = contact_id if contact_id is not None else f"group:{group}"
        return {
            "campaign": name,
            "step": key,
            "contact_id": contact_id,
            "community_id": group,
            "channel": channel,
            "template": step.template,
            "account_id": account_id,
            "action": step.action,
            "state": "planned",
            "due_at": due,
            "idempotency_key": idempotency_key(name, key, recipient),
            "context": context,
            "created_at": self.now,
            "updated_at": self.now,
        }


def _context(
    campaign: Campaign,
    step: Step,
    locale: str | None,
    zone: ZoneInfo,
    event: EventSpec | None,
    params: dict[str, Any],
    window: tuple[time, time] | None,
    quiet: tuple[time, time] | None,
) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "tz": zone.key,
        "locale": locale or "zh-CN",
        "purpose": campaign.purpose,
        "params": {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)},
    }
    if step.subject:
        ctx["subject"] = step.subject
    if window:
        ctx["window"] = [window[0].isoformat("minutes"), window[1].isoformat("minutes")]
    if quiet:
        ctx["quiet"] = [quiet[0].isoformat("minutes"), quiet[1].isoformat("minutes")]
    if event is not None:
        ctx["event"] = {
            "name": event.name,
            "start": event.start.isoformat(),
            "local_time": event.start.astimezone(zone).strftime("%m-%d %H:%M"),
            "location": event.location,
            "link": event.link,
        }
    return ctx


def _insert_rows(
    session: Session, rows: list[dict[str, Any]], *, by_group: bool = False
) -> dict[str, int]:
    """Chunked INSERT … ON CONFLICT DO NOTHING; returns how many rows each step key added.

    Group posts have no contact, so their idempotency key (unique per campaign, step and
    group) is what makes planning them twice plan nothing twice.
    """
    conflict = ["idempotency_key"] if by_group else ["campaign", "step", "contact_id"]
    table = OutboxMessage.__table__
    added: dict[str, int] = {}
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        stmt = (
            dialect_insert(session, OutboxMessage)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(table.c.step)
        )
        for (step,) in session.execute(stmt):
            base = step.split("@")[0]
            added[base] = added.get(base, 0) + 1
    return added


def plan_all(
    engine: Engine,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Plan every campaign that needs no parameters (event campaigns need an event)."""
    settings = settings or get_settings()
    out: dict[str, Any] = {}
    for name, campaign in sorted(load_campaigns(settings.campaigns_path).items()):
        if campaign.anchor == "event" and campaign.event is None:
            continue
        out[name] = plan_campaign(engine, name, now=now, settings=settings)
    return out


def describe(settings: Settings | None = None) -> list[dict[str, Any]]:
    """The defined campaigns, for listing."""
    settings = settings or get_settings()
    return [
        {
            "name": c.name,
            "purpose": c.purpose,
            "anchor": c.anchor,
            "tiers": [t.value for t in c.audience.tiers],
            "steps": [
                {
                    "name": s.name,
                    "channel": s.channel,
                    "template": s.template,
                    "offset": s.offset,
                    "day_offset": s.day_offset,
                    "at": s.at.isoformat("minutes") if s.at else None,
                    "weekdays": s.weekdays,
                }
                for s in c.steps
            ],
            "description": c.description,
        }
        for c in load_campaigns(settings.campaigns_path).values()
    ]
