"""Dispatch: workers claim due outbox rows, render, reserve caps, send, and mark the outcome.

Per batch: claim (one statement) → skip opted-out rows → defer rows outside their send window →
reserve caps for the rest in one conditional upsert (deferring what does not fit to the next
local day, or past the pacing interval) → render (a template error skips the row and releases
its reservation) → send, each with the row's idempotency key → mark all outcomes in one
statement. A row whose earlier attempt may have reached the provider is first looked up at
the provider; channels that cannot be asked mark it failed ("unknown outcome, not resent").
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from crm.compliance.optout import OPTED_OUT, unsubscribe_url
from crm.core.clock import fit_window
from crm.core.db import is_postgres, prepared_statements, transaction
from crm.core.errors import PermanentChannelError, TransientChannelError
from crm.core.settings import Settings, get_settings
from crm.core.vocabulary import OutboxState
from crm.models import Community, Identity, OperatorAccount, OutboxMessage, utcnow
from crm.outreach.caps import (
    Ask,
    LimitBook,
    account_subject,
    contact_subject,
    local_day,
    next_day_start,
    reserve_many,
)
from crm.outreach.caps import release as release_cap
from crm.outreach.channels.base import (
    AWAITING_CONFIRMATION,
    Channel,
    OutcomeUnknown,
    OutgoingMessage,
    SendResult,
    mask_phone,
)
from crm.outreach.outbox import Claimed, Outcome, claim, mark, mark_sending
from crm.outreach.templates import MessageTemplate, TemplateError, load

log = logging.getLogger(__name__)

# A ledger key (subject, action, local day), and what a row needs of it: the key, the ask,
# and when to retry if the key is full.
Key = tuple[str, str, date]
Need = tuple[Key, Ask, datetime]

MAX_ATTEMPTS = 6
BACKOFF = (30, 120, 600, 1800, 3600)  # seconds before retry n


@dataclass(frozen=True)
class _Account:
    id: int
    handle: str
    platform: str
    zone: ZoneInfo


@dataclass
class Tally:
    """Counts of outcomes, overall and per sending account."""

    total: Counter[str] = field(default_factory=Counter)
    per_account: dict[str, Counter[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_many(self, counts: Iterable[tuple[tuple[str, str], int]]) -> None:
        """Add ((account, outcome), n) pairs under one lock acquisition."""
        with self.lock:
            for (account, outcome), n in counts:
                self.total[outcome] += n
                self.per_account.setdefault(account, Counter())[outcome] += n


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
        # (account, action) -> (local day start, end, the ledger asks for that day)
        self._asks: dict[tuple[int | None, str], tuple[datetime, datetime, list[Need]]] = {}
        with transaction(engine) as session:
            self.limits = LimitBook(session)
            self.accounts = {
                a.id: _Account(
                    a.id,
                    a.handle,
                    a.platform,
                    ZoneInfo(a.timezone) if a.timezone else settings.zone,
                )
                for a in session.scalars(select(OperatorAccount))
            }

    def now(self) -> datetime:
        return self.fixed_now or utcnow()

    # --- one batch ------------------------------------------------------------
    def _tx(
        self, conn: Connection | None, *, immediate: bool = False
    ) -> AbstractContextManager[Session]:
        """A transaction on the worker's own connection (PostgreSQL), else from the pool."""
        return transaction(conn if conn is not None else self.engine, immediate=immediate)

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
            granted, reserved = self._reserve(session, fresh, now, outcomes)
            mark(session, outcomes, worker=worker, now=now)
        settled = len(outcomes)
        to_send = [r for r in ready if r.uncertain or r.id in granted]
        messages: list[tuple[Claimed, OutgoingMessage]] = []
        templates: dict[tuple[str, str | None], MessageTemplate | TemplateError] = {}
        sending_at = now.isoformat()
        for row in to_send:
            try:
                messages.append((row, self._message(row, templates, sending_at)))
            except TemplateError as exc:
                self._release(row, reserved, conn)
                outcomes.append(
                    Outcome(
                        row.id,
                        row.token,
                        OutboxState.SKIPPED,
                        reason=f"template_error: {exc}",
                        attempt="template_error",
                    )
                )
        no_lookup = [r.id for r, _ in messages if not self._channel(r).can_lookup]
        if no_lookup:
            with self._tx(conn) as session:
                mark_sending(session, no_lookup, rows[0].token, now)
        for row, msg in messages:
            outcomes.append(self._send(row, msg, reserved, now))
        with self._tx(conn) as session:
            mark(session, outcomes[settled:], worker=worker, now=self.now())
            self._release_unsent(session, outcomes, reserved)
        account_of = {r.id: r.account_id for r in rows}
        counts: Counter[tuple[int | None, OutboxState]] = Counter(
            (account_of[o.id], o.state) for o in outcomes
        )
        self.tally.add_many(
            ((self._handle(account_id), state.value), n)
            for (account_id, state), n in counts.items()
        )
        return len(rows)

    def _handle(self, account_id: int | None) -> str:
        acct = self.accounts.get(account_id) if account_id else None
        return acct.handle if acct else "-"

    def _channel(self, row: Claimed) -> Channel:
        return self.channels[row.channel]

    def _precheck(self, row: Claimed, now: datetime) -> Outcome | None:
        if row.opted_out:
            return Outcome(row.id, row.token, OutboxState.SKIPPED, reason=OPTED_OUT)
        if row.channel not in self.channels:
            return Outcome(
                row.id,
                row.token,
                OutboxState.DEFERRED,
                reason=f"channel {row.channel} not configured",
                due_at=now + timedelta(hours=1),
                keep_sending=row.uncertain,
            )
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

    def _reserve(
        self, session: Session, rows: list[Claimed], now: datetime, outcomes: list[Outcome]
    ) -> tuple[set[int], dict[int, tuple[Key, ...]]]:
        """Reserve caps for fresh rows; defer what does not fit. Returns (granted ids, keys)."""
        # The ledger keys a row needs, each with when to retry if it is full; an account's
        # needs are worked out once per batch and shared by its rows.
        per_account: dict[tuple[int | None, str], list[Need]] = {}
        needs: list[list[Need]] = []
        wants: dict[Key, int] = {}
        asks: dict[Key, Ask] = {}
        for row in rows:
            pk = (row.account_id, row.action)
            need = per_account.get(pk)
            if need is None:
                need = per_account[pk] = self._account_asks(row.account_id, row.action, now)
            if row.action == "group_join":
                need = need + self._contact_asks(row, now)
            needs.append(need)
            for key, ask, _ in need:
                if key in wants:
                    wants[key] += 1
                else:
                    wants[key], asks[key] = 1, ask
        if not wants:
            return {r.id for r in rows}, {}
        left = reserve_many(
            session,
            [Ask(a.subject, a.action, a.day, wants[k], a.cap, a.interval) for k, a in asks.items()],
            now=now,
        )
        granted: set[int] = set()
        reserved: dict[int, tuple[Key, ...]] = {}
        keys_of: dict[int, tuple[Key, ...]] = {}  # by id() of a shared need list
        for row, need in zip(rows, needs, strict=True):
            keys = keys_of.get(id(need))
            if keys is None:
                keys = keys_of[id(need)] = tuple(k for k, _, _ in need)
            if all(left.get(k, 0) > 0 for k in keys):
                for k in keys:
                    left[k] -= 1
                granted.add(row.id)
                reserved[row.id] = keys
            else:
                blocked = [retry for k, _, retry in need if left.get(k, 0) <= 0]
                outcomes.append(
                    Outcome(
                        row.id,
                        row.token,
                        OutboxState.DEFERRED,
                        reason="cap reached",
                        due_at=max(blocked),
                    )
                )
        for key, n in left.items():  # grants no row could use (the other cap said no)
            if n > 0:
                release_cap(session, key[0], key[1], key[2], n)
        return granted, reserved

    def _account_asks(self, account_id: int | None, action: str, now: datetime) -> list[Need]:
        # Cached per account and action until the account's local day ends.
        hit = self._asks.get((account_id, action))
        if hit is not None and hit[0] <= now < hit[1]:
            cached = hit[2]
            if cached and cached[0][1].interval:  # pacing: retry after the interval from now
                key, ask, _ = cached[0]
                return [(key, ask, now + timedelta(seconds=ask.interval))]
            return cached
        acct = self.accounts.get(account_id) if account_id else None
        if acct is None:
            return []
        day = local_day(now, acct.zone)
        day_start = next_day_start(day - timedelta(days=1), acct.zone)
        day_end = next_day_start(day, acct.zone)
        cap = self.limits.daily(acct.platform, "account", action, acct.id)
        need: list[Need] = []
        if cap is not None:
            interval = self.limits.interval(acct.platform, action, acct.id)
            retry = now + timedelta(seconds=interval) if interval else day_end
            ask = Ask(account_subject(acct.id), action, day, 1, cap, interval)
            need = [(_k(ask), ask, retry)]
        self._asks[(account_id, action)] = (day_start, day_end, need)
        return need

    def _contact_asks(self, row: Claimed, now: datetime) -> list[Need]:
        acct = self.accounts.get(row.account_id) if row.account_id else None
        platform = acct.platform if acct else "wechat"
        cap = self.limits.daily(platform, "contact", "group_join")
        if cap is None or row.contact_id is None:  # invitations always name their contact
            return []
        day = local_day(now, self.settings.zone)
        ask = Ask(contact_subject(row.contact_id), "group_join", day, 1, cap)
        return [(_k(ask), ask, next_day_start(day, self.settings.zone))]

    def _release(
        self,
        row: Claimed,
        reserved: dict[int, tuple[Key, ...]],
        conn: Connection | None,
    ) -> None:
        keys = reserved.pop(row.id, ())
        if keys:
            with self._tx(conn) as session:
                for subject, action, day in keys:
                    release_cap(session, subject, action, day)

    def _release_unsent(
        self,
        session: Any,
        outcomes: list[Outcome],
        reserved: dict[int, tuple[Key, ...]],
    ) -> None:
        # A permanent refusal before the provider took the message gives the unit back.
        for o in outcomes:
            if o.state == OutboxState.FAILED and o.attempt == "refused" and o.id in reserved:
                for subject, action, day in reserved[o.id]:
                    release_cap(session, subject, action, day)

    def _message(
        self,
        row: Claimed,
        templates: dict[tuple[str, str | None], MessageTemplate | TemplateError],
        sending_at: str,
    ) -> OutgoingMessage:
        acct = self.accounts.get(row.account_id) if row.account_id else None
        ctx = row.context
        locale = ctx.get("locale")
        key = (row.template, locale)
        tpl = templates.get(key)
        if tpl is None:  # looked up (and its file's mtime checked) once per batch
            try:
                tpl = load(row.template, locale=locale, operator_dir=self.settings.templates_dir)
            except TemplateError as exc:
                tpl = exc
            templates[key] = tpl
        if isinstance(tpl, TemplateError):
            raise tpl
        contact = None
        if row.contact_id is not None:
            contact = {"id": row.contact_id, "name": row.contact_name, "tier": row.contact_tier}
        model = {
            "contact": contact,
            "group": row.group,
            # copies: rows of a step share the context document, templates get their own
            "event": dict(ctx["event"]) if ctx.get("event") else None,
            "params": dict(ctx.get("params") or {}),
            "account": acct.handle if acct else None,
            "unsubscribe_url": unsubscribe_url(row.contact_id, row.channel, settings=self.settings)
            if ctx.get("purpose") == "marketing" and row.contact_id is not None
            else None,
        }
        meta = {"campaign": row.campaign, "step": row.step, "sending_at": sending_at}
        address = row.address
        if row.contact_id is None and row.group:  # a group post: the group is the recipient
            meta.update(group=row.group["name"], chat_id=row.group["chat_id"])
            address = row.group["chat_id"] or row.group["name"]
        return OutgoingMessage(
            outbox_id=row.id,
            idempotency_key=row.idempotency_key,
            contact_id=row.contact_id,
            channel=row.channel,
            text=tpl.render(model),
            address=address,
            subject=ctx.get("subject"),
            account=acct.handle if acct else None,
            action=row.action,
            meta=meta,
        )

    def _send(
        self,
        row: Claimed,
        msg: OutgoingMessage,
        reserved: dict[int, tuple[Key, ...]],
        now: datetime,
    ) -> Outcome:
        channel = self._channel(row)
        try:
            if row.uncertain:
                if not channel.can_lookup:
                    return Outcome(
                        row.id,
                        row.token,
                        OutboxState.FAILED,
                        reason="unknown outcome, not resent (worker stopped mid-send)",
                        rendered=msg.text,
                        attempt="unknown",
                    )
                found = channel.lookup(msg)
                if found is not None:
                    return self._accepted(row, msg, found, now, "found")
            result = channel.send(msg)
            return self._accepted(row, msg, result, now, "sent")
        except TransientChannelError as exc:
            detail = mask_phone(str(exc))
            if row.attempts >= MAX_ATTEMPTS:
                return Outcome(
                    row.id,
                    row.token,
                    OutboxState.FAILED,
                    reason=f"gave up after {row.attempts} attempts: {detail}",
                    rendered=msg.text,
                    attempt="transient",
                    keep_sending=channel.can_lookup,
                )
            wait = BACKOFF[min(row.attempts - 1, len(BACKOFF) - 1)]
            log.info("outbox %s: transient error, retry in %ss: %s", row.id, wait, detail)
            return Outcome(
                row.id,
                row.token,
                OutboxState.DEFERRED,
                reason=f"retry: {detail}",
                due_at=now + timedelta(seconds=wait),
                attempt="transient",
                keep_sending=channel.can_lookup,
            )
        except OutcomeUnknown as exc:
            return Outcome(
                row.id,
                row.token,
                OutboxState.FAILED,
                reason=f"unknown outcome, not resent: {mask_phone(str(exc))}",
                rendered=msg.text,
                attempt="unknown",
            )
        except PermanentChannelError as exc:
            return Outcome(
                row.id,
                row.token,
                OutboxState.FAILED,
                reason=mask_phone(str(exc)),
                rendered=msg.text,
                attempt="refused",
            )

    def _accepted(
        self, row: Claimed, msg: OutgoingMessage, result: SendResult, now: datetime, how: str
    ) -> Outcome:
        waiting = result.state == AWAITING_CONFIRMATION
        return Outcome(
            row.id,
            row.token,
            OutboxState.AWAITING_CONFIRMATION if waiting else OutboxState.SENT,
            provider_id=result.provider_id,
            sent_at=None if waiting else now,
            rendered=msg.text,
            attempt=how,
        )

    # --- workers --------------------------------------------------------------
    def work(self, worker: str, *, until_idle: bool, stop: threading.Event) -> None:
        if not is_postgres(self.engine):  # SQLite: BEGIN IMMEDIATE per claim, pooled
            while not stop.is_set():
                if self.run_batch(worker) == 0 or not until_idle:
                    return
            return
        # PostgreSQL: one connection per worker for the whole run (no checkout, ping and reset
        # round trips per transaction).
        # The claim and mark statements run thousands of times with the same shape: prepared,
        # with a cached generic plan (the engine default plans each run afresh).
        with self.engine.connect() as conn, prepared_statements(conn):
            while not stop.is_set():
                if self.run_batch(worker, conn) == 0 or not until_idle:
                    return


