"""One dispatch batch: claim → settle what cannot go now → reserve caps → render → send → mark.

Per batch: claim (one statement) → skip opted-out (or churned) rows → defer rows outside their
send window → reserve caps for the rest in one conditional upsert (deferring what does not fit
to the next local day, or past the pacing interval) → render (a template error skips the row and
releases its reservation) → send, each with the row's idempotency key → mark all outcomes
in one statement, every attempt logged.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from crm.compliance.optout import OPTED_OUT
from crm.core.clock import fit_window
from crm.core.db import core_transaction, transaction
from crm.core.settings import Settings
from crm.core.vocabulary import CapAction, OutboxState
from crm.models import utcnow
from crm.outreach.accounts import load_limits, sending_accounts
from crm.outreach.channels.base import Channel, OutgoingMessage
from crm.outreach.churn import CHURN_SKIP
from crm.outreach.dispatch_caps import BatchCaps, Reserved, release_keys
from crm.outreach.dispatch_render import Templates, render_message
from crm.outreach.dispatch_send import send_row
from crm.outreach.outbox import (
    ADDRESSED_CHANNELS,
    QR_EXPIRING,
    Claimed,
    Outcome,
    claim,
    mark,
    mark_sending,
)
from crm.outreach.templates import TemplateError
from crm.routing.group_choice import NO_ADDRESS
from crm.routing.placement import withdraw_invitations
from crm.routing.rules.loader import configured_rules


@dataclass
class Tally:
    """Counts of outcomes, overall and per sending account (shared by a run's workers)."""

    total: Counter[str] = field(default_factory=Counter)
    per_account: dict[str, Counter[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_many(self, counts: Iterable[tuple[tuple[str, str], int]]) -> None:
        """Add ((account, outcome), n) pairs under one lock acquisition."""
        with self.lock:
            for (account, outcome), n in counts:
                self.total[outcome] += n
                per = self.per_account.get(account)
                if per is None:  # not setdefault: that builds a Counter per call
                    per = self.per_account[account] = Counter()
                per[outcome] += n


def _unaddressed_invitations(rows: list[Claimed], outcomes: list[Outcome]) -> list[tuple[int, int]]:
    # An invitation skipped for want of an address gives its group slot back.
    skipped = {o.id for o in outcomes if o.reason == NO_ADDRESS}
    return [
        (r.community_id, r.contact_id)
        for r in rows
        if r.id in skipped
        and r.action == CapAction.GROUP_INVITE
        and r.community_id is not None
        and r.contact_id is not None
    ]


def _span(value: Any) -> tuple[time, time] | None:
    if not value:
        return None
    return (time.fromisoformat(value[0]), time.fromisoformat(value[1]))


class Dispatcher:
    """Shared state of one dispatch run: settings, channels, limits and account details."""

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        *,
        settings: Settings,
        batch: int = 100,
        lease: timedelta = timedelta(minutes=5),
        now: datetime | None = None,
    ) -> None:
        self.engine, self.channels, self.settings = engine, channels, settings
        self.batch, self.lease, self.fixed_now = batch, lease, now
        self.tally = Tally()
        # An invitation's QR code must stay valid this long after sending (it is scanned later).
        self.qr_margin = timedelta(hours=configured_rules(settings).placement.qr_margin_hours)
        with transaction(engine) as session:
            self.accounts = sending_accounts(session, settings.zone)
            self.caps = BatchCaps(load_limits(session), self.accounts, zone=settings.zone)

    def now(self) -> datetime:
        """The run's clock: fixed for tests and benchmarks, else the current time."""
        return self.fixed_now or utcnow()

    def _tx(
        self, conn: Connection | None, *, immediate: bool = False
    ) -> AbstractContextManager[Connection]:
        """A transaction on the worker's own connection (PostgreSQL), else from the pool.

        On a plain connection, not a Session: a batch runs a few fixed statements, and a
        Session per transaction and per statement cost more CPU than their own client work.
        """
        return core_transaction(conn if conn is not None else self.engine, immediate=immediate)

    def run_batch(self, worker: str, conn: Connection | None = None) -> int:
        """Claim and process one batch; returns how many rows were claimed."""
        now = self.now()
        outcomes: list[Outcome] = []
        ready: list[Claimed] = []
        # One transaction claims, reserves caps and settles what cannot go now, so a committed
        # claim always holds its reservation (a row reclaimed after a crash is not reserved
        # twice) and no row it leaves claimed lacks one: the claim marks rows as possibly at
        # the provider, so a row reclaimed after a crash is looked up and sent unreserved.
        with self._tx(conn, immediate=True) as session:
            rows = claim(session, worker=worker, limit=self.batch, lease=self.lease, now=now)
            if not rows:
                return 0
            for row in rows:
                early = self._precheck(row, now)
                if early is not None:
                    outcomes.append(early)
                else:
                    ready.append(row)
            fresh = [r for r in ready if not r.uncertain]
            granted, reserved = self.caps.reserve(session, fresh, now, outcomes)
            mark(session, outcomes, worker=worker, now=now)
            withdraw_invitations(session, _unaddressed_invitations(rows, outcomes), now)
        settled = len(outcomes)
        to_send = [r for r in ready if r.uncertain or r.id in granted]
        messages = self._render(to_send, reserved, outcomes, conn, now)
        no_lookup = [r.id for r, _ in messages if not self._channel(r).can_lookup]
        if no_lookup:
            with self._tx(conn) as session:
                mark_sending(session, no_lookup, rows[0].token, now)
        for row, msg in messages:
            outcomes.append(send_row(self._channel(row), row, msg, now))
        with self._tx(conn) as session:
            mark(session, outcomes[settled:], worker=worker, now=self.now())
            self._release_unsent(session, outcomes, reserved)
        self._count(rows, outcomes)
        return len(rows)

    def _render(
        self,
        rows: list[Claimed],
        reserved: Reserved,
        outcomes: list[Outcome],
        conn: Connection | None,
        now: datetime,
    ) -> list[tuple[Claimed, OutgoingMessage]]:
        # A template error skips its row with the reason and gives its reservation back.
        messages: list[tuple[Claimed, OutgoingMessage]] = []
        templates: Templates = {}
        sending_at = now.isoformat()
        for row in rows:
            account = self.accounts.get(row.account_id) if row.account_id else None
            try:
                msg = render_message(
                    row, account, templates, settings=self.settings, sending_at=sending_at
                )
            except TemplateError as exc:
                keys = reserved.pop(row.id, ())
                if keys:
                    with self._tx(conn) as session:
                        release_keys(session, keys)
                outcomes.append(
                    Outcome(
                        row.id,
                        row.token,
                        OutboxState.SKIPPED,
                        reason=f"template_error: {exc}",
                        attempt="template_error",
                    )
                )
            else:
                messages.append((row, msg))
        return messages

    def _count(self, rows: list[Claimed], outcomes: list[Outcome]) -> None:
        account_of = {r.id: r.account_id for r in rows}
        counts: Counter[tuple[int | None, OutboxState]] = Counter(
            (account_of[o.id], o.state) for o in outcomes
        )
        self.tally.add_many(
            ((self._handle(account_id), state.value), n)
            for (account_id, state), n in counts.items()
        )

    def _handle(self, account_id: int | None) -> str:
        acct = self.accounts.get(account_id) if account_id else None
        return acct.handle if acct else "-"

    def _channel(self, row: Claimed) -> Channel:
        return self.channels[row.channel]

    def _precheck(self, row: Claimed, now: datetime) -> Outcome | None:
        # Opted out, or the sender churned with the contact, since planning, or no address:
        # skip. No such channel here, or outside the row's send window: defer (a row possibly
        # at the provider stays marked so).
        if row.opted_out:
            return Outcome(row.id, row.token, OutboxState.SKIPPED, reason=OPTED_OUT)
        if row.churned:
            return Outcome(row.id, row.token, OutboxState.SKIPPED, reason=CHURN_SKIP)
        if row.contact_id is not None and row.channel in ADDRESSED_CHANNELS and not row.address:
            # Marked sent, it would have reached nobody (a send list row with no one to send to).
            return Outcome(row.id, row.token, OutboxState.SKIPPED, reason=NO_ADDRESS)
        if row.channel not in self.channels:
            return Outcome(
                row.id,
                row.token,
                OutboxState.DEFERRED,
                reason=f"channel {row.channel} not configured",
                due_at=now + timedelta(hours=1),
                keep_sending=row.uncertain,
            )
        expiring = self._qr_expiring(row, now)
        if expiring is not None:
            return expiring
        window, quiet = _span(row.context.get("window")), _span(row.context.get("quiet"))
        if window or quiet:
            zone = ZoneInfo(row.context.get("tz") or self.settings.timezone)
            allowed = fit_window(now, zone, window=window, quiet=quiet)
            if allowed > now:
                return Outcome(
                    row.id,
                    row.token,
                    OutboxState.DEFERRED,
                    reason="outside send window",
                    due_at=allowed,
                    keep_sending=row.uncertain,
                )
        return None

    def _qr_expiring(self, row: Claimed, now: datetime) -> Outcome | None:
        # An invitation waits for a fresh code (groups rotate-qr) rather than carry one that
        # expires before the contact could scan it.
        if row.action != CapAction.GROUP_INVITE or not row.group:
            return None
        expires = row.group.get("qr_expires_at")
        if expires is None or expires > now + self.qr_margin:  # no expiry recorded: as given
            return None
        return Outcome(
            row.id,
            row.token,
            OutboxState.DEFERRED,
            reason=QR_EXPIRING,
            due_at=now + timedelta(hours=1),
            keep_sending=row.uncertain,
        )

    def _release_unsent(
        self, session: Connection, outcomes: list[Outcome], reserved: Reserved
    ) -> None:
        # A permanent refusal before the provider took the message gives the unit back.
        for o in outcomes:
            if o.state == OutboxState.FAILED and o.attempt == "refused" and o.id in reserved:
                release_keys(session, reserved[o.id])
