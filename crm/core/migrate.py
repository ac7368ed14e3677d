"""Apply and inspect the Alembic migrations that build the CRM schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from crm.core.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the bundled migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the given revision (default: the newest)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this copy of Qunflow."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_current(engine: Engine) -> None:
    """Fail with one line naming the database and what to run unless its schema is current.

    Without this a command on a new or older database ends in an SQL error about a missing
    table or column.
    """
    script = ScriptDirectory.from_config(alembic_config())
    current, head = current_revision(engine), script.get_current_head()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise ConfigError(f"{where} has no Qunflow schema yet: run `qunflow db upgrade`")
    if current in {rev.revision for rev in script.walk_revisions()}:
        raise ConfigError(
            f"{where} is at schema revision {current}, this Qunflow needs {head}: "
            "run `qunflow db upgrade`"
        )
    raise ConfigError(
        f"{where} is at schema revision {current}, which this Qunflow does not know "
        "(a newer Qunflow upgraded it): install that version"
    )
