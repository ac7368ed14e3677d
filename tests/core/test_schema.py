"""The migrated schema is exactly the models, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from crm.core.migrate import current_revision, head_revision
from crm.models import Base
from crm.models.partial_indexes import PARTIAL_INDEXES, add_partial_indexes


def test_migrations_match_models(engine):
    assert current_revision(engine) == head_revision()
    add_partial_indexes(Base.metadata)  # the models' partial indexes, as the migrations see them
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def _index_sql(conn, name):
    if conn.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    return conn.execute(text(query), {"name": name}).scalar_one()


def test_partial_indexes_keep_their_predicate(engine):
    # Alembic compares an index's columns, not its WHERE: the predicate is checked here.
    with engine.connect() as conn:
        for spec in PARTIAL_INDEXES:
            sql = _index_sql(conn, spec.name)
            assert f" ON {spec.table} " in sql or f" ON public.{spec.table} " in sql, sql
            where = sql.split(" WHERE ", 1)[1]
            for status in ("pending", "claimed"):
                assert (f"'{status}'" in where) == (f"'{status}'" in spec.where), sql


def test_every_domain_table_exists(engine):
    tables = set(inspect(engine).get_table_names())
    expected = {
        "contacts",
        "identities",
        "source_instances",
        "raw_records",
        "touches",
        "communities",
        "memberships",
        "events",
        "tier_changes",
        "operator_accounts",
        "platform_limits",
        "cap_usage",
        "consents",
        "audit_log",
        "outbox",
        "queue_items",
        "users",
        "quarantine",
    }
    assert expected <= tables


def test_identity_is_unique_per_kind(engine):
    uniques = inspect(engine).get_unique_constraints("identities")
    assert any(set(u["column_names"]) == {"kind", "value"} for u in uniques)


def test_postgres_plans_statements_for_the_values_at_hand(pg_url):
    # Batch statements run dozens of times per route; a generic plan for their id ranges and
    # arrays once turned a one-second scoring batch into a quarter of an hour. Statements are
    # not prepared unless a worker asks for it on the connection it holds.
    from crm.core.db import make_engine, prepared_statements

    eng = make_engine(pg_url)
    count = "SELECT count(*) FROM pg_prepared_statements"
    try:
        with eng.connect() as conn:
            for n in range(8):
                conn.execute(text("SELECT :n + 1"), {"n": n})
            assert conn.exec_driver_sql(count).scalar() == 0
            with prepared_statements(conn):
                for n in range(8):
                    conn.execute(text("SELECT :n + 2"), {"n": n})
                assert conn.exec_driver_sql(count).scalar() == 1
            # the server's own plans (foreign-key checks) stay cached
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
        with eng.connect() as conn:  # the pooled connection is back to planning afresh
            assert conn.connection.driver_connection.prepare_threshold is None
    finally:
        eng.dispose()