def _k(ask: Ask) -> Key:
    return (ask.subject, ask.action, ask.day)


def _span(value: Any) -> tuple[time, time] | None:
    if not value:
        return None
    return (time.fromisoformat(value[0]), time.fromisoformat(value[1]))


def dispatch(
    engine: Engine,
    *,
    workers: int = 1,
    until_idle: bool = True,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    batch: int = 100,
    lease: timedelta = timedelta(minutes=5),
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run ``workers`` threads over the due outbox rows; returns counts overall and per account."""
    from crm.outreach.channels import build_channels

    settings = settings or get_settings()
    chans = dict(channels) if channels is not None else build_channels(settings)
    d = Dispatcher(engine, chans, settings=settings, batch=batch, lease=lease, now=now)
    stop = threading.Event()
    base = f"{socket.gethostname()}:{os.getpid()}"
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            d.work(f"{base}:{i}", until_idle=until_idle, stop=stop)
        except BaseException as exc:  # surfaced after join
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if channels is None:
        for ch in chans.values():
            ch.close()
    if errors:
        raise errors[0]
    total = d.tally.total
    return {
        "sent": total["sent"],
        "awaiting_confirmation": total["awaiting_confirmation"],
        "deferred": total["deferred"],
        "failed": total["failed"],
        "skipped": total["skipped"],
        "per_account": {k: dict(v) for k, v in sorted(d.tally.per_account.items())},
    }


def poll_confirmations(
    engine: Engine, channel: Any, *, now: datetime | None = None, limit: int = 500
) -> dict[str, int]:
    """Ask WeCom what became of mass-message tasks awaiting a staff member's confirmation."""
    now = now or utcnow()
    done: Counter[str] = Counter()
    external_id = (
        select(Identity.value)
        .where(
            Identity.contact_id == OutboxMessage.contact_id,
            Identity.kind == "wecom_external_userid",
        )
        .order_by(Identity.id)
        .limit(1)
        .scalar_subquery()
    )
    with transaction(engine) as session:
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.provider_message_id,
                OutboxMessage.contact_id,
                OperatorAccount.handle,
                Community.external_id.label("chat_id"),
                external_id.label("external_userid"),
            )
            .outerjoin(OperatorAccount, OperatorAccount.id == OutboxMessage.account_id)
            .outerjoin(Community, Community.id == OutboxMessage.community_id)
            .where(OutboxMessage.state == OutboxState.AWAITING_CONFIRMATION.value)
            .limit(limit)
        ).all()
        # (state, reason) -> outbox ids; the provider is asked once per task, the database
        # is written once per outcome.
        settled: dict[tuple[str, str | None], list[int]] = {}
        for r in rows:
            group = r.contact_id is None  # a group post: the group's chat id is the recipient
            recipient = (r.chat_id if group else r.external_userid) or ""
            status = channel.confirmation(r.provider_message_id, recipient, r.handle, group=group)
            if status is None:
                done["pending"] += 1
            elif status in ("sent", "duplicate"):
                reason = None if status == "sent" else "contact already received it"
                settled.setdefault((OutboxState.SENT.value, reason), []).append(r.id)
            else:
                settled.setdefault((OutboxState.FAILED.value, f"wecom: {status}"), []).append(r.id)
        for (state, reason), ids in settled.items():
            values: dict[str, Any] = {"state": state, "reason": reason, "updated_at": now}
            if state == OutboxState.SENT.value:
                values["sent_at"] = now
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))
            done[state] += len(ids)
    return dict(done)
