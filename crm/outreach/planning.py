"""Planning a campaign into the outbox: one pass over its audience, rows inserted once.

The audience is read in one query (crm.outreach.audience), each step's due times come from
crm.outreach.cadence, and rows go in chunks of ``INSERT … ON CONFLICT (campaign, step,
contact_id) DO NOTHING`` (group posts: on their idempotency key): planning twice plans
nothing twice. Rows from a WeCom staff member who churned with the contact are skipped in the
same transaction (reason ``wecom_churn``). Opted-out contacts, contacts without consent for a
marketing campaign and contacts without an address on the step's channels are not planned; the
report counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, transaction
from crm.core.settings import Settings
from crm.models import OutboxMessage, utcnow
from crm.outreach.audience import contacts_query, groups_query, step_accounts
from crm.outreach.cadence import Cadence, Verdict
from crm.outreach.campaign_file import find_campaign, load_campaigns, needs_parameters
from crm.outreach.campaign_spec import Step
from crm.outreach.churn import skip_churned
from crm.outreach.plan_rows import (
    Exclusion,
    event_for,
    group_channel,
    message_context,
    outbox_row,
    pick_channel,
    zone_of,
)

CHUNK = 1000


@dataclass(frozen=True)
class PlanReport:
    """What one planning pass of a campaign did (or, in a dry run, would do)."""

    campaign: str
    target: str  # contacts or groups
    audience: int  # recipients read: contacts, or groups for a group campaign
    planned: int  # rows inserted now
    already_planned: int  # due rows an earlier pass had inserted
    excluded: dict[str, int]  # per Exclusion: recipient steps not planned, and why
    not_yet_due: int  # occurrences beyond the horizon (a later pass plans them)
    by_step: dict[str, int]  # rows inserted per step name
    dry_run: bool


@dataclass
class _Counts:
    audience: int = 0
    not_yet_due: int = 0
    excluded: Counter[Exclusion] = field(default_factory=Counter)


def plan_campaign(
    engine: Engine,
    name: str,
    *,
    settings: Settings,
    dry_run: bool = False,
    now: datetime | None = None,
    contact_ids: Iterable[int] | None = None,
    params: Mapping[str, Any] | None = None,
) -> PlanReport:
    """Plan a campaign's due messages into the outbox (idempotent); counts per reason."""
    campaign = find_campaign(settings, name)
    params = dict(params or {})
    event = event_for(campaign, params) if campaign.anchor == "event" else None
    cadence = Cadence(campaign, (now or utcnow()).astimezone(UTC), event)
    planner = _Planner(cadence, zone=settings.zone, params=params)
    by_group = campaign.target == "groups"
    with transaction(engine, dry_run=dry_run) as session:
        accounts = step_accounts(session, campaign)
        if by_group:
            rows = planner.group_rows(session, accounts, contact_ids)
        else:
            rows = planner.contact_rows(session, accounts, contact_ids)
        inserted = insert_rows(session, rows, by_group=by_group)
        if not by_group:
            churned = skip_churned(session, campaign.name, planned_at=cadence.now)
            planner.counts.excluded[Exclusion.WECOM_CHURN] += churned
    counts = planner.counts
    added = sum(inserted.values())
    return PlanReport(
        campaign=campaign.name,
        target=campaign.target,
        audience=counts.audience,
        planned=added - counts.excluded[Exclusion.WECOM_CHURN],
        already_planned=len(rows) - added,
        excluded={reason.value: counts.excluded[reason] for reason in Exclusion},
        not_yet_due=counts.not_yet_due,
        by_step=inserted,
        dry_run=dry_run,
    )


def plan_all(
    engine: Engine, now: datetime | None = None, *, settings: Settings
) -> dict[str, PlanReport]:
    """Plan every campaign that needs no parameters (event campaigns need an event)."""
    return {
        name: plan_campaign(engine, name, now=now, settings=settings)
        for name, campaign in sorted(load_campaigns(settings.campaigns_path).items())
        if not needs_parameters(campaign)
    }


