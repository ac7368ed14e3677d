"""What every CLI command shares: settings, the engine, JSON or table output, errors."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

import typer
from rich.cells import cell_len
from sqlalchemy import Engine

from crm.core.db import check_connection, make_engine
from crm.core.migrate import require_current
from crm.core.settings import Settings, get_settings


@cache
def settings() -> Settings:
    """The settings for this process (read once, on first use)."""
    return get_settings()


# Times print in the team's zone (QUNFLOW_TIMEZONE), as the web shows them; the root --utc
# switch prints UTC instead, for scripts.
_UTC_OUTPUT = {"on": False}


def print_utc(on: bool) -> None:
    """Print times in UTC instead of the team's zone (the root ``--utc`` switch)."""
    _UTC_OUTPUT["on"] = on


def output_zone() -> tzinfo:
    """The zone times are printed in."""
    return UTC if _UTC_OUTPUT["on"] else settings().zone


def when(value: datetime | None) -> str:
    """A stored moment as a reader wants it: local time with its offset, or UTC."""
    if value is None:
        return ""
    if value.tzinfo is None:  # stored moments are UTC
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(output_zone())
    if _UTC_OUTPUT["on"]:
        return f"{local:%Y-%m-%d %H:%M} UTC"
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def warn_if_loopback(cfg: Settings) -> None:
    """Say so when QR codes and message links would point at this machine only."""
    note = cfg.loopback_note()
    if note:
        typer.echo(note, err=True)


@cache
def database() -> Engine:
    """The configured database, whatever its schema; fails with one line if unreachable."""
    eng = make_engine(settings().sqlalchemy_url)
    check_connection(eng)
    return eng


@cache
def engine() -> Engine:
    """The CRM database engine; fails with one line if unreachable or its schema is not current."""
    eng = database()
    require_current(eng)
    return eng


def _default(value: Any) -> Any:
    # Services return typed results (dataclasses, enums); they become JSON only here.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_text(data: Any) -> str:
    """One JSON document as text (Chinese kept readable, dates in ISO form)."""
    return json.dumps(data, ensure_ascii=False, default=_default, indent=2) + "\n"


def print_json(data: Any) -> None:
    """One JSON document on stdout (UTF-8)."""
    sys.stdout.write(json_text(data))


def print_table(rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None) -> None:
    """A plain aligned table; columns line up whatever the script (CJK counts double)."""
    rows = list(rows)
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if not rows:
        typer.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(_width(c), *(_width(row[i]) for row in cells)) for i, c in enumerate(cols)]
    typer.echo("  ".join(_pad(c, w) for c, w in zip(cols, widths, strict=True)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip())


# Tabs, line breaks and any other control character in a stored value (a nickname may keep
# its tab or newline) would break the table or move the terminal's cursor: shown as a space.
_CONTROLS = dict.fromkeys([*range(0x00, 0x20), *range(0x7F, 0xA0)], " ")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    return str(value).translate(_CONTROLS)


def _width(text: str) -> int:
    # Rich's cell widths: CJK and emoji take two cells, combining marks none.
    return cell_len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
