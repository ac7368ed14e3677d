"""Engines and transactions for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from crm.core.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
    from sqlalchemy.orm import Session

PREPARE_AFTER = 5  # psycopg's default: runs of a statement before it is prepared


@contextmanager
def prepared_statements(conn: Connection) -> Iterator[Connection]:
    """Let psycopg prepare this PostgreSQL connection's repeated statements while held.

    For a worker that runs the same few statements thousands of times (claim, mark), whose
    plans do not depend on the values: parsing and planning are then done once per statement.
    """
    raw: Any = conn.connection.driver_connection  # a psycopg connection
    before = raw.prepare_threshold
    raw.prepare_threshold = PREPARE_AFTER
    try:
        yield conn
    finally:
        raw.prepare_threshold = before


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and explicit BEGIN so writers can queue."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Batch statements bind id ranges and arrays. After five runs psycopg would prepare a
    # statement, and the server may then settle on a generic plan that guesses one row per
    # range and nests loops over aggregates: a scoring batch of under a second ran for more
    # than fifteen minutes that way at 1M contacts. So statements are not prepared: each is
    # planned for the values at hand. (Forcing custom plans server-wide instead also replans
    # the server's own foreign-key checks on every row, which halved bulk-import speed.)
    # Loops that run one fixed statement thousands of times opt in: ``prepared_statements``.
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("prepare_threshold", None)
    return create_engine(url, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling never emits BEGIN IMMEDIATE, so we take over:
    # autocommit at the driver, BEGIN issued by SQLAlchemy's "begin" event below.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine_or_session: Engine | Connection | Session) -> bool:
    """True when talking to PostgreSQL (dialect fast paths: COPY, SKIP LOCKED)."""
    return dialect_of(engine_or_session).name == "postgresql"


def dialect_of(bind: Engine | Connection | Session) -> Dialect:
    """The dialect of an engine, a connection or a session's bind."""
    if isinstance(bind, Engine | Connection):
        return bind.dialect
    return bind.get_bind().dialect


@contextmanager
def transaction(
    bind: Engine | Connection, *, immediate: bool = False, dry_run: bool = False
) -> Iterator[Session]:
    """The unit of work every service uses: commits on success, rolls back on error.

    ``bind`` is the engine, or a connection a worker holds for its whole run (its own
    transaction is begun and ended here). ``immediate=True`` takes SQLite's write lock up
    front (BEGIN IMMEDIATE), which is how claims stay exclusive there; PostgreSQL uses row
    locks and ignores the flag. ``dry_run=True`` rolls back even on success, so a preview runs
    the very statements a real run would and leaves nothing behind.
    """
    # The ORM is imported here, not with this module: a read through `read_only` never loads it.
    from sqlalchemy.orm import Session

    if immediate and isinstance(bind, Engine):
        bind = bind.execution_options(sqlite_begin="IMMEDIATE")
    session = Session(bind, expire_on_commit=False)
    try:
        session.begin()
        yield session
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def core_transaction(bind: Engine | Connection, *, immediate: bool = False) -> Iterator[Connection]:
    """A transaction on a plain connection: ``transaction`` without the ORM Session.

    For loops that run a few fixed statements thousands of times (dispatch batches), where a
    Session per transaction and per ``execute`` costs more CPU than the statements' own
    client work. ``bind`` is the engine (a pooled connection per transaction; ``immediate``
    takes SQLite's write lock up front) or a connection the worker holds for its run.
    """
    if isinstance(bind, Connection):
        with bind.begin():
            yield bind
        return
    if immediate:
        bind = bind.execution_options(sqlite_begin="IMMEDIATE")
    with bind.begin() as conn:
        yield conn


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """One transaction on a plain connection for a read that needs no ORM; always rolled back.

    For commands that must answer at once (``qunflow contacts list``): SQLAlchemy's ORM costs
    more to import than such a read takes.
    """
    with engine.connect() as conn:
        conn.begin()
        try:
            yield conn
        finally:
            conn.rollback()


def dialect_insert(session: Session | Connection, table: Any) -> PgInsert | SqliteInsert:
    """An INSERT for ``table`` in the session's dialect, so ``ON CONFLICT`` clauses can follow."""
    # Each dialect's module is imported on first use: a command that only reads loads neither.
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def check_connection(engine: Engine) -> None:
    """Fail with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError("error.core.db_unreachable", url=url, detail=reason) from exc
