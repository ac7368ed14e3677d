"""Apply and inspect the Alembic migrations that build the CRM schema.

Alembic is imported inside the functions: every CLI command checks the schema, and importing
Alembic and loading the migration scripts would cost more than most commands' own work.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, exc, text

from crm.core.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the bundled migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the given revision (default: the newest)."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this copy of Qunflow."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_current(engine: Engine) -> None:
    """Fail with one line naming the database and what to run unless its schema is current.

    Without this a command on a new or older database ends in an SQL error about a missing
    table or column.
    """
    head = _single_head_from_files()
    if head is not None and _stamped_revision(engine) == head:
        return  # the common case, answered without loading Alembic
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current, head = current_revision(engine), script.get_current_head()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise ConfigError("error.core.schema_missing", where=where)
    if current in {rev.revision for rev in script.walk_revisions()}:
        raise ConfigError("error.core.schema_old", where=where, current=current, head=head)
    raise ConfigError("error.core.schema_newer", where=where, current=current)


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(None|['\"]([^'\"]+)['\"])", re.MULTILINE)


def _single_head_from_files() -> str | None:
    """The one revision no other script builds on, read from the scripts' text; None if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, _, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if value:
                (parents if down else revisions).add(value)
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _stamped_revision(engine: Engine) -> str | None:
    """The revision in alembic_version when it holds exactly one; None otherwise."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except exc.DBAPIError:
        return None  # no schema yet: the full check below names what to run
    return rows[0] if len(rows) == 1 else None
