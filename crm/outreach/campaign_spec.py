"""A campaign as data: the pydantic models of a campaigns file (audience, anchor, steps, windows).

Pure: validation only. Reading the file is campaign_file's, planning it is planning's.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm.core.clock import WEEKDAYS, parse_duration
from crm.core.errors import BadValue
from crm.core.vocabulary import SourceKind, Tier

Anchor = Literal["tier_entered", "signup", "event", "weekly", "last_active"]
# The identity a channel needs to reach a contact; channels absent here reach everyone.
CHANNEL_IDENTITY = {"email": "email", "wecom": "wecom_external_userid", "wechat": "wechat_id"}
CHANNEL_PLATFORM = {"email": "email", "wecom": "wecom", "webhook": "webhook", "wechat": "wechat"}
CHANNELS = ("wecom", "wechat", "email", "webhook", "file", "console", "null")
GROUP_ANCHORS = ("weekly", "event")
# Channels that can post in a group: WeCom (a group mass-message task for the group's chat id)
# and the ones that just record or forward the text (an operator posts it by hand).
GROUP_CHANNELS = ("wecom", "wechat", "webhook", "file", "console", "null")


def _duration_text(value: str) -> None:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise BadValue("error.outreach.campaign_duration", value=value) from exc


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
    # What people call the step, shown after its number (第 1 步「开课提醒」).
    title: str | None = Field(default=None, min_length=1, max_length=40)
    template: str
    channel: str = "wecom"
    action: Literal["message", "group_invite", "group_join", "friend_add"] = "message"
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
            raise BadValue(
                "error.outreach.campaign_channel", value=value, known=", ".join(CHANNELS)
            )
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
            _duration_text(value)
        return value

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        for day in value or []:
            if day not in WEEKDAYS:
                raise BadValue("error.outreach.campaign_weekday", day=day)
        return value

    @model_validator(mode="after")
    def _timing(self) -> Step:
        if self.offset is None and self.at is None:
            raise BadValue("error.outreach.campaign_step_timing", step=self.name)
        return self


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
    # Any of these contact tags; campaign_file cleans them as contact tags are cleaned
    # (crm.contacts.tags), which keeps this module free of SQL.
    tags: list[str] = Field(default_factory=list)


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
            raise BadValue("error.outreach.campaign_event_zone")
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
        _duration_text(value)
        return value

    @model_validator(mode="after")
    def _unique_steps(self) -> Campaign:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise BadValue("error.outreach.campaign_steps_repeat", campaign=self.name)
        if self.anchor == "weekly" and any(not s.weekdays or s.at is None for s in self.steps):
            raise BadValue("error.outreach.campaign_weekly_steps", campaign=self.name)
        if self.target == "groups":
            self._check_group_target()
        return self

    def _check_group_target(self) -> None:
        if self.anchor not in GROUP_ANCHORS:
            raise BadValue(
                "error.outreach.campaign_group_anchor",
                campaign=self.name,
                anchor=self.anchor,
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
            raise BadValue(
                "error.outreach.campaign_group_filters",
                campaign=self.name,
                filters=", ".join(per_person),
            )
        for step in self.steps:
            wrong = [c for c in step.channels if c not in GROUP_CHANNELS]
            if wrong or step.action != "message":
                raise BadValue(
                    "error.outreach.campaign_group_step",
                    campaign=self.name,
                    step=step.name,
                    channels=", ".join(GROUP_CHANNELS),
                )


class CampaignFile(BaseModel):
    """The whole file: a list of ``[[campaign]]`` tables."""

    model_config = ConfigDict(extra="forbid")
    campaign: list[Campaign]
