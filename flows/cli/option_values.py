"""Option values taken as they are where that is plainly right, without loading pydantic.

Typer checks every option and argument value through a pydantic TypeAdapter. Importing
pydantic and building those adapters costs a quick read (``qunflow contacts list``) about a
quarter of its time, though nearly every value is a default, a word or a small number. So each
parameter gets a check that accepts at once: no value; a value that already has its type (the
declared defaults); any text for a text option; a plain integer within the option's bounds; an
enum's exact value. Everything else — and every value that would be refused — goes to Typer's
own check, so what is accepted and every error message stay Typer's.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperArgument, TyperOption

_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_TAKEN = object()  # not decided here: Typer's check decides


class _QuickThenTyper:
    """Stands in for Typer's runtime check of one parameter (``coerce`` is all Typer calls)."""

    def __init__(self, param: TyperOption | TyperArgument) -> None:
        self._param = param
        self._typer: RuntimeParam | None = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as Typer's own check answers it
            return () if param.multiple or param.nargs == -1 else None
        normalizes = ctx is not None and ctx.token_normalize_func is not None
        quick = _TAKEN if normalizes else _quick(self._param, value)
        if quick is not _TAKEN:
            return quick
        if self._typer is None:
            self._typer = build_runtime_param(self._param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def _quick(param: TyperOption | TyperArgument, value: Any) -> Any:
    if param.multiple or param.nargs != 1:
        return _TAKEN
    desc = param.type_descriptor
    info = desc.parameter_info
    kind = desc.annotation
    if info.parser is not None or desc.is_file or desc.is_path:
        return _TAKEN
    if kind is str:
        return value if isinstance(value, str) else _TAKEN
    if kind is bool:
        return value if isinstance(value, bool) else _TAKEN
    if isinstance(kind, type) and issubclass(kind, Enum):
        if isinstance(value, kind):
            return value
        if isinstance(value, str) and info.case_sensitive:
            return next((m for m in kind if str(m.value) == value), _TAKEN)
        return _TAKEN
    if kind is int and not info.clamp:
        if isinstance(value, str) and _PLAIN_INT.fullmatch(value):
            value = int(value)
        if type(value) is not int:
            return _TAKEN
        low, high = info.min, info.max
        if (low is not None and value < low) or (high is not None and value > high):
            return _TAKEN  # refused: in Typer's words
        return value
    return _TAKEN


def check_values_quickly(command: Any, *, subcommands: bool = True) -> None:
    """Give every parameter of this command, and of its subcommands, the quick check."""
    for param in getattr(command, "params", []):
        _give(param)
    # --help is made on first use (per command, for its context): it gets the check then.
    made_help = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = made_help(ctx)
        _give(option)
        return option

    command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values() if subcommands else ():
        check_values_quickly(sub)


def _give(param: Any) -> None:
    if isinstance(param, TyperOption | TyperArgument) and param._runtime_param is None:
        param._runtime_param = _QuickThenTyper(param)  # type: ignore[assignment]
