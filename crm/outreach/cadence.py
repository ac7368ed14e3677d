"""When a campaign step is due for a recipient, and whether a plan made now includes it (pure).

Due times are computed in the recipient's time zone (crm.core.clock), then fitted into the
campaign's send window and out of its quiet hours. A due time further back than ``max_late``
is too late; one further ahead than ``horizon`` is planned by a later pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo

from crm.core.clock import at_local, fit_window, parse_duration, weekly_occurrences
from crm.outreach.campaign_spec import Campaign, EventSpec, Step


class Verdict(StrEnum):
    """What a plan made now does with one occurrence of a step."""

    DUE = "due"  # planned now
    TOO_LATE = "too_late"  # past max_late, or an event notice the window pushed past the event
    NOT_YET_DUE = "not_yet_due"  # beyond the horizon: a later pass plans it


@dataclass(frozen=True, slots=True)
class Slot:
    """One occurrence of a step for one recipient."""

    key: str  # the outbox step key: the step's name, with the occurrence for repeating anchors
    due: datetime  # inside the send window, outside quiet hours
    verdict: Verdict


def step_due(step: Step, anchor: datetime, zone: ZoneInfo) -> datetime:
    """When a step is due for an anchor instant, in the recipient's zone (before the window)."""
    base = anchor if step.at is None else at_local(anchor, step.day_offset or 0, step.at, zone)
    if step.offset is not None and (step.at is None or step.day_offset is None):
        base = base + parse_duration(step.offset)
    return base


@dataclass(frozen=True)
class Cadence:
    """A campaign's timing rules for one planning pass at ``now`` (durations parsed once)."""

    campaign: Campaign
    now: datetime
    event: EventSpec | None = None  # the event an event-anchored campaign announces

    @cached_property
    def late(self) -> timedelta:
        """How far back a due time may lie and still be sent."""
        return parse_duration(self.campaign.max_late)

    @cached_property
    def horizon(self) -> timedelta:
        """How far ahead this pass plans."""
        return parse_duration(self.campaign.horizon)

    @cached_property
    def window(self) -> tuple[time, time] | None:
        """The daily send window, if the campaign has one."""
        return self.campaign.window.pair() if self.campaign.window else None

    @cached_property
    def quiet(self) -> tuple[time, time] | None:
        """The daily quiet hours, if the campaign has them."""
        return self.campaign.quiet_hours.pair() if self.campaign.quiet_hours else None

    def occurrences(
        self, step: Step, anchor: datetime | None, zone: ZoneInfo
    ) -> list[tuple[str, datetime, datetime]]:
        """(step key, anchor instant, raw due instant) for one recipient and step."""
        campaign, now = self.campaign, self.now
        if campaign.anchor == "weekly":
            assert step.weekdays is not None and step.at is not None
            late, horizon = self.late, self.horizon
            return [
                (f"{step.name}@{t.astimezone(zone).date().isoformat()}", t, t)
                for t in weekly_occurrences(now - late, now + horizon, step.weekdays, step.at, zone)
            ]
        if campaign.anchor == "event":
            assert self.event is not None
            event = self.event
            key = event.key or event.start.strftime("%Y%m%dT%H%M")
            return [(f"{step.name}@{key}", event.start, step_due(step, event.start, zone))]
        if anchor is None:
            return []
        due = step_due(step, anchor, zone)
        if campaign.anchor == "last_active":
            return [(f"{step.name}@{anchor.date().isoformat()}", anchor, due)]
        return [(step.name, anchor, due)]

    def slots(self, step: Step, anchor: datetime | None, zone: ZoneInfo) -> list[Slot]:
        """The step's occurrences for one recipient, fitted into the window and judged."""
        now, late, horizon = self.now, self.late, self.horizon
        window, quiet = self.window, self.quiet
        by_event = self.campaign.anchor == "event"
        out: list[Slot] = []
        for key, anchor_at, raw_due in self.occurrences(step, anchor, zone):
            due = fit_window(raw_due, zone, window=window, quiet=quiet)
            # An event notice pushed past the event by the window is pointless: too late.
            if due < now - late or (by_event and raw_due < anchor_at <= due):
                verdict = Verdict.TOO_LATE
            elif not by_event and due > now + horizon:
                verdict = Verdict.NOT_YET_DUE
            else:
                verdict = Verdict.DUE
            out.append(Slot(key, due, verdict))
        return out
