"""What a plan writes per recipient (pure): the channel, the message context, the outbox row.

A contact gets the first of a step's channels it can be reached on (not opted out, with
marketing consent for a marketing campaign, with an address there); when none is left, the
preferred channel's refusal is what the plan report counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from crm.core.errors import BadValue, InputError
from crm.core.vocabulary import OutboxState
from crm.outreach.campaign_spec import Campaign, EventSpec, Step


class Exclusion(StrEnum):
    """Why a recipient's step was not planned."""

    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"  # a marketing campaign, no marketing consent on the channel
    NO_CHANNEL = "no_channel"  # no address on any of the step's channels
    TOO_LATE = "too_late"
    WECOM_CHURN = "wecom_churn"  # the sending staff member and the contact churned (流失)


def idempotency_key(campaign: str, step: str, recipient: int | str) -> str:
    """The key providers dedupe on: stable for (campaign, step, contact or ``group:ID``)."""
    digest = hashlib.sha256(f"{campaign}\x1f{step}\x1f{recipient}".encode()).hexdigest()
    return f"qf-{digest[:40]}"


def zone_of(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """A contact's time zone by name; the default when unset or unknown."""
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def event_for(campaign: Campaign, params: Mapping[str, Any]) -> EventSpec:
    """The event an event campaign announces: from the parameters, else the campaign's own."""
    if "event_start" in params or "event_name" in params:
        try:
            return EventSpec(
                key=params.get("event_key"),
                name=params.get("event_name") or (campaign.event.name if campaign.event else ""),
                start=params["event_start"],
                location=params.get("event_location"),
                link=params.get("event_link"),
            )
        except KeyError as exc:
            raise InputError("error.outreach.event_param_missing", name=exc.args[0]) from exc
        except ValidationError as exc:
            raise _bad_event(exc) from exc
    if campaign.event is None:
        raise InputError("error.outreach.event_needed", campaign=campaign.name)
    return campaign.event


def _bad_event(exc: ValidationError) -> InputError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    cause = first.get("ctx", {}).get("error")
    detail = cause.problem if isinstance(cause, BadValue) else first["msg"]
    return InputError("error.outreach.event_param", where=where, detail=detail)


def pick_channel(
    flags: Mapping[Any, Any], step: Step, purpose: str
) -> tuple[str | None, Exclusion | None]:
    """The first of the step's channels a contact can be reached on, or why none.

    ``flags`` is the contact's audience row: ``out_CH``, ``noconsent_CH`` (marketing only)
    and ``has_CH`` (channels that need an address) per channel.
    """
    refusal = Exclusion.NO_CHANNEL
    for position, channel in enumerate(step.channels):
        if flags[f"out_{channel}"]:
            reason = Exclusion.OPTED_OUT
        elif purpose == "marketing" and flags[f"noconsent_{channel}"]:
            reason = Exclusion.NO_CONSENT
        elif f"has_{channel}" in flags and not flags[f"has_{channel}"]:
            reason = Exclusion.NO_CHANNEL
        else:
            return channel, None
        if position == 0:
            refusal = reason  # report why the preferred channel was refused
    return None, refusal


def group_channel(platform: str | None, chat_id: str | None, step: Step) -> str | None:
    """The first of the step's channels that can post in a group (WeCom needs its chat id)."""
    for channel in step.channels:
        if channel != "wecom" or (platform == "wecom" and chat_id):
            return channel
    return None


def _span(span: tuple[time, time] | None) -> list[str] | None:
    return [span[0].isoformat("minutes"), span[1].isoformat("minutes")] if span else None


def message_context(
    campaign: Campaign,
    step: Step,
    locale: str | None,
    zone: ZoneInfo,
    event: EventSpec | None,
    params: Mapping[str, Any],
    window: tuple[time, time] | None,
    quiet: tuple[time, time] | None,
) -> dict[str, Any]:
    """The row's context document: what dispatch needs to render it and to keep its window."""
    ctx: dict[str, Any] = {
        "tz": zone.key,
        "locale": locale or "zh-CN",
        "purpose": campaign.purpose,
        "params": {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)},
    }
    if step.subject:
        ctx["subject"] = step.subject
    if window:
        ctx["window"] = _span(window)
    if quiet:
        ctx["quiet"] = _span(quiet)
    if event is not None:
        ctx["event"] = {
            "name": event.name,
            "start": event.start.isoformat(),
            "local_time": event.start.astimezone(zone).strftime("%m-%d %H:%M"),
            "location": event.location,
            "link": event.link,
        }
    return ctx


def outbox_row(
    campaign: Campaign,
    step: Step,
    key: str,
    due: datetime,
    *,
    channel: str,
    account_id: int | None,
    context: dict[str, Any],
    now: datetime,
    contact_id: int | None = None,
    group: int | None = None,
) -> dict[str, Any]:
    """The values of one planned outbox row, for a contact or (``group``) a group post."""
    recipient = contact_id if contact_id is not None else f"group:{group}"
    return {
        "campaign": campaign.name,
        "step": key,
        "contact_id": contact_id,
        "community_id": group,
        "channel": channel,
        "template": step.template,
        "account_id": account_id,
        "action": step.action,
        "state": OutboxState.PLANNED.value,
        "due_at": due,
        "idempotency_key": idempotency_key(campaign.name, key, recipient),
        "context": context,
        "created_at": now,
        "updated_at": now,
    }
