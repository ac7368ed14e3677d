"""Dispatch: worker threads claim due outbox rows batch by batch until nothing is due.

Each batch (crm.outreach.dispatch_batch) claims with ``FOR UPDATE SKIP LOCKED`` (SQLite:
inside ``BEGIN IMMEDIATE``), reserves caps before sending and marks every outcome, so any
number of workers, in this process or others, never send a row twice or exceed a cap. A run
first reads the outcome of WeCom mass-message tasks awaiting confirmation
(crm.outreach.confirmations), so the scheduled dispatch flow is what settles them.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from crm.core.db import is_postgres, prepared_statements, transaction
from crm.core.settings import Settings
from crm.outreach.channels.base import Channel
from crm.outreach.confirmations import poll_confirmations
from crm.outreach.dispatch_batch import Dispatcher
from crm.outreach.outbox import still_coming


@dataclass(frozen=True)
class DispatchReport:
    """What a dispatch run did: outcomes overall and per sending account's handle, and what is
    still coming (rows planned or deferred for later, and when the first falls due)."""

    sent: int
    awaiting_confirmation: int
    deferred: int
    failed: int
    skipped: int
    per_account: dict[str, dict[str, int]]
    not_due: int = 0
    next_due_at: datetime | None = None
    # What WeCom said of mass-message tasks awaiting confirmation, asked before sending.
    confirmations: dict[str, int] = field(default_factory=dict)


def dispatch(
    engine: Engine,
    *,
    settings: Settings,
    workers: int = 1,
    until_idle: bool = True,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    batch: int = 100,
    lease: timedelta = timedelta(minutes=5),
) -> DispatchReport:
    """Run ``workers`` threads over the due outbox rows; counts overall and per account.

    Without ``channels`` the configured ones are built, and closed at the end.
    """
    from crm.outreach.channels import build_channels

    chans = dict(channels) if channels is not None else build_channels(settings)
    confirmations = _confirm(engine, chans, settings, now)
    d = Dispatcher(engine, chans, settings=settings, batch=batch, lease=lease, now=now)
    stop = threading.Event()
    base = f"{socket.gethostname()}:{os.getpid()}"
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(d, f"{base}:{i}", until_idle=until_idle, stop=stop)
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
    with transaction(engine) as session:
        not_due, next_due_at = still_coming(session, d.now())
    return DispatchReport(
        sent=total["sent"],
        awaiting_confirmation=total["awaiting_confirmation"],
        deferred=total["deferred"],
        failed=total["failed"],
        skipped=total["skipped"],
        per_account={k: dict(v) for k, v in sorted(d.tally.per_account.items())},
        not_due=not_due,
        next_due_at=next_due_at,
        confirmations=confirmations,
    )


def _confirm(
    engine: Engine, chans: Mapping[str, Channel], settings: Settings, now: datetime | None
) -> dict[str, int]:
    """Read what became of WeCom mass-message tasks before sending: a customer already served
    this window (status 3) is deferred to the next window of the limit in force. Asked
    before sending, since tasks made by this run cannot have been confirmed yet."""
    wecom = chans.get("wecom")
    if wecom is None or not hasattr(wecom, "confirmation"):
        return {}
    return poll_confirmations(
        engine, wecom, now=now, mass_per=settings.wecom_mass_per, zone=settings.zone
    )


def work(d: Dispatcher, worker: str, *, until_idle: bool, stop: threading.Event) -> None:
    """One worker: batches until nothing is claimed (or one batch), or another worker failed."""
    if not is_postgres(d.engine):  # SQLite: BEGIN IMMEDIATE per claim, pooled
        while not stop.is_set():
            if d.run_batch(worker) == 0 or not until_idle:
                return
        return
    # PostgreSQL: one connection per worker for the whole run (no checkout, ping and reset
    # round trips per transaction).
    # The claim and mark statements run thousands of times with the same shape: prepared,
    # with a cached generic plan (the engine default plans each run afresh).
    with d.engine.connect() as conn, prepared_statements(conn):
        while not stop.is_set():
            if d.run_batch(worker, conn) == 0 or not until_idle:
                return
