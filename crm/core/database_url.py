"""Which database Qunflow uses: the two settings that name it, checked, and the URL they give.

The settings model (crm.core.settings) checks these two settings with these functions; a
command that only reads the database can also take them straight from a plain environment
(:func:`database_url_from_environment`) instead of loading pydantic for all the settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crm.core.errors import BadValue, ConfigError

ENV_PREFIX = "QUNFLOW_"
_READ = {f"{ENV_PREFIX}DATA_DIR", f"{ENV_PREFIX}DATABASE_URL"}


def default_data_dir() -> Path:
    """The per-user data directory (XDG on Linux), where the embedded SQLite file lives."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qunflow"


def check_data_dir(value: object) -> object:
    """QUNFLOW_DATA_DIR as given: set but empty is refused (it would mean the current directory)."""
    if isinstance(value, str) and not value.strip():
        raise BadValue("error.core.setting_empty")
    return value


def check_database_url(value: str | None) -> str | None:
    """QUNFLOW_DATABASE_URL as given: None or empty means the embedded SQLite file."""
    if value is None or value == "":
        return None
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise BadValue("error.core.setting_db_url", value=value) from exc
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise BadValue("error.core.setting_db_kind", value=url.get_backend_name())
    if (
        "+" in url.drivername
        and url.drivername != "postgresql+psycopg"
        and url.get_backend_name() == "postgresql"
    ):
        raise BadValue("error.core.setting_db_driver")
    return value


def effective_database_url(database_url: str | None, data_dir: Path) -> str:
    """The URL to connect with; a PostgreSQL URL always uses psycopg 3."""
    if database_url is None:
        return f"sqlite:///{data_dir / 'qunflow.db'}"
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def database_url_from_environment(environ: Mapping[str, str], env_file: Path) -> str | None:
    """The database URL from the environment alone, checked as the settings check it.

    None when the settings model must decide: a ``.env`` file exists (it may name the
    database), another ``QUNFLOW_`` variable is set (the model would check it, and a bad one
    fails every command), or two differ only in case (the model reads names in any case).
    """
    if env_file.exists():
        return None
    ours = {name.upper(): value for name, value in environ.items() if _ours(name)}
    if len(ours) != sum(1 for name in environ if _ours(name)) or not ours.keys() <= _READ:
        return None
    try:
        setting = f"{ENV_PREFIX}DATA_DIR"
        given_dir = check_data_dir(ours.get(setting))
        data_dir = Path(given_dir) if isinstance(given_dir, str) else default_data_dir()
        setting = f"{ENV_PREFIX}DATABASE_URL"
        database_url = check_database_url(ours.get(setting))
    except BadValue as exc:
        raise ConfigError(exc.problem.key, **exc.problem.params, setting=setting) from exc
    return effective_database_url(database_url, data_dir)


def _ours(name: str) -> bool:
    return name.upper().startswith(ENV_PREFIX)
