"""Shared fixtures: a fresh SQLite and PostgreSQL database per test, isolated Prefect state."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Isolate Prefect and Qunflow state before anything imports them.
_STATE = Path(tempfile.mkdtemp(prefix="qunflow-tests-"))
os.environ["PREFECT_HOME"] = str(_STATE / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
os.environ["QUNFLOW_DATA_DIR"] = str(_STATE / "data")
os.environ.pop("QUNFLOW_DATABASE_URL", None)
os.environ["QUNFLOW_LANG"] = "en"  # tests read the CLI's English; zh-CN tests set it

import pytest
from sqlalchemy import Engine, text

import flows.i18n  # noqa: F401  (str(error) reads English, as in every entry point)
from crm.core.db import make_engine
from crm.core.migrate import upgrade

BACKENDS = ["sqlite", "postgres"]


def _require_postgres() -> bool:
    return os.environ.get("QUNFLOW_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str | None]:
    """URL of a PostgreSQL server's maintenance db: from the environment or a throwaway cluster."""
    url = os.environ.get("QUNFLOW_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.helpers.pgcluster import local_cluster

    try:
        cm = local_cluster()
        started = cm.__enter__()
    except Exception as exc:
        if _require_postgres():
            pytest.fail(f"PostgreSQL required but could not start: {exc}")
        yield None
        return
    try:
        yield started
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_template(pg_server: str | None) -> str | None:
    """A migrated template database; each test clones it (CREATE DATABASE … TEMPLATE)."""
    if pg_server is None:
        return None
    admin = make_engine(pg_server, isolation_level="AUTOCOMMIT")
    name = f"qunflow_tpl_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(_with_db(pg_server, name))
    upgrade(eng)
    eng.dispose()
    admin.dispose()
    return name


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    path = _STATE / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


def _with_db(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
) -> Iterator[str]:
    """A fresh, migrated database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "qunflow.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    server = request.getfixturevalue("pg_server")
    if template is None:
        pytest.skip("PostgreSQL not available (set QUNFLOW_REQUIRE_POSTGRES=1 to fail instead)")
    yield from _fresh_pg(server, template)


@pytest.fixture
def pg_url(pg_server: str | None, pg_template: str | None) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, for tests about concurrency."""
    if pg_server is None or pg_template is None:
        if _require_postgres():
            pytest.fail("PostgreSQL required but not available")
        pytest.skip("PostgreSQL not available")
    yield from _fresh_pg(pg_server, pg_template)


def _fresh_pg(server: str, template: str) -> Iterator[str]:
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    name = f"qunflow_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _with_db(server, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the fresh database (SQLite and PostgreSQL)."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the `qunflow` CLI against the test database."""
    env = dict(os.environ)
    env["QUNFLOW_DATABASE_URL"] = db_url
    env["QUNFLOW_DATA_DIR"] = str(tmp_path / "data")
    return env


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STATE, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server per session; flows run against it without heartbeats."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        try:
            ctx = temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        except Exception:  # older settings without the heartbeat knob
            ctx = None
        if ctx is None:
            yield
        else:
            with ctx:
                yield
