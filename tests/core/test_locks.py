"""The contact-graph lock: identity resolution and routing exclude each other on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text

from crm.core.db import make_engine, transaction
from crm.core.locks import Lock, hold
from crm.core.vocabulary import SourceKind
from crm.intake.pipeline import ingest_items
from crm.intake.records import RawItem, SourceSpec
from crm.models import Contact
from crm.routing.route import route
from crm.routing.rules import load_rules

NOW = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)
GROUP = SourceSpec(kind=SourceKind.PEER_GROUP, key="宝妈群", name="宝妈群", operator_handle="op1")


def test_lock_keys_are_distinct() -> None:
    assert len({int(lock) for lock in Lock}) == len(Lock)


def _waiting_on(engine: Engine, lock: Lock) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": int(lock)},
            )
        )


def _wait_for(predicate, what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_resolution_and_route_wait_for_the_contact_graph_lock(pg_url: str) -> None:
    engine = make_engine(pg_url)
    errors: list[BaseException] = []

    def run(fn) -> threading.Thread:
        def body() -> None:
            try:
                fn()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        t = threading.Thread(target=body)
        t.start()
        return t

    try:
        with transaction(engine) as holder:
            hold(holder, Lock.CONTACT_GRAPH)  # as a running route or resolution holds it
            items = [RawItem(record_key="a", payload={"name": "小美", "phone": "13800138000"})]
            ingest = run(lambda: ingest_items(engine, GROUP, items, origin="t", now=NOW))
            _wait_for(lambda: _waiting_on(engine, Lock.CONTACT_GRAPH) == 1, "the ingest to wait")
            routing = run(lambda: route(engine, rules=load_rules(), now=NOW))
            _wait_for(lambda: _waiting_on(engine, Lock.CONTACT_GRAPH) == 2, "the route to wait")
            with transaction(engine) as s:  # nothing resolved or routed while the lock is held
                assert s.scalar(select(func.count()).select_from(Contact)) == 0
            assert ingest.is_alive() and routing.is_alive()
        ingest.join(120)
        routing.join(120)
        assert not errors, errors
        with transaction(engine) as s:  # both went through once the lock was free
            assert s.scalar(select(func.count()).select_from(Contact)) == 1
    finally:
        engine.dispose()