class _Planner:
    """One planning pass of a campaign: the rows to insert per recipient, counting the rest."""

    def __init__(self, cadence: Cadence, *, zone: ZoneInfo, params: dict[str, Any]) -> None:
        self.cadence, self.campaign, self.zone, self.params = (
            cadence,
            cadence.campaign,
            zone,
            params,
        )
        self.counts = _Counts()

    def contact_rows(
        self,
        session: Session,
        accounts: dict[tuple[str, str], list[int]],
        contact_ids: Iterable[int] | None,
    ) -> list[dict[str, Any]]:
        """One row per contact of the audience, step and due occurrence."""
        campaign, counts = self.campaign, self.counts
        channels = sorted({c for s in campaign.steps for c in s.channels})
        rows: list[dict[str, Any]] = []
        for rec in session.execute(contacts_query(campaign, channels, contact_ids)):
            counts.audience += 1
            zone = zone_of(rec.timezone, self.zone)
            anchor = rec.anchor
            if isinstance(anchor, str):  # SQLite hands back MIN()/COALESCE() as text
                anchor = datetime.fromisoformat(anchor)
            if anchor is not None and anchor.tzinfo is None:
                anchor = anchor.replace(tzinfo=UTC)
            for step in campaign.steps:
                channel, refusal = pick_channel(rec._mapping, step, campaign.purpose)
                if channel is None:
                    assert refusal is not None
                    counts.excluded[refusal] += 1
                    continue
                accts = accounts[step.name, channel]
                account_id = accts[rec.id % len(accts)] if accts else None
                for key, due in self._due(step, anchor, zone):
                    rows.append(
                        outbox_row(
                            campaign,
                            step,
                            key,
                            due,
                            channel=channel,
                            account_id=account_id,
                            context=self._context(step, rec.locale, zone),
                            now=self.cadence.now,
                            contact_id=rec.id,
                        )
                    )
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
        for group in session.execute(groups_query(self.campaign, contact_ids)):
            self.counts.audience += 1
            for step in self.campaign.steps:
                channel = group_channel(group.platform, group.external_id, step)
                if channel is None:
                    self.counts.excluded[Exclusion.NO_CHANNEL] += 1
                    continue
                named = accounts[step.name, channel] if step.account else []
                for key, due in self._due(step, None, self.zone):
                    rows.append(
                        outbox_row(
                            self.campaign,
                            step,
                            key,
                            due,
                            channel=channel,
                            account_id=named[0] if named else group.owner_account_id,
                            context=self._context(step, None, self.zone),
                            now=self.cadence.now,
                            group=group.id,
                        )
                    )
        return rows

    def _due(
        self, step: Step, anchor: datetime | None, zone: ZoneInfo
    ) -> list[tuple[str, datetime]]:
        """The step's (key, due) for one recipient; counts the ones left out and why."""
        out: list[tuple[str, datetime]] = []
        for slot in self.cadence.slots(step, anchor, zone):
            if slot.verdict is Verdict.TOO_LATE:
                self.counts.excluded[Exclusion.TOO_LATE] += 1
            elif slot.verdict is Verdict.NOT_YET_DUE:
                self.counts.not_yet_due += 1
            else:
                out.append((slot.key, slot.due))
        return out

    def _context(self, step: Step, locale: str | None, zone: ZoneInfo) -> dict[str, Any]:
        cadence = self.cadence
        return message_context(
            self.campaign,
            step,
            locale,
            zone,
            cadence.event,
            self.params,
            cadence.window,
            cadence.quiet,
        )


def insert_rows(
    session: Session, rows: list[dict[str, Any]], *, by_group: bool = False
) -> dict[str, int]:
    """Chunked INSERT … ON CONFLICT DO NOTHING; returns how many rows each step name added.

    Group posts have no contact, so their idempotency key (unique per campaign, step and
    group) is what makes planning them twice plan nothing twice.
    """
    conflict = ["idempotency_key"] if by_group else ["campaign", "step", "contact_id"]
    table = OutboxMessage.__table__
    added: dict[str, int] = {}
    for i in range(0, len(rows), CHUNK):
        stmt = (
            dialect_insert(session, OutboxMessage)
            .values(rows[i : i + CHUNK])
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(table.c.step)
        )
        for (step,) in session.execute(stmt):
            base = step.split("@")[0]
            added[base] = added.get(base, 0) + 1
    return added
