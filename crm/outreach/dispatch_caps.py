"""The caps a dispatch batch reserves before it sends: which ledger keys each row needs, one
conditional upsert for the whole batch, and what a row that did not fit waits for.

Every message counts against its sending account's daily cap for the action (in the
account's local day, with pacing where the account's action has an interval); a group
invitation (``group_invite``) counts against the invited contact's own daily joins, since the
contact is the one who scans, and against the inviting account only under a limit named
``group_invite`` (none by default). ``group_join`` is an operator account joining a group.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from crm.core.vocabulary import CapAction, OutboxState
from crm.outreach.accounts import SendingAccount
from crm.outreach.ledger import (
    Ask,
    LedgerKey,
    account_subject,
    contact_subject,
    release,
    reserve_many,
)
from crm.outreach.limits import LimitBook, Scope, local_day, next_day_start
from crm.outreach.outbox import Claimed, Outcome

# What a row needs of one ledger key: the key, the ask, and when to retry if the key is full.
Need = tuple[LedgerKey, Ask, datetime]
# Per claimed row id: the ledger keys reserved for it.
Reserved = dict[int, tuple[LedgerKey, ...]]


def _key(ask: Ask) -> LedgerKey:
    return (ask.subject, ask.action, ask.day)


class BatchCaps:
    """Cap reservations for dispatch batches; an account's needs are cached for its local day."""

    def __init__(
        self, limits: LimitBook, accounts: dict[int, SendingAccount], *, zone: ZoneInfo
    ) -> None:
        self.limits, self.accounts, self.zone = limits, accounts, zone
        # (account, action) -> (local day start, end, the ledger asks for that day)
        self._asks: dict[tuple[int | None, str], tuple[datetime, datetime, list[Need]]] = {}

    def reserve(
        self,
        session: Session | Connection,
        rows: list[Claimed],
        now: datetime,
        outcomes: list[Outcome],
    ) -> tuple[set[int], Reserved]:
        """Reserve caps for fresh rows; defer what does not fit. Returns (granted ids, keys)."""
        needs = self._needs(rows, now)
        # Each key's ask (built wanting one unit) and how many of this batch's rows want it.
        wants: dict[LedgerKey, list[Any]] = {}
        for need in needs:
            for key, ask, _ in need:
                w = wants.get(key)
                if w is None:
                    wants[key] = [ask, 1]
                else:
                    w[1] += 1
        if not wants:
            return {r.id for r in rows}, {}
        left = reserve_many(
            session,
            [ask if n == 1 else ask._replace(want=n) for ask, n in wants.values()],
            now=now,
        )
        granted: set[int] = set()
        reserved: Reserved = {}
        keys_of: dict[int, tuple[LedgerKey, ...]] = {}  # by id() of a shared need list
        for row, need in zip(rows, needs, strict=True):
            keys = keys_of.get(id(need))
            if keys is None:
                keys = keys_of[id(need)] = tuple(k for k, _, _ in need)
            fits = True
            for k in keys:
                if left.get(k, 0) <= 0:
                    fits = False
                    break
            if fits:
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
                release(session, key[0], key[1], key[2], n)
        return granted, reserved

    def _needs(self, rows: list[Claimed], now: datetime) -> list[list[Need]]:
        # The ledger keys each row needs, each with when to retry if it is full; an account's
        # needs are worked out once per batch and shared by its rows.
        per_account: dict[tuple[int | None, str], list[Need]] = {}
        needs: list[list[Need]] = []
        for row in rows:
            pk = (row.account_id, row.action)
            need = per_account.get(pk)
            if need is None:
                need = per_account[pk] = self._account_asks(row.account_id, row.action, now)
            if row.action == CapAction.GROUP_INVITE:
                need = need + self._contact_asks(row, now)
            needs.append(need)
        return needs

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
        cap = self.limits.daily(acct.platform, Scope.ACCOUNT, action, acct.id)
        need: list[Need] = []
        if cap is not None:
            interval = self.limits.interval(acct.platform, action, acct.id)
            retry = now + timedelta(seconds=interval) if interval else day_end
            ask = Ask(account_subject(acct.id), action, day, 1, cap, interval)
            need = [(_key(ask), ask, retry)]
        self._asks[(account_id, action)] = (day_start, day_end, need)
        return need

    def _contact_asks(self, row: Claimed, now: datetime) -> list[Need]:
        acct = self.accounts.get(row.account_id) if row.account_id else None
        platform = acct.platform if acct else "wechat"
        cap = self.limits.daily(platform, Scope.CONTACT, "group_join")
        if cap is None or row.contact_id is None:  # invitations always name their contact
            return []
        day = local_day(now, self.zone)
        ask = Ask(contact_subject(row.contact_id), "group_join", day, 1, cap)
        return [(_key(ask), ask, next_day_start(day, self.zone))]


def release_keys(session: Session | Connection, keys: Iterable[tuple[str, str, date]]) -> None:
    """Give back one unit of each ledger key (a reserved action that did not happen)."""
    for subject, action, day in keys:
        release(session, subject, action, day)
