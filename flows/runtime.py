"""What flows share at run time: settings and one engine per database URL per process."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

import flows.i18n  # noqa: F401  (attaches the catalog's English to str(error))
from crm.core.db import make_engine
from crm.core.migrate import require_current
from crm.core.settings import Settings, get_settings


@cache
def settings() -> Settings:
    """Settings of this worker process, read on first use (never at import)."""
    return get_settings()


@cache
def engine_for(url: str) -> Engine:
    """One pooled engine per URL: tasks receive URLs, which Prefect can hash and show.

    A database without the current schema fails the run with one line saying what to run.
    """
    engine = make_engine(url)
    require_current(engine)
    return engine


def engine() -> Engine:
    """The engine of the configured CRM database."""
    return engine_for(settings().sqlalchemy_url)
