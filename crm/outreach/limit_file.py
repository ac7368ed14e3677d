"""The registry of default limits (limits.toml beside this module): read, validated, typed.

Every entry states its value, source, date and kind; a misspelt field or a duplicate name
stops at load time with the file and the entry's position.
"""

from __future__ import annotations

import tomllib
from datetime import date
from functools import cache
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crm.core.errors import ConfigError
from crm.outreach.limits import LimitKind, NamedLimit, Scope, Window


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str = Field(min_length=1, max_length=16)
    scope: Scope
    action: str = Field(min_length=1, max_length=32)
    window: Window
    value: int = Field(ge=0)
    kind: LimitKind
    source: str = Field(min_length=3, max_length=300)
    since: date


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: list[_Entry] = Field(max_length=1000)


def bundled_path() -> Path:
    """The bundled registry of default limits."""
    return Path(str(files("crm.outreach") / "limits.toml"))


@cache
def default_limits(path: Path | None = None) -> tuple[NamedLimit, ...]:
    """The default limits of the registry file (the bundled one unless given)."""
    path = path or bundled_path()
    try:
        parsed = _File.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            "error.outreach.limits_unreadable", path=str(path), detail=str(exc)
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            "error.outreach.limits_invalid", path=str(path), where=where, detail=first["msg"]
        ) from exc
    out: dict[str, NamedLimit] = {}
    for n, e in enumerate(parsed.limit):
        lim = NamedLimit(
            e.platform, e.scope, e.action, e.window, e.value, e.source, e.since, e.kind
        )
        if lim.name in out:
            raise ConfigError(
                "error.outreach.limit_twice", path=str(path), position=n, name=lim.name
            )
        out[lim.name] = lim
    return tuple(out.values())
